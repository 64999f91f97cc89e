"""The refresh family store contract (service/sessions/store.py ``SqlRefreshStore``)
beyond the one-step rotation (test_store_rotate.py), on PostgreSQL and SQLite alike."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from service.sessions.store import SqlRefreshStore, SqlUserStore
from service.store import Database

NOW = 1_800_000_000.0
TTL = 3600.0


def _digest() -> bytes:
    return hashlib.sha256(secrets.token_bytes(16)).digest()


async def _user(db: Database, name: str) -> str:
    assert await SqlUserStore(db).create(f"usr_{name}", f"{name}@example.com", "h", NOW)
    return f"usr_{name}"


async def _start(db: Database, store: SqlRefreshStore, family: str, user_id: str, *,
                 at: float = NOW, expires_at: float = NOW + TTL) -> bytes:
    """Start family ``family`` of ``user_id`` with its first token; returns its digest."""
    digest = _digest()
    async with db.transaction() as tx:
        await store.create_family(tx, family, user_id, "client-a", "read write", at,
                                  expires_at)
        await store.insert_token(tx, digest, family, 0, at)
    return digest


async def _revoke(db: Database, store: SqlRefreshStore, family: str, reason: str,
                  at: float) -> bool:
    async with db.transaction() as tx:
        return await store.revoke_family(tx, family, reason, at)


async def _revoke_user(db: Database, store: SqlRefreshStore, user_id: str, reason: str,
                       at: float) -> list[str]:
    async with db.transaction() as tx:
        return await store.revoke_user_families(tx, user_id, reason, at)


async def _revocation(db: Database, family: str) -> tuple[float | None, str | None]:
    row = await db.fetchrow(
        "SELECT revoked_at, revoke_reason FROM refresh_families WHERE id = $1", family)
    assert row is not None
    return row["revoked_at"], row["revoke_reason"]


async def _count(db: Database, family: str) -> int:
    return int(await db.fetchval(
        "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = $1", family))


async def _sealed(db: Database, digest: bytes) -> bytes | None:
    value = await db.fetchval(
        "SELECT successor_sealed FROM refresh_tokens WHERE digest = $1", digest)
    return None if value is None else bytes(value)


async def test_a_started_family_is_read_back_through_its_first_token(
        database: Database) -> None:
    """get of the first token shows the family as started: user, client, scopes, times,
    generation 0, unspent, not revoked, the user's status and amr ``pwd``."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "a")
    digest = await _start(database, store, "sid_a", user_id)
    record = await store.get(digest)
    assert record is not None
    assert (record.digest, record.family_id, record.generation, record.issued_at) == (
        digest, "sid_a", 0, NOW)
    assert (record.user_id, record.client_id, record.scopes) == (
        user_id, "client-a", "read write")
    assert (record.family_created_at, record.family_expires_at) == (NOW, NOW + TTL)
    assert (record.spent_at, record.successor_digest, record.successor_sealed) == (
        None, None, None)
    assert (record.family_revoked_at, record.user_status, record.amr) == (
        None, "active", "pwd")


async def test_a_family_keeps_the_methods_of_its_login(database: Database) -> None:
    """A family started with amr ``pwd otp`` reads back with it."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "b")
    digest = _digest()
    async with database.transaction() as tx:
        await store.create_family(tx, "sid_b", user_id, "", "", NOW, NOW + TTL, "pwd otp")
        await store.insert_token(tx, digest, "sid_b", 0, NOW)
    record = await store.get(digest)
    assert record is not None and record.amr == "pwd otp" and record.client_id == ""


async def test_a_family_started_in_a_failed_transaction_does_not_exist(
        database: Database) -> None:
    """create_family and insert_token roll back with their transaction."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "c")
    digest = _digest()

    class Abort(Exception):
        pass

    try:
        async with database.transaction() as tx:
            await store.create_family(tx, "sid_c", user_id, "", "", NOW, NOW + TTL)
            await store.insert_token(tx, digest, "sid_c", 0, NOW)
            raise Abort
    except Abort:
        pass
    assert await store.get(digest) is None
    assert await _count(database, "sid_c") == 0


async def test_an_unknown_digest_is_not_found(database: Database) -> None:
    """get of a digest never stored gives None."""
    assert await SqlRefreshStore(database).get(_digest()) is None


async def test_the_family_view_follows_the_user_status(database: Database) -> None:
    """Once the user is disabled, the token's view shows user_status ``disabled``."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "d")
    digest = await _start(database, store, "sid_d", user_id)
    async with database.transaction() as tx:
        await SqlUserStore(database).set_status(tx, user_id, "disabled", NOW + 1)
    record = await store.get(digest)
    assert record is not None and record.user_status == "disabled"


async def test_spend_marks_the_token_spent_once(database: Database) -> None:
    """spend records spent_at and the successor; a second spend is False and keeps the
    first."""
    store = SqlRefreshStore(database)
    digest = await _start(database, store, "sid_f", await _user(database, "f"))
    successor = _digest()
    async with database.transaction() as tx:
        assert await store.spend(tx, digest, NOW + 1, successor, b"sealed") is True
        assert await store.spend(tx, digest, NOW + 2, _digest(), b"other") is False
        assert await store.spent_at(tx, digest) == NOW + 1
    record = await store.get(digest)
    assert record is not None and record.successor_digest == successor
    assert record.successor_sealed == b"sealed"


async def test_spent_at_of_an_unspent_or_unknown_token_is_none(database: Database) -> None:
    """spent_at is None for an unspent token and for a digest never stored."""
    store = SqlRefreshStore(database)
    digest = await _start(database, store, "sid_g", await _user(database, "g"))
    async with database.transaction() as tx:
        assert await store.spent_at(tx, digest) is None
        assert await store.spent_at(tx, _digest()) is None


async def test_get_for_spend_reads_the_same_view_as_get(database: Database) -> None:
    """get_for_spend inside a transaction gives the record get gives."""
    store = SqlRefreshStore(database)
    digest = await _start(database, store, "sid_h", await _user(database, "h"))
    async with database.transaction() as tx:
        locked = await store.get_for_spend(tx, digest)
        assert await store.get_for_spend(tx, _digest()) is None
    assert locked is not None and locked == await store.get(digest)


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_get_for_spend_locks_the_token_row_only(database: Database) -> None:
    """Under get_for_spend's lock the token row is taken, but its family's and its
    user's rows stay free: a user disable (user row, then families) cannot deadlock
    with a spend. PostgreSQL only: SQLite has no row locks (BEGIN IMMEDIATE)."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "lock")
    digest = await _start(database, store, "sid_lock", user_id)
    free = "SELECT COUNT(*) FROM (SELECT 1 FROM {} WHERE {} = $1 FOR UPDATE SKIP LOCKED) x"
    async with database.transaction() as tx:
        assert await store.get_for_spend(tx, digest) is not None
        assert await database.fetchval(free.format("refresh_tokens", "digest"), digest) == 0
        assert await database.fetchval(free.format("refresh_families", "id"), "sid_lock") == 1
        assert await database.fetchval(free.format("users", "id"), user_id) == 1


async def test_revoke_family_sets_revoked_at_and_reason(database: Database) -> None:
    """revoke_family returns True and stores the time and the reason."""
    store = SqlRefreshStore(database)
    digest = await _start(database, store, "sid_i", await _user(database, "i"))
    assert await _revoke(database, store, "sid_i", "logout", NOW + 5) is True
    assert await _revocation(database, "sid_i") == (NOW + 5, "logout")
    record = await store.get(digest)
    assert record is not None and record.family_revoked_at == NOW + 5


async def test_revoke_family_a_second_time_keeps_the_first_revocation(
        database: Database) -> None:
    """Revoking a revoked family returns False and leaves revoked_at and reason as set."""
    store = SqlRefreshStore(database)
    await _start(database, store, "sid_j", await _user(database, "j"))
    assert await _revoke(database, store, "sid_j", "reuse", NOW + 5)
    assert await _revoke(database, store, "sid_j", "logout", NOW + 9) is False
    assert await _revocation(database, "sid_j") == (NOW + 5, "reuse")


async def test_revoke_family_of_an_unknown_family_is_false(database: Database) -> None:
    """revoke_family on an id never stored returns False."""
    store = SqlRefreshStore(database)
    assert await _revoke(database, store, "sid_nobody", "logout", NOW) is False


async def test_revoke_family_erases_its_sealed_successors(database: Database) -> None:
    """A revoked family keeps no sealed successor (nothing left to replay in the grace
    window); another family's stays."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "k")
    mine = await _start(database, store, "sid_k", user_id)
    theirs = await _start(database, store, "sid_k2", user_id)
    assert (await store.rotate(mine, NOW + 1, _digest(), b"sealed-k")).rotated
    assert (await store.rotate(theirs, NOW + 1, _digest(), b"sealed-k2")).rotated
    assert await _revoke(database, store, "sid_k", "reuse", NOW + 2)
    assert await _sealed(database, mine) is None
    assert await _sealed(database, theirs) == b"sealed-k2"


async def test_a_revoked_family_does_not_rotate(database: Database) -> None:
    """rotate of a token of a revoked family changes nothing."""
    store = SqlRefreshStore(database)
    digest = await _start(database, store, "sid_l", await _user(database, "l"))
    assert await _revoke(database, store, "sid_l", "logout", NOW + 1)
    found = await store.rotate(digest, NOW + 2, _digest(), None)
    assert not found.rotated and found.record is not None and found.record.spent_at is None
    assert await _count(database, "sid_l") == 1


async def test_an_expired_family_does_not_rotate(database: Database) -> None:
    """rotate at or after the family's expires_at changes nothing; just before, it works."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "m")
    expired = await _start(database, store, "sid_m", user_id, expires_at=NOW + 10)
    found = await store.rotate(expired, NOW + 10, _digest(), None)
    assert not found.rotated and found.record is not None and found.record.spent_at is None
    live = await _start(database, store, "sid_m2", user_id, expires_at=NOW + 10)
    assert (await store.rotate(live, NOW + 9, _digest(), None)).rotated


async def test_a_disabled_users_family_does_not_rotate(database: Database) -> None:
    """rotate of a token whose user is disabled changes nothing."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "n")
    digest = await _start(database, store, "sid_n", user_id)
    async with database.transaction() as tx:
        await SqlUserStore(database).set_status(tx, user_id, "disabled", NOW + 1)
    found = await store.rotate(digest, NOW + 2, _digest(), None)
    assert not found.rotated and await _count(database, "sid_n") == 1


async def test_revoke_user_families_revokes_every_live_family_of_the_user(
        database: Database) -> None:
    """All unrevoked, unexpired families of the user are revoked with the reason and
    their ids returned."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "o")
    for family in ("sid_o1", "sid_o2", "sid_o3"):
        await _start(database, store, family, user_id)
    revoked = await _revoke_user(database, store, user_id, "user_disabled", NOW + 5)
    assert sorted(revoked) == ["sid_o1", "sid_o2", "sid_o3"]
    for family in revoked:
        assert await _revocation(database, family) == (NOW + 5, "user_disabled")


async def test_revoke_user_families_leaves_other_users_alone(database: Database) -> None:
    """Another user's family stays unrevoked."""
    store = SqlRefreshStore(database)
    mine, other = await _user(database, "p"), await _user(database, "p2")
    await _start(database, store, "sid_p", mine)
    await _start(database, store, "sid_p2", other)
    assert await _revoke_user(database, store, mine, "user_disabled", NOW + 5) == ["sid_p"]
    assert await _revocation(database, "sid_p2") == (None, None)


async def test_revoke_user_families_skips_already_revoked_families(
        database: Database) -> None:
    """A family revoked earlier is not returned and keeps its first time and reason."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "q")
    await _start(database, store, "sid_q1", user_id)
    await _start(database, store, "sid_q2", user_id)
    assert await _revoke(database, store, "sid_q1", "logout", NOW + 1)
    assert await _revoke_user(database, store, user_id, "user_disabled", NOW + 5) == ["sid_q2"]
    assert await _revocation(database, "sid_q1") == (NOW + 1, "logout")


async def test_revoke_user_families_skips_expired_families(database: Database) -> None:
    """A family already expired at the time of revocation is neither revoked nor
    returned."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "r")
    await _start(database, store, "sid_r_old", user_id, expires_at=NOW + 5)
    await _start(database, store, "sid_r_new", user_id)
    revoked = await _revoke_user(database, store, user_id, "user_disabled", NOW + 5)
    assert revoked == ["sid_r_new"]
    assert await _revocation(database, "sid_r_old") == (None, None)


async def test_revoke_user_families_of_a_user_without_families_is_empty(
        database: Database) -> None:
    """A user with no families (or an unknown id) gives an empty list."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "s")
    assert await _revoke_user(database, store, user_id, "user_disabled", NOW) == []
    assert await _revoke_user(database, store, "usr_nobody", "user_disabled", NOW) == []


async def test_revoke_user_families_erases_their_sealed_successors(
        database: Database) -> None:
    """The revoked families keep no sealed successor."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "t")
    digest = await _start(database, store, "sid_t", user_id)
    assert (await store.rotate(digest, NOW + 1, _digest(), b"sealed-t")).rotated
    assert await _revoke_user(database, store, user_id, "user_disabled", NOW + 2) == ["sid_t"]
    assert await _sealed(database, digest) is None


async def test_revoke_user_families_rolls_back_with_its_transaction(
        database: Database) -> None:
    """Revocations in a transaction that fails afterwards are not kept."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "u")
    await _start(database, store, "sid_u", user_id)

    class Abort(Exception):
        pass

    try:
        async with database.transaction() as tx:
            assert await store.revoke_user_families(tx, user_id, "user_disabled", NOW + 1)
            raise Abort
    except Abort:
        pass
    assert await _revocation(database, "sid_u") == (None, None)


async def test_erase_sealed_before_erases_only_older_spends(database: Database) -> None:
    """Sealed successors of tokens spent before the cutoff are erased and counted;
    those spent at or after it stay."""
    store = SqlRefreshStore(database)
    user_id = await _user(database, "v")
    old = await _start(database, store, "sid_v1", user_id)
    recent = await _start(database, store, "sid_v2", user_id)
    assert (await store.rotate(old, NOW + 1, _digest(), b"old")).rotated
    assert (await store.rotate(recent, NOW + 20, _digest(), b"recent")).rotated
    assert await store.erase_sealed_before(NOW + 20) == 1
    assert await _sealed(database, old) is None
    assert await _sealed(database, recent) == b"recent"
    assert await store.erase_sealed_before(NOW + 20) == 0
