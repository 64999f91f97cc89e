"""HTTP: the revocation feed, RFC 7009 revocation, RFC 7662 introspection and the
operator's subject revocation. Thin: parse, call the domain, answer."""

from __future__ import annotations

import base64
import binascii
import time
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.errors import InvalidClient, InvalidRequest
from service.http.context import client_ip, runtime_of
from service.http.requests import read_form, whole_number
from service.http.responses import NO_STORE, json_response

# Hundreds of verifiers poll the same URL every few seconds: a shared cache may answer
# for one second, which bounds the staleness it adds.
FEED_CACHE = {"Cache-Control": "public, max-age=1"}
MAX_SUBJECT_CHARS = 256



async def revocation_feed(request: Request) -> Response:
    """``GET /v1/revocations?since=CURSOR`` → ``{"entries": [...], "cursor": "..."}``."""
    runtime = runtime_of(request)
    unknown = set(request.query_params) - {"since", "limit"}
    if unknown:
        raise InvalidRequest(f"unknown query parameter {sorted(unknown)[0]}")
    limit = whole_number("limit", request.query_params.get("limit", "1000"), 1, 1000)
    feed = await runtime.revocations.feed(request.query_params.get("since"), limit)
    return json_response(feed.as_dict(), headers=FEED_CACHE)


async def _authenticate_optional_client(request: Request, form: dict[str, str]) -> str | None:
    """RFC 7009 §2.1 client authentication, optional here: the login client is public
    (an app cannot keep a secret), so possession of a token is what authorises its
    revocation. A request that does present client credentials must present valid
    ones — an API key of that client — or it is refused with 401."""
    runtime = runtime_of(request)
    unverified_key: str | None = None
    claimed_client: str | None = form.get("client_id") or None
    authorization = request.headers.get("authorization", "")
    if authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            user, _, secret = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidClient("malformed Basic credentials") from None
        claimed_client, unverified_key = unquote(user), unquote(secret)
    elif authorization[:7].lower() == "apikey ":
        unverified_key = authorization[7:].strip()
    elif request.headers.get("x-api-key"):
        unverified_key = request.headers["x-api-key"]
    elif form.get("client_secret"):
        unverified_key = form["client_secret"]
    if unverified_key is None:
        return None
    apikeys = getattr(runtime, "apikeys", None)
    if apikeys is None:
        raise InvalidClient("client authentication is not available")
    principal = await apikeys.authenticate(unverified_key)
    if claimed_client is not None and principal.client_id != claimed_client:
        raise InvalidClient("client authentication failed")
    return str(principal.client_id)


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
    client = await _authenticate_optional_client(request, form)
    kind = await runtime.inspector.revoke(token)
    if kind is not None:
        runtime.audit.record("token.revoke", "ok", actor=client, ip=client_ip(request),
                             token_type=kind)
    return Response(b"", 200, NO_STORE)


async def oauth_introspect(request: Request) -> Response:
    """RFC 7662 for callers holding ``authd:introspect``."""
    from service.http.auth import require_scope

    runtime = runtime_of(request)
    await require_scope(request, "authd:introspect")
    form = await read_form(request)
    token = _token_param(form)
    return json_response(await runtime.inspector.introspect(token))


async def admin_revoke_subject(request: Request) -> Response:
    """``POST /admin/subjects/{sub}/revoke``: everything of ``sub`` issued before now."""
    from service.http.auth import require_scope

    runtime = runtime_of(request)
    principal = await require_scope(request, "authd:admin")
    sub = request.path_params["sub"]
    if not sub or len(sub) > MAX_SUBJECT_CHARS or not sub.isprintable():
        raise InvalidRequest("the subject must be 1-256 printable characters")
    entry = await runtime.revocations.revoke_subject(sub, time.time())
    await runtime.audit.write("subject.revoke", "ok", actor=_actor(principal), subject=sub,
                              ip=client_ip(request))
    return json_response({"sub": sub, "not_before": int(entry.not_before or 0),
                  "expires_at": int(entry.expires_at)})


def _actor(principal: object) -> str | None:
    return getattr(principal, "client_id", None) or getattr(principal, "subject", None)


routes: list[BaseRoute] = [
    Route("/v1/revocations", revocation_feed, methods=["GET"]),
    Route("/oauth/revoke", oauth_revoke, methods=["POST"]),
    Route("/oauth/introspect", oauth_introspect, methods=["POST"]),
    Route("/admin/subjects/{sub:path}/revoke", admin_revoke_subject, methods=["POST"]),
]
