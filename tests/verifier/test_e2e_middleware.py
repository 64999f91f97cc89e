"""The ASGI middleware in a small Starlette service, with real authd tokens and authd's
real JWKS: accepted, short of a scope, signed by a revoked key, and authd gone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx
import jwt
import pytest
from authd_verifier import AsyncJWKSCache, AsyncVerifier, CachePolicy
from authd_verifier.middleware import CLAIMS_SCOPE_KEY, BearerAuthMiddleware
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.verifier.e2e_support import AUDIENCE, PYTEST_MARKS, Authd, StartAuthd, start_authd

__all__ = ["start_authd"]
pytestmark = PYTEST_MARKS

REQUIRED_SCOPE = "orders:read"


async def orders(request: Request) -> JSONResponse:
    claims = request.scope[CLAIMS_SCOPE_KEY]
    return JSONResponse({"sub": claims.subject, "scopes": sorted(claims.scopes)})


Service = tuple[httpx.AsyncClient, AsyncVerifier]
OpenService = Callable[..., Service]


@pytest.fixture
async def service() -> AsyncIterator[OpenService]:
    """A Starlette app guarded by ``BearerAuthMiddleware`` trusting a given authd,
    called in-process through httpx's ASGI transport."""
    opened: list[Service] = []

    def open_for(authd: Authd, policy: CachePolicy | None = None) -> Service:
        verifier = AsyncVerifier.for_issuer(authd.issuer, AUDIENCE, policy=policy)
        app = Starlette(routes=[Route("/orders", orders)])
        app.add_middleware(BearerAuthMiddleware, verifier=verifier,
                           require_scopes=[REQUIRED_SCOPE])
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                   base_url="http://orders.test")
        opened.append((client, verifier))
        return client, verifier

    yield open_for
    for client, verifier in opened:
        await client.aclose()
        await verifier.aclose()


def cache_of(verifier: AsyncVerifier) -> AsyncJWKSCache:
    assert isinstance(verifier.keys, AsyncJWKSCache)
    return verifier.keys


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_with_the_scope_reaches_the_app_with_its_claims(
    start_authd: StartAuthd, service: OpenService
) -> None:
    """A /v1/token token holding orders:read gets 200, and the handler reads the verified
    claims from the request scope."""
    authd = start_authd()
    client_id, api_key = authd.service_client("orders:read orders:write")
    client, _ = service(authd)
    response = await client.get("/orders", headers=bearer(authd.v1_token(api_key)))
    assert response.status_code == 200, response.text
    assert response.json() == {"sub": client_id, "scopes": ["orders:read", "orders:write"]}


async def test_a_token_without_the_scope_gets_403_insufficient_scope(
    start_authd: StartAuthd, service: OpenService
) -> None:
    """A valid token lacking orders:read gets 403 with an RFC 6750 insufficient_scope
    challenge naming the required scope."""
    authd = start_authd()
    _, api_key = authd.service_client("orders:write")
    client, _ = service(authd)
    response = await client.get("/orders", headers=bearer(authd.v1_token(api_key)))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer realm=")
    assert 'error="insufficient_scope"' in challenge and 'scope="orders:read"' in challenge
    assert response.json()["error"] == "insufficient_scope"


async def test_a_token_of_a_revoked_key_gets_401_invalid_token(
    start_authd: StartAuthd, service: OpenService
) -> None:
    """After ``authd keys revoke`` of the signing key and the service's next JWKS refresh,
    that key's token gets 401 invalid_token while a new key's token gets 200."""
    authd = start_authd(AUTHD_JWKS_MAX_AGE="1")
    _, api_key = authd.service_client("orders:read")
    client, verifier = service(authd, CachePolicy(min_ttl=1, default_ttl=1, refetch_interval=0.5))
    old = authd.v1_token(api_key)
    assert (await client.get("/orders", headers=bearer(old))).status_code == 200
    old_kid = str(jwt.get_unverified_header(old)["kid"])
    authd.cli_json("keys", "revoke", old_kid)
    deadline = time.monotonic() + 10
    while old_kid in authd.jwks_kids():
        assert time.monotonic() < deadline, "the revoked key stayed in the JWKS"
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # the service's cached JWKS is past its max-age
    await cache_of(verifier).refresh()
    refused = await client.get("/orders", headers=bearer(old))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    assert (await client.get("/orders",
                             headers=bearer(authd.v1_token(api_key)))).status_code == 200


async def test_authd_gone_past_the_hard_expiry_gets_503(
    start_authd: StartAuthd, service: OpenService
) -> None:
    """With authd stopped and the cached keys past max-age plus stale_if_error, a request
    with a valid token gets 503 with Retry-After (the token is not at fault)."""
    authd = start_authd(AUTHD_JWKS_MAX_AGE="1")
    _, api_key = authd.service_client("orders:read")
    policy = CachePolicy(min_ttl=1, default_ttl=1, refetch_interval=0.5, stale_if_error=2)
    client, verifier = service(authd, policy)
    token = authd.v1_token(api_key)
    assert (await client.get("/orders", headers=bearer(token))).status_code == 200
    authd.server.stop()
    usable_until = cache_of(verifier).snapshot.usable_until
    await asyncio.sleep(max(0.0, usable_until - time.monotonic()) + 0.1)
    response = await client.get("/orders", headers=bearer(token))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"] == "temporarily_unavailable"
