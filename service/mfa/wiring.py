"""Attaching the MFA domain to a Runtime (after sessions and anomaly): the login's
second factor is plugged into ``runtime.sessions.login``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import structlog

from service.background import Periodic
from service.mfa.challenge import LoginSecondFactor
from service.mfa.factors import Factors
from service.mfa.service import MfaService
from service.mfa.store import SqlMfaStore
from service.sessions.store import SqlUserStore

if TYPE_CHECKING:
    from service.runtime import Runtime

log = structlog.get_logger("authd.mfa")
PURGE_INTERVAL = 60.0


async def wire(runtime: Runtime, *, serving: bool) -> None:
    settings = runtime.settings
    store = SqlMfaStore(runtime.db)
    users = SqlUserStore(runtime.db)
    factors = Factors(
        runtime.db, store, users, runtime.kek, runtime.limiter, runtime.audit,
        issuer_name=urlsplit(settings.issuer).hostname or "authd",
        failed_rate=settings.failed_login_rate, max_failures=settings.login_max_failures,
        lockout_for=runtime.sessions.login.lockout_for,
    )
    login = LoginSecondFactor(store, factors, users, runtime.sessions.refresh,
                              runtime.anomaly.logins, runtime.audit,
                              policy=settings.anomaly_policy)
    runtime.mfa = MfaService(factors, login)
    runtime.sessions.login.second_factor = login
    if serving:
        async def purge() -> None:
            await store.purge_tickets(time.time() - 3600)

        purger = Periodic("authd-mfa-purge", PURGE_INTERVAL, purge)
        purger.start()
        runtime.on_close(purger.stop)
