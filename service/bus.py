"""Cross-replica invalidation: "drop what you cached about X".

With Redis, one pub/sub channel under the deployment's prefix reaches every replica
(and the CLI can publish to it). Without Redis the embedded default is one process,
so the bus delivers in-process; domains that must also notice changes made by another
process (the CLI on the same SQLite file) poll the database cheaply as well.
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

log = structlog.get_logger("authd.bus")

Handler = Callable[[str], Awaitable[None]]


class Bus(Protocol):
    async def publish(self, topic: str, payload: str = "") -> None: ...

    def subscribe(self, topic: str, handler: Handler) -> None: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class _Dispatch:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    async def _deliver(self, topic: str, payload: str) -> None:
        for handler in self._handlers.get(topic, ()):
            try:
                await handler(payload)
            except Exception:
                log.exception("bus.handler_failed", topic=topic)


class LocalBus(_Dispatch):
    async def publish(self, topic: str, payload: str = "") -> None:
        await self._deliver(topic, payload)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class RedisBus(_Dispatch):
    """Publishes to ``<prefix>events``; a listener task re-subscribes after failures."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        super().__init__()
        self._redis = redis
        self._channel = f"{prefix}events"
        self._task: asyncio.Task[None] | None = None

    async def publish(self, topic: str, payload: str = "") -> None:
        message = json.dumps({"topic": topic, "payload": payload})
        try:
            await self._redis.publish(self._channel, message)
        except (RedisError, OSError):
            log.warning("bus.publish_failed", topic=topic)
            # Local delivery still happens so this replica is never stale.
            await self._deliver(topic, payload)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="authd-bus")

    async def close(self) -> None:
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
            await self._deliver(str(envelope["topic"]), str(envelope.get("payload", "")))
        except (ValueError, KeyError, TypeError):
            log.warning("bus.bad_message")
