"""Periodic background work owned by a Runtime: flushers, pollers, purges.

One shape for every loop: run ``work`` every ``interval`` seconds in its own task;
a failure is logged and the loop goes on (a flush that fails once must not stop
the next). ``stop`` cancels a loop that is waiting, but lets a pass that has begun
finish: a flush swaps its buffer out before it writes, so cancelling it between the
write and what follows the write (the audit event of a new network, say) lost that
batch, and the final flush on close found nothing left to write. A pass still
running after ``STOP_GRACE`` is cancelled: a normal pass takes milliseconds, and on
a frozen store what it holds could not be written anyway, while a shutdown that
waited out every loop's statement timeout in turn would take most of a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("authd.background")

STOP_GRACE = 3.0


class Periodic:
    def __init__(self, name: str, interval: float, work: Callable[[], Awaitable[object]],
                 *, stop_grace: float = STOP_GRACE) -> None:
        self.name = name
        self.interval = interval
        self._work = work
        self._stop_grace = stop_grace
        self._task: asyncio.Task[None] | None = None
        self._working = False
        self._stopping = False

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if not self._working:
            task.cancel()
        else:
            _, running = await asyncio.wait({task}, timeout=self._stop_grace)
            if running:
                log.warning("background.stop_cancelled", task=self.name,
                            grace=self._stop_grace)
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.interval)
            self._working = True
            try:
                await self._work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background.failed", task=self.name)
            finally:
                self._working = False
