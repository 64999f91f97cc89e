"""JWKS caches: lazy fetch, Cache-Control, ETag, background refresh, single flight, outages."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest
from authd_verifier import (
    AsyncJWKSCache,
    CachePolicy,
    JWKSCache,
    KeySetUnavailable,
)
from authd_verifier.testing import TokenMinter

from .local_server import JWKS_PATH, JWKSRoute, LocalServer, ManualClock, Reply, Request

KID = "key-2026-01"


def make_cache(server: LocalServer, clock: ManualClock, **policy: float) -> JWKSCache:
    return JWKSCache(server.url + JWKS_PATH, policy=CachePolicy(**policy), clock=clock)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_nothing_is_fetched_before_the_first_lookup(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """Creating a cache fetches nothing; the first lookup does."""
    with make_cache(server, clock) as cache:
        assert server.count(JWKS_PATH) == 0
        assert cache.get_key(KID) is not None
    assert server.count(JWKS_PATH) == 1


def test_keys_are_reused_within_max_age(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """Lookups within max-age (before the refresh point) are served from memory."""
    with make_cache(server, clock) as cache:
        for _ in range(100):
            cache.get_key(KID)
            clock.advance(1)
    assert server.count(JWKS_PATH) == 1


@pytest.mark.parametrize(
    ("max_age", "policy", "lifetime"),
    [
        (120, {}, 120),
        (0, {"min_ttl": 30}, 30),
        (365 * 86_400, {"max_ttl": 3600}, 3600),
        (None, {"default_ttl": 200}, 200),
    ],
    ids=["max-age-is-the-lifetime", "raised-to-the-floor", "lowered-to-the-ceiling",
         "no-cache-control-uses-the-default"],
)
def test_lifetime_follows_max_age_within_the_policy(
    server: LocalServer,
    jwks_route: JWKSRoute,
    clock: ManualClock,
    max_age: int | None,
    policy: dict[str, float],
    lifetime: int,
) -> None:
    """The cache lifetime is the response's max-age, raised to min_ttl (so max-age=0
    cannot make every request fetch), capped at max_ttl, or default_ttl without one."""
    jwks_route.max_age = max_age
    with make_cache(server, clock, **policy) as cache:
        cache.get_key(KID)
        assert cache.snapshot.expires_at == pytest.approx(clock.now + lifetime)


def test_refresh_starts_in_the_background_before_expiry(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """Past the refresh point a lookup returns the cached key without waiting for the refresh.

    The refresh's answer is held back until the lookup has returned: a lookup
    that waited for it would see the route time out unreleased instead.
    """
    jwks_route.max_age = 100
    released = threading.Event()
    answered_after_release: list[bool] = []

    def held_back(request: Request) -> Reply:
        answered_after_release.append(released.wait(timeout=10))
        return jwks_route(request)

    with make_cache(server, clock, refresh_ahead=0.2) as cache:
        cache.get_key(KID)
        server.routes[JWKS_PATH] = held_back
        clock.advance(85)
        assert cache.get_key(KID) is not None
        released.set()
        cache.wait_for_refresh()
    assert answered_after_release == [True]
    assert server.count(JWKS_PATH) == 2


def test_refresh_revalidates_with_the_etag(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """A refresh sends If-None-Match; a 304 keeps the keys and extends their lifetime."""
    jwks_route.max_age = 100
    with make_cache(server, clock) as cache:
        cache.get_key(KID)
        first_etag = cache.snapshot.etag
        clock.advance(90)
        cache.refresh()
        assert cache.get_key(KID) is not None
        assert cache.snapshot.expires_at == pytest.approx(clock.now + 100)
    second = server.requests_to(JWKS_PATH)[1]
    assert first_etag is not None
    assert second.headers["if-none-match"] == first_etag


def test_changed_jwks_replaces_the_keys(
    server: LocalServer, jwks_route: JWKSRoute, other_minter: TokenMinter, clock: ManualClock
) -> None:
    """When the JWKS changed, the refresh gets a 200 and the new key set."""
    with make_cache(server, clock) as cache:
        cache.get_key(KID)
        jwks_route.jwks = other_minter.jwks()
        clock.advance(300)
        cache.refresh()
        assert cache.get_key(other_minter.kid) is not None
        assert cache.snapshot.keys.keys() == {other_minter.kid}


def test_unknown_kid_triggers_one_refetch(
    server: LocalServer,
    jwks_route: JWKSRoute,
    minter: TokenMinter,
    other_minter: TokenMinter,
    clock: ManualClock,
) -> None:
    """A kid published after our fetch is found by an immediate refetch (outside the interval)."""
    with make_cache(server, clock, refetch_interval=10) as cache:
        cache.get_key(KID)
        jwks_route.jwks = {"keys": [minter.jwk(), other_minter.jwk()]}
        clock.advance(11)
        assert cache.get_key(other_minter.kid) is not None
    assert server.count(JWKS_PATH) == 2


def test_unknown_kid_refetch_is_rate_limited(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """Within refetch_interval of the last fetch, unknown kids cause no request."""
    with make_cache(server, clock, refetch_interval=10) as cache:
        cache.get_key(KID)
        for index in range(50):
            assert cache.get_key(f"forged-{index}") is None
    assert server.count(JWKS_PATH) == 1


def test_concurrent_unknown_kid_lookups_share_one_fetch(
    server: LocalServer,
    jwks_route: JWKSRoute,
    minter: TokenMinter,
    other_minter: TokenMinter,
    clock: ManualClock,
) -> None:
    """Fifty threads meeting the same new kid at once cause a single fetch (single flight)."""
    with make_cache(server, clock, refetch_interval=10) as cache:
        cache.get_key(KID)
        jwks_route.jwks = {"keys": [minter.jwk(), other_minter.jwk()]}
        clock.advance(11)
        server.delay = 0.2
        results: list[bool] = []
        barrier = threading.Barrier(50)

        def lookup() -> None:
            barrier.wait()
            results.append(cache.get_key(other_minter.kid) is not None)

        threads = [threading.Thread(target=lookup) for _ in range(50)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results == [True] * 50
    assert server.count(JWKS_PATH) == 2


async def test_async_concurrent_lookups_share_one_fetch(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """A thousand concurrent first lookups in asyncio cause one fetch."""
    server.delay = 0.1
    cache = AsyncJWKSCache(server.url + JWKS_PATH, clock=clock)
    async with cache:
        keys = await asyncio.gather(*(cache.get_key(KID) for _ in range(1000)))
    assert all(key is not None for key in keys)
    assert server.count(JWKS_PATH) == 1


async def test_async_thousand_random_kids_cause_one_refetch(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """A thousand concurrent lookups of random kids cause at most one refetch."""
    cache = AsyncJWKSCache(
        server.url + JWKS_PATH, policy=CachePolicy(refetch_interval=10), clock=clock
    )
    async with cache:
        await cache.get_key(KID)
        clock.advance(11)
        server.delay = 0.1
        keys = await asyncio.gather(*(cache.get_key(f"forged-{i}") for i in range(1000)))
    assert keys == [None] * 1000
    assert server.count(JWKS_PATH) == 2


async def test_async_background_refresh(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """The async cache refreshes in a background task past the refresh point."""
    jwks_route.max_age = 100
    cache = AsyncJWKSCache(server.url + JWKS_PATH, clock=clock)
    async with cache:
        await cache.get_key(KID)
        clock.advance(85)
        assert await cache.get_key(KID) is not None
        await cache.wait_for_refresh()
    assert server.count(JWKS_PATH) == 2


def test_cached_keys_serve_while_authd_is_down(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """With authd unreachable, cached keys keep serving past expiry within stale_if_error."""
    jwks_route.max_age = 100
    with make_cache(server, clock, stale_if_error=600) as cache:
        cache.get_key(KID)
        server.stop()
        clock.advance(100 + 500)
        assert cache.get_key(KID) is not None
        cache.wait_for_refresh()
        assert cache.get_key(KID) is not None


def test_keys_expire_hard_after_stale_if_error(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """Past max-age plus stale_if_error with authd down, lookups raise KeySetUnavailable."""
    jwks_route.max_age = 100
    with make_cache(server, clock, stale_if_error=600) as cache:
        cache.get_key(KID)
        jwks_route.status = 503
        clock.advance(100 + 601)
        with pytest.raises(KeySetUnavailable):
            cache.get_key(KID)


def test_server_error_keeps_the_previous_keys(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """A 503 during refresh keeps the previous keys."""
    with make_cache(server, clock) as cache:
        cache.get_key(KID)
        jwks_route.status = 503
        clock.advance(300)
        cache.refresh()
        assert cache.get_key(KID) is not None


def test_first_fetch_failure_raises_unavailable(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """If the very first fetch fails, verification cannot proceed: KeySetUnavailable."""
    jwks_route.status = 500
    with make_cache(server, clock) as cache, pytest.raises(KeySetUnavailable):
        cache.get_key(KID)


def test_retries_after_failure_are_rate_limited(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """While authd fails, lookups retry at most once per refetch_interval."""
    jwks_route.status = 500
    with make_cache(server, clock, refetch_interval=10) as cache:
        for _ in range(20):
            with pytest.raises(KeySetUnavailable):
                cache.get_key(KID)
            clock.advance(1)
    assert server.count(JWKS_PATH) == 2


def test_malformed_jwks_is_not_accepted(server: LocalServer, clock: ManualClock) -> None:
    """A 200 answer that is not a JWKS counts as a failure."""
    server.routes[JWKS_PATH] = lambda request: Reply(200, {}, b'{"keys": 5}')
    with make_cache(server, clock) as cache, pytest.raises(KeySetUnavailable):
        cache.get_key(KID)


def test_unusable_keys_are_skipped(
    server: LocalServer, minter: TokenMinter, clock: ManualClock
) -> None:
    """Symmetric, private, short or badly named keys are skipped; good ones still load."""
    weak = TokenMinter(kid="weak", key_size=1024)
    private = {**minter.jwk(), "kid": "private", "d": "AQAB"}
    symmetric = {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"}
    bad_kid = {**minter.jwk(), "kid": "../etc"}
    encryption = {**minter.jwk(), "kid": "enc", "use": "enc"}
    document = {"keys": [weak.jwk(), private, symmetric, bad_kid, encryption, minter.jwk()]}
    server.routes[JWKS_PATH] = JWKSRoute(document)
    with make_cache(server, clock) as cache:
        cache.get_key(KID)
        assert set(cache.snapshot.keys) == {KID}


def test_duplicate_kid_is_skipped(
    server: LocalServer, minter: TokenMinter, other_minter: TokenMinter, clock: ManualClock
) -> None:
    """Two different keys published under one kid are both refused as ambiguous."""
    twin = {**other_minter.jwk(), "kid": KID}
    server.routes[JWKS_PATH] = JWKSRoute({"keys": [minter.jwk(), twin]})
    with make_cache(server, clock) as cache:
        assert cache.get_key(KID) is None


def test_redirects_are_not_followed(server: LocalServer, clock: ManualClock) -> None:
    """A redirect from the JWKS URL is not followed."""
    server.routes[JWKS_PATH] = lambda request: Reply(302, {"Location": "/elsewhere"})
    with make_cache(server, clock) as cache, pytest.raises(KeySetUnavailable):
        cache.get_key(KID)
    assert server.count("/elsewhere") == 0


def test_oversized_jwks_is_refused(server: LocalServer, clock: ManualClock) -> None:
    """A JWKS response over the size cap is refused."""
    body = b'{"keys": [], "pad": "' + b"x" * (600 * 1024) + b'"}'
    server.routes[JWKS_PATH] = lambda request: Reply(200, {}, body)
    with make_cache(server, clock) as cache, pytest.raises(KeySetUnavailable):
        cache.get_key(KID)


def test_plain_http_is_refused_for_remote_hosts() -> None:
    """A non-loopback http:// JWKS URL is refused unless explicitly allowed."""
    with pytest.raises(ValueError, match="https"):
        JWKSCache("http://authd.example.com/.well-known/jwks.json")
    JWKSCache("http://authd.internal/.well-known/jwks.json", allow_insecure_http=True).close()


def test_accept_header_asks_for_a_jwk_set(
    server: LocalServer, jwks_route: JWKSRoute, clock: ManualClock
) -> None:
    """The fetch asks for application/jwk-set+json."""
    with make_cache(server, clock) as cache:
        cache.get_key(KID)
    request: Request = server.requests_to(JWKS_PATH)[0]
    assert "application/jwk-set+json" in request.headers["accept"]
