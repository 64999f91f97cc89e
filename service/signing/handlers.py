"""HTTP: the JWKS (RFC 7517), the server metadata (RFC 8414), the admin key API."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from service.http.auth import require_scope
from service.http.context import client_ip, runtime_of
from service.http.oauth import token_endpoint
from service.http.responses import json_response
from service.signing.errors import KeyNotFound
from service.signing.keys import KID_SHAPE
from service.signing.store import SigningKeyRecord

ADMIN_SCOPE = "authd:admin"


def _if_none_match(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison, a list of tags, or ``*``."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


class JwksEndpoint:
    """``GET /.well-known/jwks.json`` as a bare ASGI endpoint (RFC 7517 §5).

    The hottest public route: prepared body and ETag from the key ring, headers
    built as raw byte pairs, no Request or Response object per call. Verifiers
    revalidate with ``If-None-Match`` and get a bodiless 304.
    """

    def __init__(self) -> None:
        # The answer's headers for the document they were made for (its body object):
        # rebuilt only when the key set changes.
        self._made_for: tuple[bytes, str, bool, float] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._full_headers: list[tuple[bytes, bytes]] = []

    def _prepare(self, body: bytes, etag: str, cacheable: bool, max_age: float) -> None:
        # An empty set means the keys could not be loaded yet (storage down at
        # start-up): no cache may keep it once the keys are back.
        cache_control = (f"public, max-age={int(max_age)}".encode() if cacheable
                         else b"no-store")
        self._headers = [(b"etag", etag.encode()), (b"cache-control", cache_control)]
        self._full_headers = [*self._headers, (b"content-type", b"application/json"),
                              (b"content-length", str(len(body)).encode())]
        self._made_for = (body, etag, cacheable, max_age)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = scope["state"]["runtime"]
        keys = runtime.keys
        body: bytes = keys.jwks_body
        etag: str = keys.jwks_etag
        cacheable = bool(keys.records)
        max_age = runtime.settings.jwks_max_age
        made_for = self._made_for
        if made_for is None or made_for[0] is not body or made_for[1:] != (
                etag, cacheable, max_age):
            self._prepare(body, etag, cacheable, max_age)
        if_none_match = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                if_none_match = value.decode("latin-1")
                break
        if if_none_match is not None and _if_none_match(if_none_match, etag):
            await send({"type": "http.response.start", "status": 304,
                        "headers": list(self._headers)})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": list(self._full_headers)})
        await send({"type": "http.response.body", "body": body})


def metadata_document(
    issuer: str,
    dpop_algorithms: list[str] | None = None,
    signing_algorithms: list[str] | None = None,
) -> dict[str, Any]:
    """RFC 8414 §2 authorization server metadata for this deployment."""
    document = {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        # What /oauth/token actually dispatches, not a second list to keep in step.
        "grant_types_supported": token_endpoint.grant_types,
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        # Revocation: a public client (the login app) may revoke its own tokens with
        # no client authentication (RFC 7009 §2.1), hence "none".
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "none"
        ],
        # Introspection also takes a Bearer access token holding authd:introspect;
        # RFC 8414 lists client authentication methods only, so it is not named here.
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post"
        ],
        "scopes_supported": ["authd:admin", "authd:introspect"],
    }
    if dpop_algorithms:
        document["dpop_signing_alg_values_supported"] = dpop_algorithms  # RFC 9449 §5.1
    if signing_algorithms:
        # The algorithms access tokens are signed with: those of the published keys
        # and the key set's target (issue 16). No registered RFC 8414 member covers
        # JWT access tokens (RFC 9068 defines none; token_endpoint_auth_signing_alg_*
        # is about client assertions): this extension member follows the registry's
        # *_signing_alg_values_supported pattern (docs/signing-algorithms.md).
        document["access_token_signing_alg_values_supported"] = signing_algorithms
    return document


async def metadata(request: Request) -> Response:
    runtime = runtime_of(request)
    body = json.dumps(metadata_document(runtime.settings.issuer, runtime.dpop.algorithms,
                                        list(runtime.keys.announced_algorithms)),
                      separators=(",", ":"))
    # The signing algorithms change with the key set: cached no longer than the JWKS.
    max_age = min(3600, int(runtime.settings.jwks_max_age))
    return Response(body.encode(), media_type="application/json",
                    headers={"Cache-Control": f"public, max-age={max_age}"})


def key_view(record: SigningKeyRecord) -> dict[str, Any]:
    return {
        "kid": record.kid,
        "alg": record.alg,
        "state": record.state,
        "created_at": record.created_at,
        "activated_at": record.activated_at,
        "retired_at": record.retired_at,
        "revoked_at": record.revoked_at,
        "erased_at": record.erased_at,
    }



async def list_keys(request: Request) -> Response:
    await require_scope(request, ADMIN_SCOPE)
    runtime = runtime_of(request)
    records = await runtime.rotation.list_keys()
    return json_response({"keys": [key_view(r) for r in records]})


async def rotate(request: Request) -> Response:
    principal = await require_scope(request, ADMIN_SCOPE)
    runtime = runtime_of(request)
    change = await runtime.rotation.rotate(
        trigger="api", actor=principal.subject, ip=client_ip(request)
    )
    return json_response(change.as_dict())


async def revoke(request: Request) -> Response:
    principal = await require_scope(request, ADMIN_SCOPE)
    kid = request.path_params["kid"]
    if not KID_SHAPE.match(kid):
        raise KeyNotFound("(malformed)")
    change = await runtime_of(request).rotation.revoke(
        kid, actor=principal.subject, ip=client_ip(request)
    )
    return json_response(change.as_dict())


routes: list[BaseRoute] = [
    Route("/.well-known/jwks.json", JwksEndpoint(), methods=["GET"]),
    Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
    Route("/admin/keys", list_keys, methods=["GET"]),
    Route("/admin/keys/rotate", rotate, methods=["POST"]),
    Route("/admin/keys/{kid}/revoke", revoke, methods=["POST"]),
]
