"""The one-step refresh rotation of the store, on PostgreSQL and SQLite alike."""

from __future__ import annotations

import asyncio
import hashlib
import secrets

from service.sessions.store import SqlRefreshStore, SqlUserStore
from service.store import Database

NOW = 1_800_000_000.0


def _digest() -> bytes:
    return hashlib.sha256(secrets.token_bytes(16)).digest()


async def _family(db: Database, store: SqlRefreshStore, name: str) -> bytes:
    """A user with one family and its first (unspent) token; returns the digest."""
    assert await SqlUserStore(db).create(f"usr_{name}", f"{name}@example.com", "h", NOW)
    digest = _digest()
    async with db.transaction() as tx:
        await store.create_family(tx, f"sid_{name}", f"usr_{name}", "", "", NOW, NOW + 3600)
        await store.insert_token(tx, digest, f"sid_{name}", 0, NOW)
    return digest


async def _count(db: Database, family: str) -> int:
    return int(await db.fetchval(
        "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = $1", family))


async def test_an_unspent_token_is_spent_once_and_its_successor_stored(
        database: Database) -> None:
    """rotate spends the token and inserts the successor; a second call with the same
    token changes nothing and reports it spent."""
    store = SqlRefreshStore(database)
    digest = await _family(database, store, "a")
    successor = _digest()
    first = await store.rotate(digest, NOW + 1, successor, b"sealed")
    assert first.rotated and first.record is not None and first.record.spent_at is None
    again = await store.rotate(digest, NOW + 2, _digest(), b"other")
    assert not again.rotated and again.record is not None
    assert again.record.spent_at == NOW + 1 and again.record.successor_digest == successor
    assert await _count(database, "sid_a") == 2


async def test_concurrent_rotations_of_one_token_mint_one_successor(
        database: Database) -> None:
    """Twenty concurrent rotations of the same token: exactly one spends it."""
    store = SqlRefreshStore(database)
    digest = await _family(database, store, "b")
    results = await asyncio.gather(
        *(store.rotate(digest, NOW + 1, _digest(), None) for _ in range(20)))
    assert sum(r.rotated for r in results) == 1
    assert await _count(database, "sid_b") == 2


async def test_concurrent_rotations_of_many_tokens_all_rotate(database: Database) -> None:
    """Rotations of distinct tokens arriving together (one batch on PostgreSQL) each
    spend their own token and store their own successor."""
    store = SqlRefreshStore(database)
    digests = [await _family(database, store, f"c{n}") for n in range(12)]
    successors = [_digest() for _ in digests]
    results = await asyncio.gather(*(
        store.rotate(d, NOW + 1, s, None) for d, s in zip(digests, successors, strict=True)))
    assert all(r.rotated for r in results)
    for n, successor in enumerate(successors):
        stored = await database.fetchval(
            "SELECT successor_digest FROM refresh_tokens WHERE digest = $1", digests[n])
        assert bytes(stored) == successor and await _count(database, f"sid_c{n}") == 2


async def test_a_denied_session_is_not_spent(database: Database) -> None:
    """A family whose sid is on the denylist comes back denied, unspent, unchanged."""
    store = SqlRefreshStore(database)
    digest = await _family(database, store, "d")
    await database.execute(
        "INSERT INTO revocations (kind, value, not_before, created_at, expires_at)"
        " VALUES ('sid', 'sid_d', NULL, $1, $2)", NOW, NOW + 900)
    found = await store.rotate(digest, NOW + 1, _digest(), None)
    assert found.denied and not found.rotated
    assert found.record is not None and found.record.spent_at is None
    assert await _count(database, "sid_d") == 1


async def test_a_subject_revoked_after_the_login_denies_it(database: Database) -> None:
    """A subject revocation later than the family's start denies it; an earlier one
    does not."""
    store = SqlRefreshStore(database)
    digest = await _family(database, store, "e")
    await database.execute(
        "INSERT INTO revocations (kind, value, not_before, created_at, expires_at)"
        " VALUES ('sub', 'usr_e', $1, $1, $2)", NOW - 10, NOW + 900)
    assert (await store.rotate(digest, NOW + 1, _digest(), None)).rotated
    later = await _family(database, store, "f")
    await database.execute(
        "INSERT INTO revocations (kind, value, not_before, created_at, expires_at)"
        " VALUES ('sub', 'usr_f', $1, $1, $2)", NOW + 5, NOW + 900)
    found = await store.rotate(later, NOW + 6, _digest(), None)
    assert found.denied and not found.rotated


async def test_an_unknown_token_finds_nothing(database: Database) -> None:
    """A digest that is not stored comes back without a record and changes nothing."""
    found = await SqlRefreshStore(database).rotate(_digest(), NOW, _digest(), None)
    assert found.record is None and not found.rotated


async def test_a_batch_decides_each_rotation_on_its_own(database: Database) -> None:
    """Rotations arriving together (one batch on either backend) of a usable, a spent,
    a denied, an expired and an unknown token: only the usable one is spent, and each
    comes back with its own view."""
    store = SqlRefreshStore(database)
    usable = await _family(database, store, "g")
    spent = await _family(database, store, "h")
    first = _digest()
    assert (await store.rotate(spent, NOW + 1, first, None)).rotated
    denied = await _family(database, store, "i")
    await database.execute(
        "INSERT INTO revocations (kind, value, not_before, created_at, expires_at)"
        " VALUES ('sid', 'sid_i', NULL, $1, $2)", NOW, NOW + 900)
    expired = await _family(database, store, "j")
    await database.execute(
        "UPDATE refresh_families SET expires_at = $1 WHERE id = 'sid_j'", NOW + 1)
    unknown = _digest()
    results = await asyncio.gather(*(
        store.rotate(d, NOW + 2, _digest(), b"sealed")
        for d in (usable, spent, denied, expired, unknown)))
    assert [r.rotated for r in results] == [True, False, False, False, False]
    assert [r.denied for r in results] == [False, False, True, False, False]
    views = [r.record for r in results]
    assert [v.family_id if v else None for v in views] == [
        "sid_g", "sid_h", "sid_i", "sid_j", None]
    assert views[0] is not None and views[0].spent_at is None
    assert views[1] is not None and views[1].spent_at == NOW + 1
    assert views[1].successor_digest == first
    assert [await _count(database, f"sid_{n}") for n in "ghij"] == [2, 2, 1, 1]
