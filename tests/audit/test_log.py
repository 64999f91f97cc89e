"""The audit buffer: events recorded are written, a cancelled flush included."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

from service.audit.log import AuditLog
from service.audit.store import AuditEvent, AuditStore


class StalledThenWorking:
    """A store whose first write never finishes (a flush cancelled mid-write, as the
    periodic flush is at shutdown) and whose later writes are kept in memory."""

    def __init__(self) -> None:
        self.calls = 0
        self.written: list[AuditEvent] = []

    async def append(self, events: Sequence[AuditEvent]) -> None:
        self.calls += 1
        if self.calls == 1:
            await asyncio.Event().wait()
        self.written.extend(events)


async def test_a_flush_cancelled_mid_write_keeps_its_events_for_the_next() -> None:
    store = StalledThenWorking()
    audit = AuditLog(cast(AuditStore, store))
    audit.record("mfa.verify", "failure", subject="usr_1")
    audit.record("login", "ok", subject="usr_1")
    flushing = asyncio.ensure_future(audit.flush())
    await asyncio.sleep(0)
    assert store.calls == 1
    audit.record("mfa.verify", "failure", subject="usr_2")
    flushing.cancel()
    await asyncio.gather(flushing, return_exceptions=True)
    await audit.close()
    seen: list[tuple[Any, ...]] = [(e.action, e.subject) for e in store.written]
    assert seen == [("mfa.verify", "usr_1"), ("login", "usr_1"), ("mfa.verify", "usr_2")]
