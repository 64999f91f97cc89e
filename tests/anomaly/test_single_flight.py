"""Anomaly checks that find no view of a key together share one read of it (issue 15),
on both backends."""

from __future__ import annotations

import asyncio

from service.anomaly.monitor import KeyUseMonitor
from service.anomaly.store import KeyAccess, SqlAnomalyStore
from service.audit.log import AuditLog
from service.audit.store import AuditStore
from service.bus import LocalBus
from service.store import Database

CONCURRENT = 20


class CountingAnomalyStore(SqlAnomalyStore):
    """The real SQL store, counting its reads of a key's access view."""

    reads = 0

    async def key_access(self, key_id: str) -> KeyAccess | None:
        self.reads += 1
        return await super().key_access(key_id)


async def test_concurrent_checks_of_one_key_share_a_single_view_read(
    database: Database,
) -> None:
    """Twenty anomaly checks of a key with no view yet read its access view once."""
    store = CountingAnomalyStore(database)
    monitor = KeyUseMonitor(store, AuditLog(AuditStore(database)), LocalBus(), policy="log",
                            cache_ttl=5.0)
    await asyncio.gather(
        *(monitor.check("key_1", "cl_1", "192.0.2.1") for _ in range(CONCURRENT)))
    assert store.reads == 1
