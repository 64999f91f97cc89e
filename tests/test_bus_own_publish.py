"""A replica's own bus publish reaches its own handlers at once (found by the
console's browser test: an API key revoked on a PostgreSQL + Redis replica kept
exchanging there for the cache's TTL, as the recorded change id made both Redis's
echo and the change cursor skip it)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from service.bus import RedisBus
from service.changes import SqlChangeStore
from service.store import Database

pytestmark = [pytest.mark.redis]


async def test_a_redis_bus_delivers_its_own_publish_before_returning(
        database: Database, redis: Redis, redis_prefix: str) -> None:
    """With the change cursor on, ``publish`` has run this replica's handlers once
    by the time it returns."""
    bus = RedisBus(redis, redis_prefix, SqlChangeStore(database))
    seen: list[str] = []

    async def handler(payload: str) -> None:
        seen.append(payload)

    bus.subscribe("apikeys", handler)
    await bus.start()
    try:
        await bus.publish("apikeys", "key:key_1")
        assert seen == ["key:key_1"]
    finally:
        await bus.close()
