"""Recording audit events without slowing the request that causes them.

Hot-path events (token exchanges, logins) are buffered and written in batches at
least once a second and on shutdown, so a clean stop loses none; operator actions
are written before the command answers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from service.audit.store import AuditEvent, AuditStore
from service.background import Periodic
from service.observability.logging import scrub
from service.observability.metrics import AUDIT_DROPPED, OUTAGE_DROPPED
from service.store import StorageUnavailable

log = structlog.get_logger("authd.audit")

MAX_BUFFER = 50_000


class AuditLog:
    def __init__(self, store: AuditStore, *, flush_interval: float = 1.0) -> None:
        self.store = store
        self._buffer: list[AuditEvent] = []
        self._loop = Periodic("authd-audit", flush_interval, self.flush)

    @staticmethod
    def event(
        action: str,
        outcome: str = "ok",
        *,
        actor: str | None = None,
        subject: str | None = None,
        ip: str | None = None,
        **details: Any,
    ) -> AuditEvent:
        return AuditEvent(
            at=time.time(), action=action, outcome=outcome, actor=actor,
            subject=subject, ip=ip, details=scrub(details),
        )

    def record(self, action: str, outcome: str = "ok", **kw: Any) -> None:
        """Buffer an event; it is written within a second."""
        if len(self._buffer) >= MAX_BUFFER:
            OUTAGE_DROPPED.labels("audit").inc()
            return
        self._buffer.append(self.event(action, outcome, **kw))

    async def write(self, action: str, outcome: str = "ok", **kw: Any) -> None:
        """Write an event now (operator actions: the command answers after it)."""
        await self.store.append([self.event(action, outcome, **kw)])

    async def flush(self) -> None:
        batch, self._buffer = self._buffer, []
        if not batch:
            return
        try:
            await self.store.append(batch)
        except asyncio.CancelledError:
            # Stopped mid-write (a periodic flush still writing after Periodic's stop
            # grace, on a store that hangs): the events go back to the buffer for
            # close()'s own flush rather than being lost with the cancelled task (an
            # event may then be written twice, never dropped).
            self._buffer[:0] = batch
            raise
        except (StorageUnavailable, OSError) as exc:
            AUDIT_DROPPED.inc()
            log.warning("audit.flush_failed", events=len(batch), error=type(exc).__name__)
            # Keep them for the next try rather than lose them: through an outage the
            # buffer holds up to MAX_BUFFER events (oldest kept), written when storage
            # returns; what does not fit is counted, never silently lost.
            kept = batch[: max(0, MAX_BUFFER - len(self._buffer))]
            self._buffer[:0] = kept
            if len(kept) < len(batch):
                OUTAGE_DROPPED.labels("audit").inc(len(batch) - len(kept))

    async def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.stop()
        await self.flush()
