"""HTTP: login, refresh, logout, and the operator's user endpoints. Thin: parse,
call the domain, answer (DESIGN §3)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import Message, Receive, Scope, Send

from service.errors import InvalidRequest
from service.http.auth import bearer_token, dpop_key, require_scope, verified_claims
from service.http.context import client_ip, runtime_of
from service.http.csrf import require_allowed_page
from service.http.oauth import TokenRequest, send_token
from service.http.requests import JSON, field, media_type, read_json
from service.http.responses import NO_STORE, json_response
from service.sessions.login import MfaChallenge
from service.sessions.refresh import SessionTokens

if TYPE_CHECKING:
    from service.runtime import Runtime

COOKIE = "authd_refresh"
COOKIE_PATH = "/v1/refresh"


def _tokens_response(request: Request, tokens: SessionTokens) -> Response:
    """In cookie mode the refresh token travels only in an HttpOnly cookie scoped to
    the refresh path, never in a body that page scripts could read."""
    cookie = runtime_of(request).sessions.cookie
    body = tokens.as_response(include_refresh=not cookie)
    response = json_response(body)
    if cookie:
        response.set_cookie(
            COOKIE, tokens.refresh_token, max_age=body["refresh_token_expires_in"],
            path=COOKIE_PATH, secure=True, httponly=True, samesite="strict",
        )
    return response


def _only(data: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise InvalidRequest(f"unknown member {sorted(unknown)[0]!r}")


async def login(request: Request) -> Response:
    """``POST /v1/login`` ``{"email", "password"}`` → access + refresh token."""
    runtime = runtime_of(request)
    data = await read_json(request)
    _only(data, {"email", "password"})
    email = field(data, "email") or ""
    password = field(data, "password") or ""
    if not email or not password:
        raise InvalidRequest("email and password are required")
    tokens = await runtime.sessions.login.login(
        email, password, ip=client_ip(request), user_agent=request.headers.get("user-agent"),
        dpop_jkt=await dpop_key(request, "/v1/login"),
    )
    if isinstance(tokens, MfaChallenge):
        return mfa_required_response(tokens)
    return _tokens_response(request, tokens)


def mfa_required_response(challenge: MfaChallenge) -> Response:
    """401 ``application/problem+json`` of type ``mfa_required`` (RFC 9457 extension
    members ``mfa_ticket``, ``expires_in``, ``methods``): the password was right, the
    second factor goes to ``POST /v1/login/mfa`` with the ticket. 401 rather than 200
    so that a client that knows nothing of MFA treats it as "not logged in"."""
    body = {
        "type": "urn:authd:problem:mfa_required", "title": "A second factor is required",
        "status": 401, "detail": "send a TOTP or recovery code to /v1/login/mfa",
        "mfa_ticket": challenge.ticket, "expires_in": challenge.expires_in,
        "methods": list(challenge.methods),
    }
    challenge_header = 'Password realm="authd", error="mfa_required"'
    return Response(json.dumps(body, separators=(",", ":")).encode(), 401,
                    {**NO_STORE, "WWW-Authenticate": challenge_header},
                    "application/problem+json")


async def _refresh_token_from(request: Request) -> str:
    """The refresh token from a JSON body, or else from the cookie — which the
    browser attaches by itself, so it is taken only from a request an allowed page
    made (the CSRF rule of ``service.http.csrf``). A request that carries the cookie
    is judged by that rule whatever its body, so a form gets a 403, not a 415."""
    cookie = request.cookies.get(COOKIE)
    if media_type(request) == JSON or (not cookie and await request.body()):
        data = await read_json(request)
        _only(data, {"refresh_token"})
        token = field(data, "refresh_token", required=False)
        if token:
            return token
    if cookie:
        require_allowed_page(request, runtime_of(request).settings.browser_origins)
        return cookie
    raise InvalidRequest("refresh_token is required (JSON body or cookie)")


async def refresh(request: Request) -> Response:
    """``POST /v1/refresh`` → a new access token and the successor refresh token."""
    runtime = runtime_of(request)
    token = await _refresh_token_from(request)
    tokens = await runtime.sessions.refresh.rotate(
        token, ip=client_ip(request), dpop_jkt=await dpop_key(request, "/v1/refresh"))
    return _tokens_response(request, tokens)



class RefreshEndpoint:
    """``POST /v1/refresh`` as a bare ASGI app: the hot path of a session (DESIGN §7).

    The common request — a JSON body ``{"refresh_token": …}`` outside cookie mode — is
    answered here without building a Starlette request and response; anything else
    (cookie mode, another content type, a body without the token) is replayed to the
    ``refresh`` view unchanged, so both give the same answers and the same errors
    (raised here, rendered by the app's exception handlers).
    """

    def __init__(self) -> None:
        self._view = request_response(refresh)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime = scope["state"]["runtime"]
        content_type, proof = _content_type_and_proof(scope)
        if runtime.sessions.cookie or content_type != b"application/json" or proof:
            # A DPoP proof goes the view's way (bound refresh is not the hot path).
            await self._view(scope, receive, send)
            return
        body = await _body(receive)
        token = _token_in(body)
        if token is None:
            await self._view(scope, _replay(body), send)
            return
        client = scope.get("client")
        tokens = await runtime.sessions.refresh.rotate(
            token, ip=client[0] if client else "unknown")
        await send_token(send, json.dumps(tokens.as_response(), separators=(",", ":")).encode())


def _content_type_and_proof(scope: Scope) -> tuple[bytes, bool]:
    content_type, proof = b"", False
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = bytes(value.split(b";", 1)[0].strip().lower())
        elif name == b"dpop":
            proof = True
    return content_type, proof


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _token_in(body: bytes) -> str | None:
    """The refresh token of a well-formed body; None leaves the body to the view."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or set(data) != {"refresh_token"}:
        return None
    token = data["refresh_token"]
    return token if isinstance(token, str) and token else None


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def logout(request: Request) -> Response:
    """``POST /v1/logout``: revoke the session named by a refresh token (body or
    cookie) or by the ``sid`` of a Bearer access token. 204 also for an unknown
    refresh token: the session is gone either way."""
    runtime = runtime_of(request)
    bearer = bearer_token(request)
    family: str | None
    if bearer is not None:
        claims = await verified_claims(runtime, bearer, request)
        family = claims.get("sid") if isinstance(claims.get("sid"), str) else None
        if family is None:
            raise InvalidRequest("this access token belongs to no session")
    else:
        family = await runtime.sessions.refresh.family_of(await _refresh_token_from(request))
    if family is not None:
        await runtime.sessions.refresh.revoke_family(family, "logout")
        runtime.audit.record("logout", "ok", ip=client_ip(request), sid=family)
    response = Response(b"", 204, NO_STORE)
    if runtime.sessions.cookie:
        response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=True, httponly=True,
                               samesite="strict")
    return response


async def refresh_token_grant(request: TokenRequest) -> bytes:
    """``grant_type=refresh_token`` at ``/oauth/token`` (RFC 6749 §6). The login
    client is public, so no client authentication is required; ``scope`` may only
    repeat what was granted, which for login sessions is nothing to narrow."""
    form = request.form
    unknown = set(form) - {"grant_type", "refresh_token", "scope", "client_id"}
    if unknown:
        raise InvalidRequest(f"unknown parameter {sorted(unknown)[0]}")
    token = form.get("refresh_token")
    if not token:
        raise InvalidRequest("refresh_token is required")
    tokens = await request.runtime.sessions.refresh.rotate(token, ip=request.ip,
                                                           scope=form.get("scope"),
                                                           dpop_jkt=request.dpop_jkt)
    return json.dumps(tokens.as_response(), separators=(",", ":")).encode()


# --- admin ----------------------------------------------------------------------------

async def _admin(request: Request) -> str:
    principal = await require_scope(request, "authd:admin")
    return principal.subject


async def admin_create_user(request: Request) -> Response:
    runtime = runtime_of(request)
    actor = await _admin(request)
    data = await read_json(request)
    _only(data, {"email", "password"})
    user = await runtime.sessions.users.create(
        field(data, "email") or "", field(data, "password") or "", actor=actor,
        ip=client_ip(request),
    )
    return json_response(user.public(), 201)


async def admin_get_user(request: Request) -> Response:
    runtime = runtime_of(request)
    await _admin(request)
    user = await runtime.sessions.users.find(request.path_params["user"])
    return json_response(user.public())


async def admin_set_password(request: Request) -> Response:
    runtime = runtime_of(request)
    actor = await _admin(request)
    data = await read_json(request)
    _only(data, {"password"})
    user = await runtime.sessions.users.set_password(
        request.path_params["user"], field(data, "password") or "", actor=actor,
        ip=client_ip(request),
    )
    return json_response(user.public())


async def admin_disable_user(request: Request) -> Response:
    runtime = runtime_of(request)
    actor = await _admin(request)
    user = await runtime.sessions.users.disable(request.path_params["user"], actor=actor,
                                                ip=client_ip(request))
    return json_response(user.public())


async def admin_unlock_user(request: Request) -> Response:
    runtime = runtime_of(request)
    actor = await _admin(request)
    user = await runtime.sessions.users.unlock(request.path_params["user"], actor=actor,
                                               ip=client_ip(request))
    return json_response(user.public())


routes: list[BaseRoute] = [
    Route("/v1/login", login, methods=["POST"]),
    Route("/v1/refresh", RefreshEndpoint(), methods=["POST"]),
    Route("/v1/logout", logout, methods=["POST"]),
    Route("/admin/users", admin_create_user, methods=["POST"]),
    Route("/admin/users/{user}", admin_get_user, methods=["GET"]),
    Route("/admin/users/{user}/password", admin_set_password, methods=["PUT"]),
    Route("/admin/users/{user}/disable", admin_disable_user, methods=["POST"]),
    Route("/admin/users/{user}/unlock", admin_unlock_user, methods=["POST"]),
]
