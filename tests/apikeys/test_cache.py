"""The verified-key cache: freshness, invalidation and stale-if-error (issue 14)."""

from __future__ import annotations

from prometheus_client import REGISTRY

from service.apikeys.cache import KeyCache
from service.apikeys.models import ApiKey, Client, VerifiedKey

DIGEST = b"d" * 32


def _stale_served() -> float:
    return REGISTRY.get_sample_value("authd_api_key_stale_served_total") or 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _verified(key_id: str = "key_1", client_id: str = "cl_1") -> VerifiedKey:
    client = Client(id=client_id, name="svc", scopes=frozenset({"read"}), audiences=("api",),
                    token_ttl=900.0, status="active", created_at=0.0, updated_at=0.0)
    key = ApiKey(id=key_id, client_id=client_id, display="ak_live_abc…", scopes=frozenset({"read"}),
                 rate=None, status="active", expires_at=None, last_used_at=None, replaces=None,
                 created_at=0.0, revoked_at=None)
    return VerifiedKey(key=key, client=client)


def _cache(clock: Clock, *, ttl: float = 5.0, stale: float = 900.0) -> KeyCache:
    cache = KeyCache(ttl, stale_if_error=stale, clock=clock)
    cache.put(DIGEST, _verified(), cache.epoch)
    return cache


def test_an_entry_is_fresh_for_the_ttl_only() -> None:
    """get answers within the TTL and not after it."""
    clock = Clock()
    cache = _cache(clock)
    assert cache.get(DIGEST) is not None
    clock.now += 5.0
    assert cache.get(DIGEST) is None


def test_a_record_past_its_ttl_is_served_stale_when_the_store_fails() -> None:
    """Within the stale window, serve_stale answers with the kept record and counts it."""
    clock = Clock()
    cache = _cache(clock)
    clock.now += 600
    before = _stale_served()
    assert cache.get(DIGEST) is None
    assert cache.serve_stale(DIGEST) == _verified()
    assert _stale_served() == before + 1


def test_a_stale_record_is_held_for_a_ttl_so_an_outage_costs_one_lookup_per_ttl() -> None:
    """After serve_stale the record answers get (counted as stale) until another TTL passes."""
    clock = Clock()
    cache = _cache(clock)
    clock.now += 600
    cache.serve_stale(DIGEST)
    before = _stale_served()
    assert cache.get(DIGEST) is not None
    assert _stale_served() == before + 1
    clock.now += 5.0
    assert cache.get(DIGEST) is None


def test_nothing_is_served_after_the_stale_window() -> None:
    """A record last verified longer ago than the window is gone."""
    clock = Clock()
    cache = _cache(clock)
    clock.now += 900
    assert cache.serve_stale(DIGEST) is None


def test_the_stale_window_never_outlives_the_last_verification() -> None:
    """Serving stale again and again does not extend the window past the last verification."""
    clock = Clock()
    cache = _cache(clock)
    for _ in range(200):
        clock.now += 5.0
        cache.serve_stale(DIGEST)
    assert clock.now >= 1000 + 900
    assert cache.serve_stale(DIGEST) is None


def test_a_zero_window_turns_stale_serving_off() -> None:
    """AUTHD_API_KEY_STALE_IF_ERROR=0: past the TTL there is nothing to serve."""
    clock = Clock()
    cache = _cache(clock, stale=0.0)
    clock.now += 6
    assert cache.serve_stale(DIGEST) is None


def test_revoking_a_key_drops_its_stale_record_too() -> None:
    """An invalidation removes the entry with its stale window."""
    clock = Clock()
    cache = _cache(clock)
    clock.now += 600
    cache.drop_key("key_1")
    assert cache.serve_stale(DIGEST) is None


def test_disabling_a_client_drops_its_stale_records_too() -> None:
    """A client invalidation removes every entry of that client."""
    clock = Clock()
    cache = _cache(clock)
    clock.now += 600
    cache.drop_client("cl_1")
    assert cache.serve_stale(DIGEST) is None


def test_a_read_begun_before_an_invalidation_is_not_kept() -> None:
    """put refuses a record read in an older epoch."""
    clock = Clock()
    cache = KeyCache(5.0, stale_if_error=900.0, clock=clock)
    epoch = cache.epoch
    cache.drop_key("key_1")
    cache.put(DIGEST, _verified(), epoch)
    assert cache.get(DIGEST) is None
    assert cache.serve_stale(DIGEST) is None


def test_without_a_cache_ttl_a_verified_record_is_still_kept_for_outages() -> None:
    """AUTHD_API_KEY_CACHE_TTL=0 looks every key up, yet an outage still finds the record."""
    clock = Clock()
    cache = _cache(clock, ttl=0.0)
    assert cache.get(DIGEST) is None
    assert cache.serve_stale(DIGEST) == _verified()


def test_a_verified_key_grants_its_scopes_within_its_clients() -> None:
    """A key keeps the scopes it was made with; a token on it carries only those its
    client still holds (the client's were narrowed since)."""
    verified = _verified()
    client = Client(id="cl_1", name="svc", scopes=frozenset({"read", "admin"}),
                    audiences=("api",), token_ttl=900.0, status="active", created_at=0.0,
                    updated_at=0.0)
    key = ApiKey(id="key_1", client_id="cl_1", display="ak_live_abc…",
                 scopes=frozenset({"read", "write"}), rate=None, status="active",
                 expires_at=None, last_used_at=None, replaces=None, created_at=0.0,
                 revoked_at=None)
    assert verified.granted == frozenset({"read"})
    assert VerifiedKey(key=key, client=client).granted == frozenset({"read"})
