"""The revocation store's contract, on PostgreSQL and SQLite alike."""

from __future__ import annotations

import time

from service.revocation.store import SqlRevocationStore
from service.store import Database


async def _add(db: Database, kind: str, value: str, expires_in: float = 600,
               not_before: float | None = None) -> int:
    store = SqlRevocationStore(db)
    now = time.time()
    async with db.transaction() as tx:
        entry = await store.add(tx, kind, value, not_before, now, now + expires_in)  # type: ignore[arg-type]
    return entry.seq


async def test_jti_entry_matches_only_that_jti(database: Database) -> None:
    """A jti entry covers the token with that jti and no other."""
    store = SqlRevocationStore(database)
    await _add(database, "jti", "j1")
    now = time.time()
    assert await store.matches("j1", None, None, now, now)
    assert not await store.matches("j2", None, None, now, now)


async def test_sid_entry_matches_every_token_of_the_session(database: Database) -> None:
    """A sid entry covers any token carrying that sid, whatever its jti."""
    store = SqlRevocationStore(database)
    await _add(database, "sid", "s1")
    now = time.time()
    assert await store.matches("any", "s1", "u1", now, now)
    assert not await store.matches("any", "s2", "u1", now, now)


async def test_subject_entry_matches_tokens_issued_before_not_before(database: Database) -> None:
    """A sub entry covers tokens whose iat is earlier than not_before, not later ones."""
    store = SqlRevocationStore(database)
    await _add(database, "sub", "u1", not_before=1000.0)
    now = time.time()
    assert await store.matches(None, None, "u1", 999.0, now)
    assert not await store.matches(None, None, "u1", 1000.0, now)
    assert not await store.matches(None, None, "u2", 999.0, now)


async def test_expired_entries_no_longer_match_and_are_purged(database: Database) -> None:
    """An entry past its expiry matches nothing and the purge deletes it."""
    store = SqlRevocationStore(database)
    await _add(database, "jti", "old", expires_in=-1)
    await _add(database, "jti", "live")
    now = time.time()
    assert not await store.matches("old", None, None, now, now)
    assert await store.purge(now) == 1
    assert [e.value for e in await store.since(0, now, 10)] == ["live"]


async def test_feed_returns_entries_after_the_cursor_in_order(database: Database) -> None:
    """since(seq) lists later entries oldest first and honours the limit."""
    store = SqlRevocationStore(database)
    first = await _add(database, "jti", "a")
    await _add(database, "sid", "b")
    await _add(database, "sub", "c", not_before=5.0)
    now = time.time()
    after_first = await store.since(first, now, 10)
    assert [(e.kind, e.value) for e in after_first] == [("sid", "b"), ("sub", "c")]
    assert [e.value for e in await store.since(0, now, 2)] == ["a", "b"]
