"""HTTP: the revocation feed, RFC 7009 revocation, RFC 7662 introspection and the
operator's subject revocation. Thin: parse, call the domain, answer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.apikeys.credentials import basic_credentials, header_api_key
from service.apikeys.models import VerifiedKey
from service.errors import InsufficientScope, InvalidClient, InvalidRequest
from service.http.auth import authenticate, bearer_token, require_scope
from service.http.context import client_ip, runtime_of
from service.http.requests import read_form, whole_number
from service.http.responses import NO_STORE, json_response

# Hundreds of verifiers poll the same URL every few seconds: a shared cache may answer
# for one second, which bounds the staleness it adds.
FEED_CACHE = {"Cache-Control": "public, max-age=1"}
INTROSPECT_SCOPE = "authd:introspect"


async def revocation_feed(request: Request) -> Response:
    """``GET /v1/revocations?since=CURSOR`` → ``{"entries": [...], "cursor": "..."}``."""
    runtime = runtime_of(request)
    unknown = set(request.query_params) - {"since", "limit"}
    if unknown:
        raise InvalidRequest(f"unknown query parameter {sorted(unknown)[0]}")
    limit = whole_number("limit", request.query_params.get("limit", "1000"), 1, 1000)
    feed = await runtime.revocations.feed(request.query_params.get("since"), limit)
    return json_response(feed.as_dict(), headers=FEED_CACHE)


async def _authenticate_client(
    request: Request, form: dict[str, str], *, grant: str
) -> VerifiedKey | None:
    """RFC 6749 §2.3.1 client authentication by API key, as the token endpoints read
    it: HTTP Basic ``client_id:client_secret`` (``client_secret_basic``), ``client_secret``
    in the form (``client_secret_post``), or the key in ``X-API-Key`` /
    ``Authorization: ApiKey``. None when no client credential is presented (another
    Authorization scheme is not client authentication). Presented credentials must be
    valid: a failure spends the caller's failed-attempt budget (the exchange's own
    check) and is 401 ``invalid_client`` with the challenge of the scheme used."""
    runtime = runtime_of(request)
    for name in ("authorization", "x-api-key"):
        if len(request.headers.getlist(name)) > 1:
            raise InvalidRequest("a credential header appears more than once")
    authorization = request.headers.get("authorization")
    scheme = (authorization or "").partition(" ")[0].lower()
    basic = authorization if scheme == "basic" else None
    api_key_auth = authorization if scheme == "apikey" else None
    x_api_key = request.headers.get("x-api-key")
    posted_secret = form.get("client_secret") or None
    presented = [basic is not None, api_key_auth is not None or x_api_key is not None,
                 posted_secret is not None]
    if sum(presented) > 1:
        raise InvalidRequest("use one client authentication method, not two")
    if not any(presented):
        return None
    claimed_client = form.get("client_id") or None
    exchange = getattr(runtime, "api_key_exchange", None)
    try:
        if basic is not None:
            basic_client, unverified_key = basic_credentials(basic)
            if claimed_client is not None and claimed_client != basic_client:
                raise InvalidRequest("client_id differs from the authenticated client")
            claimed_client = basic_client
        elif posted_secret is not None:
            unverified_key = posted_secret
        else:
            unverified_key = header_api_key(x_api_key, api_key_auth)
        if exchange is None:
            raise InvalidClient("client authentication is not available")
        verified: VerifiedKey = await exchange.authenticate(
            unverified_key, ip=client_ip(request), grant=grant, client_id=claimed_client
        )
    except InvalidClient as exc:
        # RFC 6749 §5.2: the challenge names the scheme the client used.
        if api_key_auth is None and x_api_key is None:
            exc.headers["WWW-Authenticate"] = 'Basic realm="authd"'
        else:
            exc.headers["WWW-Authenticate"] = 'ApiKey realm="authd"'
        raise
    return verified


async def _introspection_caller_scopes(request: Request, form: dict[str, str]) -> frozenset[str]:
    """RFC 7662 §2.1: the caller authenticates as a client (as openid-client, Authlib,
    Spring's introspector and the gateways do) or with a Bearer access token; either
    way its scopes decide. A client's scopes are its key's, within the client's."""
    if bearer_token(request) is not None:
        if form.get("client_secret"):
            raise InvalidRequest("use one client authentication method, not two")
        return (await authenticate(request)).scopes
    verified = await _authenticate_client(request, form, grant="introspect")
    if verified is None:
        raise InvalidClient("authenticate as a client (Basic or client_secret) "
                            "or with a Bearer token")
    return verified.granted


def _token_param(form: dict[str, str]) -> str:
    token = form.get("token")
    if not token:
        raise InvalidRequest("token is required")
    hint = form.get("token_type_hint")
    if hint is not None and hint not in {"access_token", "refresh_token"}:
        # RFC 7009 §2.2.1 / RFC 7662 §2.1: an unknown hint may be ignored; we refuse it
        # so that a typo is visible rather than silently meaningless.
        raise InvalidRequest("token_type_hint must be access_token or refresh_token")
    return token


async def oauth_revoke(request: Request) -> Response:
    """RFC 7009: 200 with an empty body whether or not the token was known."""
    runtime = runtime_of(request)
    form = await read_form(request)
    token = _token_param(form)
    # RFC 7009 §2.1, client authentication optional here: the login client is public
    # (an app cannot keep a secret), so possession of a token authorises its revocation.
    client = await _authenticate_client(request, form, grant="revoke")
    kind = await runtime.inspector.revoke(token)
    if kind is not None:
        runtime.audit.record("token.revoke", "ok", ip=client_ip(request), token_type=kind,
                             actor=None if client is None else client.client.id)
    return Response(b"", 200, NO_STORE)


async def oauth_introspect(request: Request) -> Response:
    """RFC 7662 for callers holding ``authd:introspect``."""
    runtime = runtime_of(request)
    form = await read_form(request)
    if INTROSPECT_SCOPE not in await _introspection_caller_scopes(request, form):
        raise InsufficientScope(INTROSPECT_SCOPE)
    token = _token_param(form)
    return json_response(await runtime.inspector.introspect(token))


async def admin_revoke_subject(request: Request) -> Response:
    """``POST /admin/subjects/{sub}/revoke``: everything of ``sub`` issued before now."""
    runtime = runtime_of(request)
    principal = await require_scope(request, "authd:admin")
    sub = request.path_params["sub"]
    entry = await runtime.revocations.revoke_subject_for_operator(
        sub, actor=principal.subject, ip=client_ip(request)
    )
    return json_response({"sub": sub, "not_before": int(entry.not_before or 0),
                          "expires_at": int(entry.expires_at)})


routes: list[BaseRoute] = [
    Route("/v1/revocations", revocation_feed, methods=["GET"]),
    Route("/oauth/revoke", oauth_revoke, methods=["POST"]),
    Route("/oauth/introspect", oauth_introspect, methods=["POST"]),
    Route("/admin/subjects/{sub:path}/revoke", admin_revoke_subject, methods=["POST"]),
]
