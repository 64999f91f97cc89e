"""Attaching the console to a Runtime (last: it takes every domain's service through
its constructor; nothing else depends on it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.audit.store import AuditStore
from service.background import Periodic
from service.console.activity import SAMPLE_INTERVAL, Activity
from service.console.operators import Operators
from service.console.service import Console
from service.console.sessions import ConsoleSessions
from service.console.store import SqlConsoleStore

if TYPE_CHECKING:
    from service.runtime import Runtime

PURGE_INTERVAL = 3600.0


async def wire(runtime: Runtime, *, serving: bool) -> None:
    settings = runtime.settings
    store = SqlConsoleStore(runtime.db)
    sessions = ConsoleSessions(
        store, runtime.sessions.login, runtime.mfa.factors, runtime.revocations, runtime.kek,
        runtime.audit, idle_timeout=settings.console_idle_timeout,
        absolute_timeout=settings.console_absolute_timeout,
    )
    operators = Operators(store, runtime.sessions.users, sessions, runtime.audit)
    activity = Activity()
    runtime.console = Console(
        sessions=sessions, operators=operators, store=store, users=runtime.sessions.users,
        factors=runtime.mfa.factors, anomaly=runtime.anomaly, apikeys=runtime.apikeys,
        rotation=runtime.rotation, revocations=runtime.revocations,
        audit=AuditStore(runtime.db), readiness=runtime.readiness, activity=activity,
    )
    if serving:
        for task in (Periodic("authd-console-activity", SAMPLE_INTERVAL, activity.tick),
                     Periodic("authd-console-purge", PURGE_INTERVAL, sessions.purge)):
            task.start()
            runtime.on_close(task.stop)
