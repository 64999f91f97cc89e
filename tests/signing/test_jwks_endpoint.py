"""The JWKS endpoint's caching headers, in-process over a real key ring."""

from __future__ import annotations

from types import SimpleNamespace

import httpx

from service.signing.handlers import JwksEndpoint
from service.store import Database
from tests.signing.helpers import build


async def _get(keys: object) -> httpx.Response:
    runtime = SimpleNamespace(keys=keys, settings=SimpleNamespace(jwks_max_age=300))
    endpoint = JwksEndpoint()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        scope["state"] = {"runtime": runtime}
        await endpoint(scope, receive, send)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://authd.test") as client:
        return await client.get("/.well-known/jwks.json")


async def test_an_empty_key_set_is_never_cached(database: Database) -> None:
    """Before any key could be loaded (storage down at start-up) the empty set is
    no-store: a cache holding it would outlive the outage and refuse every token."""
    signing = build(database)
    response = await _get(signing.keys)
    assert response.json() == {"keys": []}
    assert response.headers["cache-control"] == "no-store"


async def test_a_loaded_key_set_is_public_for_max_age(database: Database) -> None:
    signing = build(database)
    await signing.rotation.ensure_keys()
    await signing.keys.refresh(force=True)
    response = await _get(signing.keys)
    assert len(response.json()["keys"]) >= 1
    assert response.headers["cache-control"] == "public, max-age=300"
    await signing.issuer.close()
