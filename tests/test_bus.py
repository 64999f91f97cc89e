"""The bus over real Redis and the change cursor (issue 14): each invalidation is
delivered once on every replica, by pub/sub when Redis is there and by the cursor
when it is not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from service.bus import RedisBus
from service.changes import SqlChangeStore
from service.store import Database
from tests.support.databases import REDIS_URL
from tests.support.forwarder import Forwarder

TOPIC = "apikeys.invalidate"


class Received:
    def __init__(self) -> None:
        self.payloads: list[str] = []

    async def __call__(self, payload: str) -> None:
        self.payloads.append(payload)

    async def wait_for(self, count: int, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while len(self.payloads) < count:
            assert time.monotonic() < deadline, self.payloads
            await asyncio.sleep(0.05)


@pytest.fixture
async def replicas(
    database: Database, redis_prefix: str, redis_forwarder: Forwarder,
) -> AsyncIterator[tuple[RedisBus, RedisBus, Received]]:
    """Two buses on one database and one Redis channel; the second one's handler."""
    clients = [Redis.from_url(redis_forwarder.url_through(REDIS_URL), socket_timeout=0.5,
                              socket_connect_timeout=0.5) for _ in range(2)]
    first, second = (RedisBus(c, redis_prefix, SqlChangeStore(database)) for c in clients)
    received = Received()
    second.subscribe(TOPIC, received)
    await first.start()
    await second.start()
    await asyncio.sleep(0.6)  # both subscribed, both cursors placed
    yield first, second, received
    for bus in (first, second):
        await bus.close()
    for client in clients:
        await client.aclose()


async def test_a_message_over_pub_sub_is_not_delivered_again_by_the_cursor(
    replicas: tuple[RedisBus, RedisBus, Received],
) -> None:
    """With Redis up, the other replica gets the message once, though the cursor sees it too."""
    first, _, received = replicas
    await first.publish(TOPIC, "key:a")
    await received.wait_for(1)
    await asyncio.sleep(1.2)  # two polls of the cursor
    assert received.payloads == ["key:a"]


async def test_with_redis_cut_the_cursor_delivers_each_message_once(
    replicas: tuple[RedisBus, RedisBus, Received], redis_forwarder: Forwarder,
) -> None:
    """With Redis unreachable, the other replica still gets every message, once, in order."""
    first, _, received = replicas
    redis_forwarder.stop()
    await first.publish(TOPIC, "key:b")
    await first.publish(TOPIC, "client:c")
    await received.wait_for(2, within=2.0)
    await asyncio.sleep(1.2)
    assert received.payloads == ["key:b", "client:c"]
