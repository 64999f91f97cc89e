"""Attaching the sessions domain to a Runtime (after signing and revocation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.http.oauth import register_grant
from service.sessions.handlers import refresh_token_grant
from service.sessions.login import LoginService
from service.sessions.passwords import PasswordHasher
from service.sessions.refresh import RefreshService
from service.sessions.service import SessionService
from service.sessions.store import SqlRefreshStore, SqlUserStore
from service.sessions.users import UserService

if TYPE_CHECKING:
    from service.runtime import Runtime


def grants() -> None:
    """Answer ``grant_type=refresh_token`` at ``/oauth/token``."""
    register_grant("refresh_token", refresh_token_grant)


async def wire(runtime: Runtime, *, serving: bool) -> None:
    settings = runtime.settings
    hasher = PasswordHasher(memory_kib=settings.argon2_memory_kib,
                            time_cost=settings.argon2_time_cost,
                            parallelism=settings.argon2_parallelism)
    users = SqlUserStore(runtime.db)
    refresh_store = SqlRefreshStore(runtime.db)
    refresh = RefreshService(
        runtime.db, refresh_store, runtime.kek, runtime.issuer, runtime.revocations,
        runtime.audit, audience=settings.default_audience,
        access_ttl=settings.access_token_ttl, refresh_ttl=settings.refresh_token_ttl,
        grace=settings.refresh_reuse_grace,
    )
    login = LoginService(
        users, hasher, refresh, runtime.limiter, runtime.audit,
        failed_rate=settings.failed_login_rate,
        max_failures=settings.login_max_failures, lockout=settings.login_lockout,
        password_max_bytes=settings.password_max_bytes,
    )
    user_service = UserService(runtime.db, users, refresh_store, hasher, runtime.revocations,
                               runtime.audit, password_max_bytes=settings.password_max_bytes)
    runtime.sessions = SessionService(user_service, login, refresh, settings.refresh_cookie)
    runtime.inspector.refresh = refresh

    async def close_hasher() -> None:
        hasher.close()

    runtime.on_close(close_hasher)
    if serving:
        await refresh.start()
        runtime.on_close(refresh.close)
