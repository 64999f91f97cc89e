"""The resources one process owns, opened and closed in one place.

The Starlette lifespan and every CLI command open a Runtime and pass it down
explicitly: no module-level connection, client or settings object exists.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from redis.asyncio import Redis

from service.audit.log import AuditLog
from service.audit.store import AuditStore
from service.bus import Bus, LocalBus, RedisBus
from service.changes import SqlChangeStore
from service.config import Settings
from service.ratelimit import RateLimiter
from service.signing.kek import Kek, load_kek
from service.store import Database, open_database
from service.store.database import Timeouts
from service.store.migrate import migrate

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from service.anomaly.service import AnomalyService  # mfa
    from service.apikeys.exchange import Exchange  # apikeys
    from service.apikeys.keys import ApiKeyService  # apikeys
    from service.console.service import Console  # console
    from service.delegation.exchange import TokenExchange  # delegation
    from service.dpop.proofs import DPoPService  # dpop
    from service.mfa.service import MfaService  # mfa
    from service.revocation.introspection import TokenInspector  # revocation
    from service.revocation.service import RevocationService  # revocation
    from service.sessions.service import SessionService  # sessions
    from service.signing.issuer import TokenIssuer  # signing
    from service.signing.keyring import KeyRing  # signing
    from service.signing.rotation import KeyRotation  # signing

log = structlog.get_logger("authd.runtime")

ReadinessCheck = Callable[[], Awaitable[None]]


@dataclass
class Runtime:
    settings: Settings
    db: Database
    redis: Redis | None
    bus: Bus
    audit: AuditLog
    kek: Kek
    limiter: RateLimiter
    # Set when tracing is on (service/observability/tracing.py): db, redis and the
    # issuer are then its traced wrappers.
    tracer: Tracer | None = None
    started_at: float = field(default_factory=time.time)
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Domain services, attached by service.wiring.wire (one line per domain):
    # --- signing fields ---
    keys: KeyRing = field(init=False)
    issuer: TokenIssuer = field(init=False)
    rotation: KeyRotation = field(init=False)
    # --- revocation fields ---
    revocations: RevocationService = field(init=False)
    inspector: TokenInspector = field(init=False)
    # --- apikeys fields ---
    apikeys: ApiKeyService = field(init=False)
    api_key_exchange: Exchange = field(init=False)
    # --- dpop fields ---
    dpop: DPoPService = field(init=False)
    # --- delegation fields ---
    token_exchange: TokenExchange = field(init=False)
    # --- sessions fields ---
    sessions: SessionService = field(init=False)
    # --- mfa fields ---
    anomaly: AnomalyService = field(init=False)
    mfa: MfaService = field(init=False)
    # --- console fields ---
    console: Console = field(init=False)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(closer)


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, serving: bool = False, tracer: Tracer | None = None
) -> AsyncIterator[Runtime]:
    """Open storage, Redis, the bus and the audit log; ``serving`` starts the
    background work a server needs (bus listener, audit flusher, domain loops);
    ``tracer`` (tracing on) wraps storage, Redis and signing in spans."""
    kek = load_kek(settings)
    db = await open_database(settings.effective_database_url, Timeouts(
        connect=settings.database_connect_timeout, acquire=settings.database_acquire_timeout,
        statement=settings.database_statement_timeout,
    ))
    if tracer is not None:
        from service.observability.traced import TracedDatabase

        db = TracedDatabase(db, tracer)
    try:
        if settings.embedded:
            await migrate(db)
        redis: Redis | None = None
        bus: Bus
        if settings.redis_url:
            redis = Redis.from_url(
                settings.redis_url,
                socket_timeout=settings.redis_timeout,
                socket_connect_timeout=settings.redis_timeout,
                health_check_interval=10,
            )
            if tracer is not None:
                from service.observability.traced import trace_redis

                trace_redis(redis, tracer)
            bus = RedisBus(redis, settings.redis_prefix, SqlChangeStore(db))
        else:
            bus = LocalBus(SqlChangeStore(db))
        audit = AuditLog(AuditStore(db))
        # One limiter for every domain: a login's and an MFA code's failures count
        # against the same per-IP window, in-process as well as through Redis.
        limiter = RateLimiter(redis, settings.redis_prefix)
        runtime = Runtime(settings=settings, db=db, redis=redis, bus=bus, audit=audit, kek=kek,
                          limiter=limiter, tracer=tracer)
        runtime.readiness["database"] = db.ping
        if redis is not None:
            runtime.readiness["redis"] = _redis_ping(redis)
        from service.wiring import wire

        await wire(runtime, serving=serving)
        if serving:
            await bus.start()
            await audit.start()
            await limiter.start()
        try:
            yield runtime
        finally:
            for closer in reversed(runtime._closers):
                with contextlib.suppress(Exception):
                    await closer()
            await limiter.close()
            await bus.close()
            await audit.close()
            if redis is not None:
                await redis.aclose()
    finally:
        await db.close()


def _redis_ping(redis: Redis) -> ReadinessCheck:
    async def ping() -> None:
        await redis.ping()

    return ping
