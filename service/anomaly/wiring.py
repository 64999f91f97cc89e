"""Attaching the anomaly domain to a Runtime (after apikeys and sessions, before mfa):
the login monitor is used by the MFA step, the key monitor hooks the exchange."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.anomaly.monitor import KeyUseMonitor, LoginMonitor
from service.anomaly.service import AnomalyService
from service.anomaly.store import SqlAnomalyStore

if TYPE_CHECKING:
    from service.runtime import Runtime


async def wire(runtime: Runtime, *, serving: bool) -> None:
    settings = runtime.settings
    store = SqlAnomalyStore(runtime.db)
    keys = KeyUseMonitor(store, runtime.audit, runtime.bus, policy=settings.anomaly_policy,
                         cache_ttl=settings.api_key_cache_ttl)
    runtime.anomaly = AnomalyService(store, LoginMonitor(store, runtime.audit), runtime.audit,
                                     runtime.bus)
    exchange = getattr(runtime, "api_key_exchange", None)
    if exchange is not None:
        exchange.monitor = keys
    if serving:
        await keys.start()
        runtime.on_close(keys.close)
