"""Cross-replica invalidation: "drop what you cached about X".

With Redis, one pub/sub channel under the deployment's prefix reaches every replica
(and the CLI can publish to it). Without Redis the embedded default is one process,
so the bus delivers in-process. Either way every message is also a row of the
database's change cursor (service/changes.py), which every serving process polls:
a replica cut off from Redis, or a server sharing its SQLite file with the CLI, still
learns of every invalidation within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.background import Periodic
from service.changes import POLL_INTERVAL, ChangeFeed, ChangeStore

log = structlog.get_logger("authd.bus")

Handler = Callable[[str], Awaitable[None]]


class Bus(Protocol):
    async def publish(self, topic: str, payload: str = "") -> bool:
        """Deliver here and announce to every other process; False when no channel
        that reaches them took the message (its change row failed and Redis did too),
        so that a revocation can refuse to pass for propagated."""
        ...

    def subscribe(self, topic: str, handler: Handler) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class _Dispatch:
    """Handlers by topic, and the change cursor (service/changes.py) that every
    publish also writes to and every started bus polls, so that no replica depends
    on Redis to learn of an invalidation."""

    def __init__(self, changes: ChangeStore | None = None) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._feed = None if changes is None else ChangeFeed(changes, self._deliver)
        self._poller = Periodic("authd-changes", POLL_INTERVAL, self._poll)

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    async def _deliver(self, topic: str, payload: str) -> None:
        for handler in self._handlers.get(topic, ()):
            try:
                await handler(payload)
            except Exception:
                log.exception("bus.handler_failed", topic=topic)

    async def _record(self, topic: str, payload: str) -> int | None:
        return None if self._feed is None else await self._feed.append(topic, payload)

    async def _poll(self) -> None:
        if self._feed is not None:
            await self._feed.poll()

    def _claim(self, change_id: object) -> bool:
        """Whether a message carrying ``change_id`` is still to be delivered here."""
        if self._feed is None or not isinstance(change_id, int):
            return True
        return self._feed.claim(change_id)

    async def _start_polling(self) -> None:
        if self._feed is not None:
            self._poller.start()

    async def _stop_polling(self) -> None:
        await self._poller.stop()


class LocalBus(_Dispatch):
    """In-process delivery; with a change store, changes made by another process on
    the same database (the CLI on the SQLite file) arrive through the cursor."""

    async def publish(self, topic: str, payload: str = "") -> bool:
        change_id = await self._record(topic, payload)
        await self._deliver(topic, payload)
        # Without a change store there is no other process to reach.
        return self._feed is None or change_id is not None

    async def start(self) -> None:
        await self._start_polling()

    async def close(self) -> None:
        await self._stop_polling()


class RedisBus(_Dispatch):
    """Publishes to ``<prefix>events``; a listener task re-subscribes after failures
    (pub/sub resumes by itself when Redis returns), and the change cursor covers the
    time it cannot."""

    def __init__(self, redis: Redis, prefix: str, changes: ChangeStore | None = None) -> None:
        super().__init__(changes)
        self._redis = redis
        self._channel = f"{prefix}events"
        self._task: asyncio.Task[None] | None = None

    async def publish(self, topic: str, payload: str = "") -> bool:
        change_id = await self._record(topic, payload)
        # This replica learns of its own change here, at once: recording claimed the
        # change id, so neither Redis's echo of the message nor the cursor brings it
        # back (with the id unknown, the echo is delivered once more: harmless).
        await self._deliver(topic, payload)
        message = json.dumps({"topic": topic, "payload": payload, "id": change_id})
        try:
            await self._redis.publish(self._channel, message)
        except (RedisError, OSError):
            # The others read the change from the database, if its row was written.
            log.warning("bus.publish_failed", topic=topic, recorded=change_id is not None)
            return change_id is not None
        return True

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="authd-bus")
        await self._start_polling()

    async def close(self) -> None:
        await self._stop_polling()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=1.0
                        )
                        if message is not None:
                            await self._on_message(message.get("data"))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                log.warning("bus.disconnected")
                await asyncio.sleep(0.5)

    async def _on_message(self, data: object) -> None:
        try:
            text = data.decode() if isinstance(data, bytes) else str(data)
            envelope = json.loads(text)
            topic, payload = str(envelope["topic"]), str(envelope.get("payload", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("bus.bad_message")
            return
        if self._claim(envelope.get("id")):
            await self._deliver(topic, payload)
