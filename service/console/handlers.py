"""The console's HTTP side: parse the form, check the session and its CSRF token, call
the Console, render a template. Every page is server-rendered HTML; every change is a
POST answered by a redirect (POST/redirect/GET), so a reload never repeats an action.

Transport: the session cookie is ``__Host-`` and therefore always ``Secure``. Over plain
HTTP the console answers only on loopback (browsers treat ``http://127.0.0.1`` as a
secure context); anywhere else it needs HTTPS, at authd or at a trusted proxy
(``AUTHD_TRUSTED_PROXIES``, whose ``X-Forwarded-Proto`` uvicorn honours).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from service.console.charts import when
from service.console.errors import CsrfRejected, PlainHttpRefused, SignInRequired
from service.console.service import Console
from service.console.sessions import ACTIVE, ENROL, TOTP, ConsoleSession
from service.errors import AuthdError, InvalidRequest, NotFound, UnsupportedMediaType
from service.http.auth import require_scope
from service.http.context import client_ip, runtime_of
from service.http.requests import FORM, media_type, parse_form
from service.http.responses import json_response
from service.sessions.errors import InvalidCredentials

COOKIE = "__Host-authd_console"
ADMIN_SCOPE = "authd:admin"
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["when"] = when

Page = Callable[[Request, str | None, int], Awaitable[Response]]


def console_of(request: Request) -> Console:
    return runtime_of(request).console


# --- plumbing -------------------------------------------------------------------------


def _transport(request: Request) -> None:
    if request.url.scheme == "https":
        return
    if _loopback(request.client.host if request.client else None):
        return
    raise PlainHttpRefused("the console is served over plain HTTP on loopback only; "
                           "use https:// (at authd or at a trusted proxy)")


def _loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _same_origin(request: Request) -> None:
    """A second line behind the CSRF token and SameSite=Strict: a POST that a browser
    marks as sent from another site or origin is refused outright. Under the pages'
    ``Referrer-Policy: no-referrer`` chromium sends ``Origin: null`` even for its own
    forms, so ``null`` is left to the token; ``Sec-Fetch-Site`` is sent regardless."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise CsrfRejected("the form was sent from another site")
    origin = request.headers.get("origin")
    if origin not in (None, "null", f"{request.url.scheme}://{request.url.netloc}"):
        raise CsrfRejected("the form was sent from another origin")


async def _form(request: Request) -> dict[str, str]:
    if media_type(request) != FORM:
        raise UnsupportedMediaType(f"the console's forms are {FORM}")
    return parse_form(await request.body())


async def _session(request: Request, stages: tuple[str, ...] = (ACTIVE,)) -> ConsoleSession:
    _transport(request)
    return await console_of(request).sessions.resolve(request.cookies.get(COOKIE),
                                                      stages=stages)


async def _changing(request: Request, stages: tuple[str, ...] = (ACTIVE,)
                    ) -> tuple[ConsoleSession, dict[str, str]]:
    """The session and the form of a state-changing request, its CSRF token checked."""
    _same_origin(request)
    session = await _session(request, stages)
    # A body that is not the console's form cannot carry its token: refused as such.
    form = await _form(request) if media_type(request) == FORM else {}
    console_of(request).sessions.check_csrf(session, form.get("csrf"))
    return session, form


def render(request: Request, name: str, context: dict[str, Any], status: int = 200,
           session: ConsoleSession | None = None) -> Response:
    context = {"session": session, "csrf": session.csrf_token if session else "", **context}
    return templates.TemplateResponse(request, name, context, status_code=status)


def _see(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def _cookie(response: Response, value: str, request: Request, max_age: int | None) -> None:
    response.set_cookie(COOKIE, value, max_age=max_age, path="/", secure=True, httponly=True,
                        samesite="strict")


async def _acting(request: Request, page: Page, action: Callable[[ConsoleSession,
                  dict[str, str]], Awaitable[str]]) -> Response:
    """Run a console action; on a refusal the page again, saying why, with its status.
    Session and CSRF failures are not the page's business: they propagate."""
    session, form = await _changing(request)
    try:
        return _see(await action(session, form))
    except (SignInRequired, CsrfRejected):
        raise
    except AuthdError as refused:
        return await page(request, refused.description, refused.status)


# --- sign-in --------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    _transport(request)
    return render(request, "login.html", {"error": None})


async def login(request: Request) -> Response:
    _transport(request)
    _same_origin(request)
    form = await _form(request)
    console = console_of(request)
    try:
        session_id, session = await console.sessions.sign_in(
            form.get("email", ""), form.get("password", ""), ip=client_ip(request),
            user_agent=request.headers.get("user-agent"))
    except (InvalidCredentials, InvalidRequest) as refused:
        return render(request, "login.html", {"error": "Wrong email or password."},
                      status=401 if isinstance(refused, InvalidCredentials) else 400)
    except AuthdError as refused:
        return render(request, "login.html", {"error": refused.description},
                      status=refused.status)
    response = _see("/console/login/code" if session.stage == TOTP else "/console/enrol")
    _cookie(response, session_id, request, None)
    return response


async def code_page(request: Request, error: str | None = None, status: int = 200
                    ) -> Response:
    session = await _session(request, (TOTP,))
    return render(request, "code.html", {"error": error}, status, session)


async def code(request: Request) -> Response:
    session, form = await _changing(request, (TOTP,))
    try:
        await console_of(request).sessions.complete_totp(session, form.get("code", ""),
                                                         ip=client_ip(request))
    except AuthdError as refused:
        if isinstance(refused, SignInRequired):
            raise
        return await code_page(request, refused.description, refused.status)
    return _see("/console")


async def enrol_page(request: Request, error: str | None = None, status: int = 200
                     ) -> Response:
    session = await _session(request, (ENROL,))
    return render(request, "enrol.html", {"error": error, "enrolment": None}, status, session)


async def enrol_start(request: Request) -> Response:
    session, _ = await _changing(request, (ENROL,))
    enrolment = await console_of(request).sessions.start_enrolment(session,
                                                                   ip=client_ip(request))
    return render(request, "enrol.html", {"error": None, "enrolment": enrolment},
                  session=session)


async def enrol_confirm(request: Request) -> Response:
    session, form = await _changing(request, (ENROL,))
    try:
        codes = await console_of(request).sessions.confirm_enrolment(
            session, form.get("code", ""), ip=client_ip(request))
    except AuthdError as refused:
        if isinstance(refused, SignInRequired):
            raise
        return await enrol_page(request, refused.description, refused.status)
    return render(request, "recovery.html", {"codes": codes}, session=session)


async def logout(request: Request) -> Response:
    session, _ = await _changing(request, (ACTIVE, TOTP, ENROL))
    await console_of(request).sessions.sign_out(session, ip=client_ip(request))
    response = _see("/console/login")
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


# --- overview and signing keys --------------------------------------------------------


async def overview(request: Request) -> Response:
    session = await _session(request)
    data = await console_of(request).overview()
    return render(request, "overview.html", data, session=session)


async def keys_page(request: Request, error: str | None = None, status: int = 200
                    ) -> Response:
    session = await _session(request)
    data = await console_of(request).keys()
    return render(request, "keys.html", {**data, "error": error,
                                         "notice": request.query_params.get("done")},
                  status, session)


async def rotate_keys(request: Request) -> Response:
    async def act(session: ConsoleSession, form: dict[str, str]) -> str:
        await console_of(request).rotation.rotate(trigger="console", actor=session.user_id,
                                                  ip=client_ip(request))
        return "/console/keys?done=rotated"

    return await _acting(request, keys_page, act)


async def revoke_signing_key(request: Request) -> Response:
    async def act(session: ConsoleSession, form: dict[str, str]) -> str:
        console = console_of(request)
        await console.sessions.require_fresh_code(session, form.get("code"),
                                                  ip=client_ip(request),
                                                  action="revoking a signing key")
        await console.rotation.revoke(request.path_params["kid"], actor=session.user_id,
                                      ip=client_ip(request))
        return "/console/keys?done=revoked"

    return await _acting(request, keys_page, act)


# --- clients and API keys -------------------------------------------------------------


async def clients_page(request: Request, error: str | None = None, status: int = 200
                       ) -> Response:
    session = await _session(request)
    query = request.query_params.get("q", "")
    clients = await console_of(request).clients(query)
    return render(request, "clients.html", {"clients": clients, "q": query, "error": error},
                  status, session)


async def create_client(request: Request) -> Response:
    async def act(session: ConsoleSession, form: dict[str, str]) -> str:
        client_id = await console_of(request).create_client(form, actor=session.user_id)
        return f"/console/clients/{client_id}?done=created"

    return await _acting(request, clients_page, act)


async def client_page(request: Request, error: str | None = None, status: int = 200
                      ) -> Response:
    session = await _session(request)
    data = await console_of(request).client(request.path_params["client"])
    return render(request, "client.html", {**data, "error": error, "new_key": None,
                                           "notice": request.query_params.get("done")},
                  status, session)


async def new_key_page(request: Request) -> Response:
    """The one page that shows a new key's secret; a reload finds it gone."""
    session = await _session(request)
    console = console_of(request)
    data = await console.client(request.path_params["client"])
    secret = await console.sessions.take_once(session)
    return render(request, "client.html", {**data, "error": None, "new_key": secret,
                                           "notice": "key_created" if secret else
                                           "key_shown"}, session=session)


async def create_key(request: Request) -> Response:
    client_id = request.path_params["client"]

    async def act(session: ConsoleSession, form: dict[str, str]) -> str:
        console = console_of(request)
        issued = await console.create_key(client_id, form, actor=session.user_id)
        await console.sessions.hold_once(session, issued.plaintext)
        return f"/console/clients/{client_id}/new-key"

    return await _acting(request, client_page, act)


async def disable_client(request: Request) -> Response:
    client_id = request.path_params["client"]

    async def act(session: ConsoleSession, form: dict[str, str]) -> str:
        console = console_of(request)
        await console.sessions.require_fresh_code(session, form.get("code"),
                                                  ip=client_ip(request),
                                                  action="disabling a client")
        await console.apikeys.disable_client(client_id, actor=session.user_id)
        return f"/console/clients/{client_id}?done=disabled"

    return await _acting(request, client_page, act)


async def _key_action(request: Request, what: str) -> Response:
    client_id = request.path_params["client"]
    key_id = request.path_params["key"]

    async def act(session: ConsoleSession, form: dict[str, str]) -> str:
        console = console_of(request)
        if (await console.apikeys.key(key_id)).client_id != client_id:
            raise InvalidRequest("the key does not belong to this client")
        if what == "revoke":
            await console.apikeys.revoke_key(key_id, actor=session.user_id)
        elif what == "networks":
            await console.set_networks(key_id, form, actor=session.user_id)
        else:
            issued = await console.rotate_key(key_id, form, actor=session.user_id)
            await console.sessions.hold_once(session, issued.plaintext)
            return f"/console/clients/{client_id}/new-key"
        return f"/console/clients/{client_id}?done=key_{what}"

    return await _acting(request, client_page, act)


async def revoke_key(request: Request) -> Response:
    return await _key_action(request, "revoke")


async def rotate_key(request: Request) -> Response:
    return await _key_action(request, "rotate")


async def key_networks(request: Request) -> Response:
    return await _key_action(request, "networks")


# --- users ----------------------------------------------------------------------------


async def users_page(request: Request, error: str | None = None, status: int = 200
                     ) -> Response:
    session = await _session(request)
    console = console_of(request)
    query = request.query_params.get("q", "")
    found = await console.store.search_users(query.strip()) if query.strip() else []
    return render(request, "users.html", {"users": found, "q": query, "error": error,
                                          "operators": await console.operators.operators()},
                  status, session)


async def create_user(request: Request) -> Response:
    async def act(session: ConsoleSession, form: dict[str, str]) -> str:
        user_id = await console_of(request).create_user(form, actor=session.user_id)
        return f"/console/users/{user_id}?done=created"

    return await _acting(request, users_page, act)


async def user_page(request: Request, error: str | None = None, status: int = 200
                    ) -> Response:
    session = await _session(request)
    data = await console_of(request).user(request.path_params["user"])
    return render(request, "user.html", {**data, "error": error,
                                         "notice": request.query_params.get("done")},
                  status, session)


# Which user actions need a fresh code (they end or weaken a session, or raise a
# privilege), and their audit word.
_FRESH = {"disable": "disabling a user", "mfa-reset": "resetting MFA",
          "revoke-sessions": "revoking every session", "revoke-admin": "taking the admin role",
          # The most privilege-raising action: a hijacked session must not make operators.
          "grant-admin": "granting the admin role"}


async def user_action(request: Request) -> Response:
    user_id = request.path_params["user"]
    what = request.path_params["action"]

    async def act(session: ConsoleSession, form: dict[str, str]) -> str:
        console = console_of(request)
        ip = client_ip(request)
        actor = session.user_id
        if what in _FRESH:
            console.refuse_self(session, user_id, _FRESH[what])
            await console.sessions.require_fresh_code(session, form.get("code"), ip=ip,
                                                      action=_FRESH[what])
        if what == "disable":
            await console.users.disable(user_id, actor=actor, ip=ip)
        elif what == "unlock":
            await console.users.unlock(user_id, actor=actor, ip=ip)
        elif what == "mfa-reset":
            await console.factors.reset(user_id, actor=actor, ip=ip)
        elif what == "revoke-sessions":
            await console.revoke_sessions(user_id, actor=actor, ip=ip)
        elif what == "grant-admin":
            await console.operators.grant_admin(user_id, actor=actor, ip=ip)
        elif what == "revoke-admin":
            await console.operators.revoke_admin(user_id, actor=actor, ip=ip)
        else:
            raise InvalidRequest("no such action")
        return f"/console/users/{user_id}?done={what}"

    return await _acting(request, user_page, act)


# --- audit ----------------------------------------------------------------------------


async def audit_page(request: Request, error: str | None = None, status: int = 200
                     ) -> Response:
    session = await _session(request)
    data = await console_of(request).audit_page(request.query_params)
    query = urlencode([(k, v) for k, v in request.query_params.items() if k != "before"])
    return render(request, "audit.html", {**data, "query": query, "error": error},
                  status, session)


async def audit_csv(request: Request) -> Response:
    await _session(request)
    body = await console_of(request).audit_csv(request.query_params)
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="authd-audit.csv"'})


# --- static files ---------------------------------------------------------------------

STATIC = {"console.css": "text/css; charset=utf-8",
          "console.js": "text/javascript; charset=utf-8"}


async def static(request: Request) -> Response:
    """The console's two static files (a fixed list: no path from the request
    reaches the file system)."""
    name = request.path_params["name"]
    if name not in STATIC:
        raise NotFound("no such file")
    return FileResponse(HERE / "static" / name, media_type=STATIC[name])


# --- the admin API's side of operator accounts ----------------------------------------


async def admin_grant(request: Request) -> Response:
    principal = await require_scope(request, ADMIN_SCOPE)
    view = await console_of(request).operators.grant_admin(
        request.path_params["user"], actor=principal.subject, ip=client_ip(request))
    return json_response(view)


async def admin_revoke(request: Request) -> Response:
    principal = await require_scope(request, ADMIN_SCOPE)
    view = await console_of(request).operators.revoke_admin(
        request.path_params["user"], actor=principal.subject, ip=client_ip(request))
    return json_response(view)


async def admin_operators(request: Request) -> Response:
    await require_scope(request, ADMIN_SCOPE)
    return json_response({"operators": await console_of(request).operators.operators()})


admin_routes: list[BaseRoute] = [
    Route("/admin/users/{user}/roles/admin", admin_grant, methods=["PUT"]),
    Route("/admin/users/{user}/roles/admin", admin_revoke, methods=["DELETE"]),
    Route("/admin/operators", admin_operators, methods=["GET"]),
]


def _page(path: str, endpoint: Callable[[Request], Awaitable[Response]], method: str
          ) -> Route:
    """A console route; pages are not the JSON API, so /openapi.json leaves them out."""
    return Route("/console" + path, endpoint, methods=[method], include_in_schema=False)


GET, POST = "GET", "POST"
routes: list[BaseRoute] = [
    _page("", overview, GET),
    _page("/login", login_page, GET),
    _page("/login", login, POST),
    _page("/login/code", code_page, GET),
    _page("/login/code", code, POST),
    _page("/enrol", enrol_page, GET),
    _page("/enrol/start", enrol_start, POST),
    _page("/enrol/confirm", enrol_confirm, POST),
    _page("/logout", logout, POST),
    _page("/keys", keys_page, GET),
    _page("/keys/rotate", rotate_keys, POST),
    _page("/keys/{kid}/revoke", revoke_signing_key, POST),
    _page("/clients", clients_page, GET),
    _page("/clients", create_client, POST),
    _page("/clients/{client}", client_page, GET),
    _page("/clients/{client}/disable", disable_client, POST),
    _page("/clients/{client}/keys", create_key, POST),
    _page("/clients/{client}/new-key", new_key_page, GET),
    _page("/clients/{client}/keys/{key}/revoke", revoke_key, POST),
    _page("/clients/{client}/keys/{key}/rotate", rotate_key, POST),
    _page("/clients/{client}/keys/{key}/networks", key_networks, POST),
    _page("/users", users_page, GET),
    _page("/users", create_user, POST),
    _page("/users/{user}", user_page, GET),
    _page("/users/{user}/{action}", user_action, POST),
    _page("/audit", audit_page, GET),
    _page("/audit.csv", audit_csv, GET),
    _page("/static/{name}", static, GET),
]
