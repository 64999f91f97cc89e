"""The JWKS cache against authd's real JWKS endpoint: max-age honoured, ETag
revalidation answered 304, and cached keys outliving an authd outage up to the hard
expiry. Requests are counted by the server itself (``/metrics``)."""

from __future__ import annotations

import time

import pytest
from authd_verifier import CachePolicy, JWKSCache, KeySetUnavailable, Verifier, jwks_url

from tests.verifier.e2e_support import AUDIENCE, PYTEST_MARKS, StartAuthd, start_authd

__all__ = ["start_authd"]
pytestmark = PYTEST_MARKS

#: Honours whatever max-age authd sends above one second.
POLICY = CachePolicy(min_ttl=1, default_ttl=1, refetch_interval=0.5)


def test_keys_are_fetched_once_per_max_age_not_per_token(start_authd: StartAuthd) -> None:
    """Verifying continuously for 5 s against a 2 s max-age fetches the JWKS a handful
    of times (once per lifetime), never once per token."""
    authd = start_authd(AUTHD_JWKS_MAX_AGE="2")
    _, api_key = authd.service_client("orders:read")
    tokens = [authd.v1_token(api_key) for _ in range(20)]
    cache = JWKSCache(jwks_url(authd.issuer), policy=POLICY)
    verified = 0
    with Verifier(keys=cache, issuer=authd.issuer, audience=AUDIENCE) as verifier:
        started = time.monotonic()
        while time.monotonic() - started < 5.0:
            verifier.verify(tokens[verified % len(tokens)])
            verified += 1
            time.sleep(0.02)
        cache.wait_for_refresh(timeout=10)
        snapshot = cache.snapshot
    served = authd.jwks_requests()
    # The lifetime the cache applied is authd's max-age (refresh starts with 20 % left).
    assert snapshot.expires_at - snapshot.refresh_at == pytest.approx(2 * POLICY.refresh_ahead)
    # One fetch at the start, then one per 1.6-2 s of freshness: 3 or 4 in 5 s.
    assert 3 <= sum(served.values()) <= 5, served
    assert verified > 100


def test_revalidation_with_if_none_match_gets_304(start_authd: StartAuthd) -> None:
    """Once the cached JWKS is stale, the refresh sends its ETag and authd answers 304;
    the cache keeps its keys and takes the new max-age."""
    authd = start_authd(AUTHD_JWKS_MAX_AGE="1")
    _, api_key = authd.service_client("orders:read")
    token = authd.v1_token(api_key)
    cache = JWKSCache(jwks_url(authd.issuer), policy=POLICY)
    with Verifier(keys=cache, issuer=authd.issuer, audience=AUDIENCE) as verifier:
        verifier.verify(token)
        first = cache.snapshot
        while time.monotonic() < first.expires_at:
            time.sleep(0.05)
        cache.refresh()
        second = cache.snapshot
        assert verifier.verify(token).subject
    assert second.keys is first.keys and second.etag == first.etag is not None
    assert second.expires_at > first.expires_at
    assert authd.jwks_requests() == {200: 1, 304: 1}


def test_cached_keys_serve_through_an_outage_until_the_hard_expiry(
    start_authd: StartAuthd,
) -> None:
    """With authd stopped, keys fetched before keep verifying past their max-age for
    ``stale_if_error``; after that hard expiry verification raises KeySetUnavailable."""
    authd = start_authd(AUTHD_JWKS_MAX_AGE="1")
    _, api_key = authd.service_client("orders:read")
    seen, unseen = authd.v1_token(api_key), authd.v1_token(api_key)
    policy = CachePolicy(min_ttl=1, default_ttl=1, refetch_interval=0.5, stale_if_error=8)
    cache = JWKSCache(jwks_url(authd.issuer), policy=policy)
    with Verifier(keys=cache, issuer=authd.issuer, audience=AUDIENCE) as verifier:
        verifier.verify(seen)
        authd.server.stop()
        snapshot = cache.snapshot
        while time.monotonic() < snapshot.expires_at + 0.5:
            time.sleep(0.05)
        assert time.monotonic() < snapshot.usable_until - 1, "stopping authd took too long"
        # Past max-age, authd unreachable: the (failing) refreshes leave the keys serving.
        assert verifier.verify(unseen).subject
        assert verifier.verify(seen).subject
        cache.wait_for_refresh(timeout=10)
        while time.monotonic() < snapshot.usable_until:
            time.sleep(0.1)
        with pytest.raises(KeySetUnavailable):
            verifier.verify(seen)
    assert cache.snapshot is snapshot
