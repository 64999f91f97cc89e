"""HTTP: the JWKS (RFC 7517), the server metadata (RFC 8414), the admin key API."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.http.auth import require_scope
from service.http.context import client_ip, runtime_of
from service.signing.errors import KeyNotFound
from service.signing.store import SigningKeyRecord

ADMIN_SCOPE = "authd:admin"
_KID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_NO_STORE = {"Cache-Control": "no-store"}


def _if_none_match(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison, a list of tags, or ``*``."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


async def jwks(request: Request) -> Response:
    """Prepared bytes and ETag: one attribute read each, no per-request encoding."""
    keys = runtime_of(request).keys
    body, etag = keys.jwks_body, keys.jwks_etag
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={int(runtime_of(request).settings.jwks_max_age)}",
    }
    if _if_none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, headers=headers, media_type="application/json")


def metadata_document(issuer: str) -> dict[str, Any]:
    """RFC 8414 §2 authorization server metadata for this deployment."""
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post"
        ],
        "introspection_endpoint_auth_methods_supported": ["bearer"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["authd:admin", "authd:introspect"],
    }


async def metadata(request: Request) -> Response:
    runtime = runtime_of(request)
    body = json.dumps(metadata_document(runtime.settings.issuer), separators=(",", ":"))
    return Response(body.encode(), media_type="application/json",
                    headers={"Cache-Control": "public, max-age=3600"})


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


def _json(data: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(data, separators=(",", ":")).encode(), status,
                    _NO_STORE, "application/json")


async def list_keys(request: Request) -> Response:
    await require_scope(request, ADMIN_SCOPE)
    runtime = runtime_of(request)
    records = await runtime.rotation.list_keys()
    return _json({"keys": [key_view(r) for r in records]})


async def rotate(request: Request) -> Response:
    principal = await require_scope(request, ADMIN_SCOPE)
    runtime = runtime_of(request)
    change = await runtime.rotation.rotate(
        trigger="api", actor=principal.subject, ip=client_ip(request)
    )
    return _json(change.as_dict())


async def revoke(request: Request) -> Response:
    principal = await require_scope(request, ADMIN_SCOPE)
    kid = request.path_params["kid"]
    if not _KID.match(kid):
        raise KeyNotFound("(malformed)")
    change = await runtime_of(request).rotation.revoke(
        kid, actor=principal.subject, ip=client_ip(request)
    )
    return _json(change.as_dict())


routes: list[BaseRoute] = [
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
    Route("/admin/keys", list_keys, methods=["GET"]),
    Route("/admin/keys/rotate", rotate, methods=["POST"]),
    Route("/admin/keys/{kid}/revoke", revoke, methods=["POST"]),
]
