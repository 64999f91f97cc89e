"""The MFA storage contract, on PostgreSQL and SQLite alike."""

from __future__ import annotations

import time

from service.mfa.store import SqlMfaStore
from service.sessions.store import SqlUserStore
from service.store import Database


async def _user(db: Database, name: str = "u") -> str:
    user_id = f"usr_{name}_{time.time_ns()}"
    assert await SqlUserStore(db).create(user_id, f"{user_id}@example.com", "hash", time.time())
    return user_id


async def test_a_pending_enrolment_is_replaced_but_an_active_one_is_kept(
        database: Database) -> None:
    """put_pending replaces a pending secret, and refuses once the TOTP is active."""
    store, user = SqlMfaStore(database), await _user(database)
    assert await store.put_pending(user, b"first", 1.0)
    assert await store.put_pending(user, b"second", 2.0)
    record = await store.totp(user)
    assert record is not None and record.secret_sealed == b"second" and not record.active
    async with database.transaction() as tx:
        assert await store.activate(tx, user, 100, 3.0)
    assert not await store.put_pending(user, b"third", 4.0)
    active = await store.totp(user)
    assert active is not None and active.active and active.last_step == 100


async def test_each_step_is_accepted_once_and_never_an_earlier_one(database: Database) -> None:
    """accept_step succeeds only for a step later than the last accepted one."""
    store, user = SqlMfaStore(database), await _user(database)
    await store.put_pending(user, b"s", 1.0)
    async with database.transaction() as tx:
        await store.activate(tx, user, 10, 1.0)
    assert [await store.accept_step(user, s) for s in (10, 11, 11, 10, 12)] == [
        False, True, False, False, True]


async def test_a_recovery_code_is_used_once_and_regeneration_kills_old_ones(
        database: Database) -> None:
    """use_recovery is true once per digest; replace_recovery removes the old digests."""
    store, user = SqlMfaStore(database), await _user(database)
    async with database.transaction() as tx:
        await store.replace_recovery(tx, user, [b"a" * 32, b"b" * 32], 1.0)
    assert await store.use_recovery(user, b"a" * 32, 2.0)
    assert not await store.use_recovery(user, b"a" * 32, 3.0)
    assert await store.recovery_left(user) == 1
    async with database.transaction() as tx:
        await store.replace_recovery(tx, user, [b"c" * 32], 4.0)
    assert not await store.use_recovery(user, b"b" * 32, 5.0)
    assert await store.recovery_left(user) == 1


async def test_a_recovery_digest_of_another_user_does_not_match(database: Database) -> None:
    """A digest is looked up with its user: another user's digest is refused."""
    store = SqlMfaStore(database)
    alice, bob = await _user(database, "a"), await _user(database, "b")
    async with database.transaction() as tx:
        await store.replace_recovery(tx, alice, [b"x" * 32], 1.0)
    assert not await store.use_recovery(bob, b"x" * 32, 2.0)


async def test_a_ticket_is_spent_once_and_not_after_expiry(database: Database) -> None:
    """A ticket names its user until spent or expired; it can be spent only once."""
    store, user = SqlMfaStore(database), await _user(database)
    await store.add_ticket(b"t" * 32, user, 100.0, 400.0)
    await store.add_ticket(b"o" * 32, user, 100.0, 400.0)
    assert await store.ticket_user(b"t" * 32, 200.0) == user
    assert await store.spend_ticket(b"t" * 32, 200.0)
    assert not await store.spend_ticket(b"t" * 32, 201.0)
    assert await store.ticket_user(b"t" * 32, 202.0) is None
    assert await store.ticket_user(b"o" * 32, 401.0) is None
    assert not await store.spend_ticket(b"o" * 32, 401.0)


async def test_remove_deletes_the_totp_and_every_recovery_code(database: Database) -> None:
    """remove reports whether there was a TOTP and leaves no recovery code behind."""
    store, user = SqlMfaStore(database), await _user(database)
    await store.put_pending(user, b"s", 1.0)
    async with database.transaction() as tx:
        await store.replace_recovery(tx, user, [b"r" * 32], 1.0)
    assert await store.remove(user)
    assert await store.totp(user) is None and await store.recovery_left(user) == 0
    assert not await store.remove(user)
