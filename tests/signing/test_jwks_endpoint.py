"""The JWKS endpoint's caching headers, in-process over a real key ring."""

from __future__ import annotations

from types import SimpleNamespace

import httpx

from service.config import Settings
from service.signing.handlers import JwksEndpoint
from service.signing.keyring import KeyRing
from service.store import Database
from tests.signing.helpers import build


async def _get(keys: KeyRing, *, endpoint: JwksEndpoint | None = None, max_age: float = 300,
               if_none_match: str | None = None) -> httpx.Response:
    runtime = SimpleNamespace(keys=keys, settings=Settings(jwks_max_age=max_age))
    endpoint = endpoint or JwksEndpoint()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        scope["state"] = {"runtime": runtime}
        await endpoint(scope, receive, send)

    headers = {} if if_none_match is None else {"If-None-Match": if_none_match}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://authd.test") as client:
        return await client.get("/.well-known/jwks.json", headers=headers)


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


async def test_the_kept_headers_turn_public_once_the_keys_are_loaded(database: Database) -> None:
    """The endpoint that answered no-store for the empty set answers public, max-age
    from the first request after the keys loaded, 200 and 304 alike."""
    signing = build(database)
    endpoint = JwksEndpoint()
    assert (await _get(signing.keys, endpoint=endpoint)).headers["cache-control"] == "no-store"
    await signing.rotation.ensure_keys()
    await signing.keys.refresh(force=True)
    loaded = await _get(signing.keys, endpoint=endpoint)
    assert loaded.headers["cache-control"] == "public, max-age=300"
    revalidated = await _get(signing.keys, endpoint=endpoint,
                             if_none_match=loaded.headers["etag"])
    assert revalidated.status_code == 304
    assert revalidated.headers["cache-control"] == "public, max-age=300"
    await signing.issuer.close()


async def test_the_kept_headers_follow_a_change_of_max_age(database: Database) -> None:
    """The same key set served under another AUTHD_JWKS_MAX_AGE carries that max-age:
    the route's endpoint is made once per process and serves every app built in it."""
    signing = build(database)
    await signing.rotation.ensure_keys()
    await signing.keys.refresh(force=True)
    endpoint = JwksEndpoint()
    first = await _get(signing.keys, endpoint=endpoint, max_age=300)
    assert first.headers["cache-control"] == "public, max-age=300"
    shorter = await _get(signing.keys, endpoint=endpoint, max_age=60)
    assert shorter.headers["etag"] == first.headers["etag"]
    assert shorter.headers["cache-control"] == "public, max-age=60"
    revalidated = await _get(signing.keys, endpoint=endpoint, max_age=60,
                             if_none_match=first.headers["etag"])
    assert revalidated.status_code == 304
    assert revalidated.headers["cache-control"] == "public, max-age=60"
    await signing.issuer.close()
