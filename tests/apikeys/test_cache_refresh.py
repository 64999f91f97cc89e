"""The verified-key cache's refresh ahead (issue 15): a busy entry is re-read in the
background before it expires, so the requests using it never miss together."""

from __future__ import annotations

from service.apikeys.cache import KeyCache
from service.apikeys.models import ApiKey, Client, VerifiedKey

DIGEST = b"d" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _verified() -> VerifiedKey:
    client = Client(id="cl_1", name="svc", scopes=frozenset({"read"}), audiences=("api",),
                    token_ttl=900.0, status="active", created_at=0.0, updated_at=0.0)
    key = ApiKey(id="key_1", client_id="cl_1", display="ak_live_abc…", scopes=frozenset({"read"}),
                 rate=None, status="active", expires_at=None, last_used_at=None, replaces=None,
                 created_at=0.0, revoked_at=None)
    return VerifiedKey(key=key, client=client)


def _refreshing_cache(clock: Clock, asked: list[bytes], ttl: float = 5.0) -> KeyCache:
    cache = KeyCache(ttl, stale_if_error=900.0, clock=clock, refresh=asked.append)
    cache.put(DIGEST, _verified(), cache.epoch)
    return cache


def test_a_use_early_in_the_ttl_asks_for_no_refresh() -> None:
    """Within the first half of its freshness an entry answers and asks nothing."""
    clock = Clock()
    asked: list[bytes] = []
    cache = _refreshing_cache(clock, asked)
    clock.now += 2.4
    assert cache.get(DIGEST) is not None
    assert asked == []


def test_a_use_in_the_second_half_asks_once_for_a_refresh_and_still_answers() -> None:
    """A busy entry near its end is re-read in the background once, answering meanwhile."""
    clock = Clock()
    asked: list[bytes] = []
    cache = _refreshing_cache(clock, asked)
    clock.now += 2.6
    assert cache.get(DIGEST) == _verified()
    assert cache.get(DIGEST) == _verified()
    assert asked == [DIGEST]


def test_a_refreshed_entry_is_fresh_for_a_whole_ttl_again() -> None:
    """The re-read record (put) answers for a full TTL from the re-read."""
    clock = Clock()
    asked: list[bytes] = []
    cache = _refreshing_cache(clock, asked)
    clock.now += 4.5
    cache.get(DIGEST)
    cache.put(DIGEST, _verified(), cache.epoch)
    clock.now += 4.9
    assert cache.get(DIGEST) is not None


def test_a_failed_refresh_is_asked_again_only_after_min_retry() -> None:
    """After a failed re-read the entry asks again no sooner than MIN_RETRY."""
    clock = Clock()
    asked: list[bytes] = []
    cache = _refreshing_cache(clock, asked, ttl=10.0)
    clock.now += 6.0
    cache.get(DIGEST)
    cache.refresh_failed(DIGEST)
    clock.now += 0.5
    cache.get(DIGEST)
    assert asked == [DIGEST]
    clock.now += 0.6
    cache.get(DIGEST)
    assert asked == [DIGEST, DIGEST]


def test_past_its_ttl_an_entry_answers_and_is_re_read() -> None:
    """Within a second TTL an entry still answers, and a re-read is asked for once."""
    clock = Clock()
    asked: list[bytes] = []
    cache = _refreshing_cache(clock, asked)
    clock.now += 6.0
    assert cache.get(DIGEST) == _verified()
    assert cache.get(DIGEST) == _verified()
    assert asked == [DIGEST]


def test_no_entry_answers_past_twice_its_ttl() -> None:
    """However long the re-read takes, the entry stops answering at twice its TTL."""
    clock = Clock()
    asked: list[bytes] = []
    cache = _refreshing_cache(clock, asked)
    clock.now += 2.6
    cache.get(DIGEST)
    clock.now += 7.5
    assert cache.get(DIGEST) is None


def test_without_a_refresh_owner_an_entry_stops_at_its_ttl() -> None:
    """A cache nobody re-reads for keeps the plain TTL."""
    clock = Clock()
    cache = KeyCache(5.0, stale_if_error=900.0, clock=clock)
    cache.put(DIGEST, _verified(), cache.epoch)
    clock.now += 5.1
    assert cache.get(DIGEST) is None


def test_an_entry_served_stale_never_outlives_its_stale_window_by_refresh_ahead() -> None:
    """Through an outage, an entry served stale stops at the end of its stale-if-error
    window even though the refresh-ahead grace would have kept it another TTL."""
    clock = Clock()
    asked: list[bytes] = []
    cache = KeyCache(5.0, stale_if_error=20.0, clock=clock, refresh=asked.append)
    cache.put(DIGEST, _verified(), cache.epoch)
    clock.now += 18.0  # past freshness, inside the stale window: the store is down
    assert cache.get(DIGEST) is None
    assert cache.serve_stale(DIGEST) is not None  # held until the window's end (t+20)
    clock.now += 2.5  # past the stale window, inside fresh_until + ttl
    assert cache.get(DIGEST) is None
