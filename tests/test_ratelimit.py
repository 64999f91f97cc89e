"""The rate limiter against the real Redis: each hit counted once, counters dropped
when their window ends, local decisions while Redis is away pushed once it is back."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from service import ratelimit
from service.config import Rate
from service.ratelimit import RateLimiter
from tests.support.databases import REDIS_URL
from tests.support.forwarder import Forwarder

HOUR = Rate(10, 3600)


class Clock:
    """``time.time`` that a test moves forward instead of sleeping."""

    def __init__(self) -> None:
        self.now = float(int(time.time() // 3600) * 3600 + 10)  # early in a window

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    return fake


async def _redis_total(redis: Redis, prefix: str) -> int:
    keys = [key async for key in redis.scan_iter(match=prefix + "rl:*")]
    total = 0
    for key in keys:
        total += int(await redis.get(key) or 0)
    return total


@pytest.mark.redis
async def test_concurrent_hits_reach_redis_exactly_once(
    redis: Redis, redis_prefix: str, clock: Clock
) -> None:
    """Near the limit every hit pushes synchronously; hits arriving while an earlier
    push awaits Redis must not push that push's hits a second time."""
    limiter = RateLimiter(redis, redis_prefix)
    answers = await asyncio.gather(*(limiter.hit("t", "ip", HOUR) for _ in range(10)))
    await limiter.flush()
    assert answers == [None] * 10
    assert await _redis_total(redis, redis_prefix) == 10
    assert await limiter.hit("t", "ip", HOUR) is not None


async def test_counters_of_ended_windows_are_dropped_without_redis(clock: Clock) -> None:
    """The in-process limiter's background loop forgets counters whose window ended."""
    limiter = RateLimiter(None, "x:", sync_interval=0.01)
    await limiter.start()
    try:
        for n in range(5):
            assert await limiter.hit("t", f"ip-{n}", HOUR) is None
        assert len(limiter._counters) == 5
        clock.now += HOUR.window
        for _ in range(500):
            if not limiter._counters:
                break
            await asyncio.sleep(0.01)
        assert not limiter._counters
    finally:
        await limiter.close()


@pytest.mark.redis
async def test_hits_decided_locally_while_redis_is_down_are_pushed_later(
    redis: Redis, redis_prefix: str, clock: Clock
) -> None:
    """While Redis is unreachable the local count decides; when it answers again the
    sync pushes every hit taken meanwhile."""
    forwarder = Forwarder.for_url(REDIS_URL).start()
    client = Redis.from_url(forwarder.url_through(REDIS_URL), socket_timeout=0.5,
                            socket_connect_timeout=0.5)
    try:
        limiter = RateLimiter(client, redis_prefix)
        forwarder.stop()
        answers = [await limiter.hit("t", "ip", HOUR) for _ in range(11)]
        assert answers[:10] == [None] * 10
        assert answers[10] is not None
        forwarder.start()
        clock.now += ratelimit.REDIS_RETRY_AFTER + 1
        await limiter.flush()
        assert await _redis_total(redis, redis_prefix) == 10
    finally:
        await client.aclose()
        forwarder.close()
