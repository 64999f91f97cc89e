"""RevocationService against real PostgreSQL and Redis: the mirror and its fallback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from service.audit.log import AuditLog
from service.audit.store import AuditStore
from service.observability.metrics import DENYLIST_FALLBACK
from service.revocation.errors import InvalidSubject
from service.revocation.mirror import RedisDenylist
from service.revocation.service import RevocationService
from service.revocation.store import SqlRevocationStore
from service.store import Database, open_database
from tests.support.databases import REDIS_URL
from tests.support.forwarder import Forwarder


@pytest.fixture
async def pg(pg_template_url: str) -> AsyncIterator[Database]:
    db = await open_database(pg_template_url)
    await db.execute("TRUNCATE revocations RESTART IDENTITY")
    yield db
    await db.close()


def _service(db: Database, redis: Redis | None, prefix: str) -> RevocationService:
    mirror = RedisDenylist(redis, prefix) if redis is not None else None
    return RevocationService(db, SqlRevocationStore(db), mirror, subject_lifetime=3600)


def _claims(jti: str = "j", sid: str = "s", sub: str = "u", iat: float | None = None
            ) -> dict[str, object]:
    return {"jti": jti, "sid": sid, "sub": sub, "iat": int(iat if iat is not None else time.time())}


async def test_revoked_token_is_seen_through_the_redis_mirror(
    pg: Database, redis: Redis, redis_prefix: str
) -> None:
    """After sync, a revocation is answered from Redis without a fallback."""
    service = _service(pg, redis, redis_prefix)
    await service.sync_mirror()
    await service.revoke_token("j1", time.time() + 60)
    before = DENYLIST_FALLBACK._value.get()
    assert await service.is_revoked(_claims(jti="j1"))
    assert not await service.is_revoked(_claims(jti="j2"))
    assert DENYLIST_FALLBACK._value.get() == before
    assert await redis.pttl(redis_prefix + "rv:jti:j1") > 0


async def test_subject_revocation_covers_earlier_tokens_only(
    pg: Database, redis: Redis, redis_prefix: str
) -> None:
    """A subject revocation denies tokens issued before it and not those issued after."""
    service = _service(pg, redis, redis_prefix)
    await service.sync_mirror()
    entry = await service.revoke_subject("u9", time.time())
    assert entry.not_before is not None
    assert await service.is_revoked(_claims(sub="u9", iat=entry.not_before - 1))
    assert not await service.is_revoked(_claims(sub="u9", iat=entry.not_before))


async def test_a_mirror_without_its_sentinel_is_not_trusted(
    pg: Database, redis: Redis, redis_prefix: str
) -> None:
    """When Redis lost its data, the check answers from the database: still revoked."""
    service = _service(pg, redis, redis_prefix)
    await service.sync_mirror()
    await service.revoke_session("s1", time.time() + 60)
    await redis.delete(redis_prefix + "rv:loaded", redis_prefix + "rv:sid:s1")
    before = DENYLIST_FALLBACK._value.get()
    assert await service.is_revoked(_claims(sid="s1"))
    assert DENYLIST_FALLBACK._value.get() == before + 1
    await service.sync_mirror()
    assert await redis.exists(redis_prefix + "rv:sid:s1")


async def test_redis_outage_falls_back_to_the_database_and_recovers(
    pg: Database, redis_prefix: str
) -> None:
    """With Redis unreachable, revocations are recorded and checked in the database;
    once it is back, the mirror catches up with what was missed."""
    forwarder = Forwarder.for_url(REDIS_URL).start()
    client = Redis.from_url(forwarder.url_through(REDIS_URL), socket_timeout=0.5,
                            socket_connect_timeout=0.5)
    try:
        service = _service(pg, client, redis_prefix)
        await service.sync_mirror()
        forwarder.stop()
        await service.revoke_token("during", time.time() + 60)
        assert await service.is_revoked(_claims(jti="during"))
        assert not await service.is_revoked(_claims(jti="other"))
        forwarder.start()
        await service.sync_mirror()
        assert await client.exists(redis_prefix + "rv:jti:during")
        before = DENYLIST_FALLBACK._value.get()
        assert await service.is_revoked(_claims(jti="during"))
        assert DENYLIST_FALLBACK._value.get() == before
    finally:
        keys = [k async for k in client.scan_iter(match=redis_prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
        forwarder.close()


async def test_feed_pages_with_the_returned_cursor(pg: Database) -> None:
    """Following the cursor lists every entry exactly once."""
    service = _service(pg, None, "x:")
    for n in range(5):
        await service.revoke_token(f"j{n}", time.time() + 60)
    first = await service.feed(None, limit=3)
    second = await service.feed(first.cursor, limit=3)
    third = await service.feed(second.cursor, limit=3)
    values = [e.value for e in first.entries + second.entries]
    assert values == [f"j{n}" for n in range(5)]
    assert third.entries == [] and third.cursor == second.cursor


@pytest.mark.parametrize("sub", ["", "x" * 257, "a\nb"])
async def test_operator_subject_revocation_refuses_a_subject_no_token_carries(
    pg: Database, sub: str
) -> None:
    """Empty, over 256 characters or unprintable: refused before anything is recorded."""
    service = RevocationService(pg, SqlRevocationStore(pg), None, subject_lifetime=3600,
                                audit=AuditLog(AuditStore(pg)))
    with pytest.raises(InvalidSubject):
        await service.revoke_subject_for_operator(sub, actor="cli")
    assert (await service.feed(None)).entries == []


async def test_operator_subject_revocation_is_audited_with_its_actor(pg: Database) -> None:
    """The HTTP admin API and the CLI share one path: revoke, then audit actor and IP."""
    await pg.execute("TRUNCATE audit_events RESTART IDENTITY")
    service = RevocationService(pg, SqlRevocationStore(pg), None, subject_lifetime=3600,
                                audit=AuditLog(AuditStore(pg)))
    entry = await service.revoke_subject_for_operator("usr_1", actor="usr_admin", ip="10.0.0.1")
    assert entry.kind == "sub" and entry.value == "usr_1"
    rows = await pg.fetch("SELECT action, actor, subject, ip FROM audit_events")
    assert [(r["action"], r["actor"], r["subject"], r["ip"]) for r in rows] == [
        ("subject.revoke", "usr_admin", "usr_1", "10.0.0.1")]
