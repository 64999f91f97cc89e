"""Periodic background work owned by a Runtime: flushers, pollers, purges.

One shape for every loop: run ``work`` every ``interval`` seconds in its own task;
a failure is logged and the loop goes on (a flush that fails once must not stop
the next); ``stop`` cancels and waits, so a clean shutdown can flush once more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("authd.background")


class Periodic:
    def __init__(self, name: str, interval: float, work: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.interval = interval
        self._work = work
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self._work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background.failed", task=self.name)
