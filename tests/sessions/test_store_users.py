"""The user store contract (service/sessions/store.py ``SqlUserStore``), on PostgreSQL
and SQLite alike."""

from __future__ import annotations

import asyncio

from service.sessions.store import SqlUserStore, User
from service.store import Database

NOW = 1_800_000_000.0


async def _user(store: SqlUserStore, name: str, *, stored_hash: str = "h") -> User:
    """A fresh active user ``usr_<name>`` with ``<name>@example.com``."""
    assert await store.create(f"usr_{name}", f"{name}@example.com", stored_hash, NOW)
    user = await store.by_id(f"usr_{name}")
    assert user is not None
    return user


async def _set_status(db: Database, store: SqlUserStore, user_id: str, status: str,
                      at: float = NOW + 1) -> bool:
    async with db.transaction() as tx:
        return await store.set_status(tx, user_id, status, at)


async def _fail(store: SqlUserStore, user_id: str, times: int) -> None:
    for n in range(times):
        await store.record_failure(user_id, NOW + n)


async def test_a_created_user_is_found_by_id_as_stored(database: Database) -> None:
    """create then by_id gives back every field: active, no failures, no lock."""
    store = SqlUserStore(database)
    assert await store.create("usr_a", "a@example.com", "$argon2id$hash", NOW)
    assert await store.by_id("usr_a") == User(
        id="usr_a", email="a@example.com", password_hash="$argon2id$hash", status="active",
        failed_logins=0, locked_until=None, created_at=NOW)


async def test_a_created_user_is_found_by_email(database: Database) -> None:
    """by_email finds the same user as by_id."""
    store = SqlUserStore(database)
    created = await _user(store, "b")
    assert await store.by_email("b@example.com") == created


async def test_unknown_users_are_not_found(database: Database) -> None:
    """by_id and by_email of what was never stored give None."""
    store = SqlUserStore(database)
    await _user(store, "c")
    assert await store.by_id("usr_nobody") is None
    assert await store.by_email("nobody@example.com") is None


async def test_by_email_matches_exactly(database: Database) -> None:
    """The store does not normalise: another spelling of a stored email finds nothing
    (normalising is the caller's job)."""
    store = SqlUserStore(database)
    await _user(store, "d")
    assert await store.by_email("D@example.com") is None


async def test_a_taken_email_is_refused_and_nothing_changes(database: Database) -> None:
    """create with an email already stored returns False, adds no user and leaves the
    existing one as it was."""
    store = SqlUserStore(database)
    first = await _user(store, "e", stored_hash="first")
    assert await store.create("usr_other", "e@example.com", "second", NOW + 5) is False
    assert await store.by_id("usr_other") is None
    assert await store.by_email("e@example.com") == first
    assert await database.fetchval("SELECT COUNT(*) FROM users") == 1


async def test_concurrent_creations_of_one_email_store_one_user(database: Database) -> None:
    """Ten concurrent creations of one email under different ids: exactly one succeeds."""
    store = SqlUserStore(database)
    results = await asyncio.gather(*(
        store.create(f"usr_race{n}", "race@example.com", "h", NOW) for n in range(10)))
    assert sum(results) == 1
    assert await database.fetchval(
        "SELECT COUNT(*) FROM users WHERE email = $1", "race@example.com") == 1


async def test_record_failure_increments_and_returns_the_count(database: Database) -> None:
    """Each record_failure adds one and returns the new count, which by_id then shows."""
    store = SqlUserStore(database)
    await _user(store, "f")
    assert [await store.record_failure("usr_f", NOW + n) for n in range(3)] == [1, 2, 3]
    found = await store.by_id("usr_f")
    assert found is not None and found.failed_logins == 3 and found.status == "active"


async def test_record_failure_of_an_unknown_id_returns_zero_and_changes_nothing(
        database: Database) -> None:
    """record_failure on an id no user has returns 0 and leaves other users untouched."""
    store = SqlUserStore(database)
    before = await _user(store, "g")
    assert await store.record_failure("-", NOW + 1) == 0
    assert await store.by_id("usr_g") == before
    assert await store.by_id("-") is None


async def test_lock_sets_locked_until_and_keeps_the_failure_count(database: Database) -> None:
    """lock makes the user locked until the given time; the failures stay counted."""
    store = SqlUserStore(database)
    await _user(store, "h")
    await _fail(store, "usr_h", 5)
    await store.lock("usr_h", NOW + 60, NOW + 5)
    found = await store.by_id("usr_h")
    assert found is not None
    assert (found.status, found.locked_until, found.failed_logins) == ("locked", NOW + 60, 5)


async def test_a_lock_holds_until_locked_until(database: Database) -> None:
    """A locked user is locked before locked_until and no longer at or after it."""
    store = SqlUserStore(database)
    await _user(store, "i")
    await store.lock("usr_i", NOW + 60, NOW)
    found = await store.by_id("usr_i")
    assert found is not None
    assert found.locked_at(NOW + 59) and not found.locked_at(NOW + 60)


async def test_locking_again_moves_locked_until(database: Database) -> None:
    """A second lock of a locked user replaces locked_until (the lockout grows)."""
    store = SqlUserStore(database)
    await _user(store, "j")
    await store.lock("usr_j", NOW + 60, NOW)
    await store.lock("usr_j", NOW + 120, NOW + 1)
    found = await store.by_id("usr_j")
    assert found is not None and found.locked_until == NOW + 120


async def test_a_disabled_user_is_not_locked(database: Database) -> None:
    """lock leaves a disabled user disabled, without a locked_until."""
    store = SqlUserStore(database)
    await _user(store, "k")
    assert await _set_status(database, store, "usr_k", "disabled")
    await store.lock("usr_k", NOW + 60, NOW + 2)
    found = await store.by_id("usr_k")
    assert found is not None and found.status == "disabled" and found.locked_until is None


async def test_lock_of_an_unknown_id_changes_nothing(database: Database) -> None:
    """lock on an id no user has raises nothing and creates nothing."""
    store = SqlUserStore(database)
    before = await _user(store, "l")
    await store.lock("usr_nobody", NOW + 60, NOW)
    assert await store.by_id("usr_nobody") is None
    assert await store.by_id("usr_l") == before


async def test_reset_failures_unlocks_a_locked_user(database: Database) -> None:
    """reset_failures on a locked user clears the count and the lock and makes it active."""
    store = SqlUserStore(database)
    await _user(store, "m")
    await _fail(store, "usr_m", 5)
    await store.lock("usr_m", NOW + 60, NOW + 5)
    await store.reset_failures("usr_m", NOW + 6)
    found = await store.by_id("usr_m")
    assert found is not None
    assert (found.status, found.failed_logins, found.locked_until) == ("active", 0, None)


async def test_reset_failures_clears_the_count_of_an_active_user(database: Database) -> None:
    """reset_failures on an active user with failures sets the count to 0."""
    store = SqlUserStore(database)
    await _user(store, "n")
    await _fail(store, "usr_n", 2)
    await store.reset_failures("usr_n", NOW + 3)
    found = await store.by_id("usr_n")
    assert found is not None and found.failed_logins == 0 and found.status == "active"


async def test_reset_failures_does_not_enable_a_disabled_user(database: Database) -> None:
    """reset_failures on a disabled user with failures clears them but keeps it disabled."""
    store = SqlUserStore(database)
    await _user(store, "o")
    assert await _set_status(database, store, "usr_o", "disabled")
    await _fail(store, "usr_o", 2)
    await store.reset_failures("usr_o", NOW + 3)
    found = await store.by_id("usr_o")
    assert found is not None and found.status == "disabled" and found.failed_logins == 0


async def test_set_status_sets_the_status_and_clears_failures_and_lock(
        database: Database) -> None:
    """set_status replaces the status and clears failed_logins and locked_until."""
    store = SqlUserStore(database)
    await _user(store, "p")
    await _fail(store, "usr_p", 5)
    await store.lock("usr_p", NOW + 60, NOW + 5)
    assert await _set_status(database, store, "usr_p", "disabled") is True
    found = await store.by_id("usr_p")
    assert found is not None
    assert (found.status, found.failed_logins, found.locked_until) == ("disabled", 0, None)


async def test_set_status_can_enable_a_disabled_user(database: Database) -> None:
    """set_status back to active makes a disabled user active again."""
    store = SqlUserStore(database)
    await _user(store, "q")
    assert await _set_status(database, store, "usr_q", "disabled")
    assert await _set_status(database, store, "usr_q", "active", NOW + 2)
    found = await store.by_id("usr_q")
    assert found is not None and found.status == "active"


async def test_set_status_of_an_unknown_id_is_false(database: Database) -> None:
    """set_status on an id no user has returns False and creates nothing."""
    store = SqlUserStore(database)
    assert await _set_status(database, store, "usr_nobody", "disabled") is False
    assert await store.by_id("usr_nobody") is None


async def test_set_status_rolls_back_with_its_transaction(database: Database) -> None:
    """A status change in a transaction that fails afterwards is not kept."""
    store = SqlUserStore(database)
    await _user(store, "r")

    class Abort(Exception):
        pass

    try:
        async with database.transaction() as tx:
            assert await store.set_status(tx, "usr_r", "disabled", NOW + 1)
            raise Abort
    except Abort:
        pass
    found = await store.by_id("usr_r")
    assert found is not None and found.status == "active"


async def test_set_password_hash_replaces_the_hash(database: Database) -> None:
    """set_password_hash returns True and by_id then shows the new hash, nothing else
    changed."""
    store = SqlUserStore(database)
    before = await _user(store, "s", stored_hash="old")
    assert await store.set_password_hash("usr_s", "new", NOW + 1) is True
    found = await store.by_id("usr_s")
    assert found is not None and found.password_hash == "new"
    assert (found.email, found.status, found.created_at) == (
        before.email, before.status, before.created_at)


async def test_set_password_hash_of_an_unknown_id_is_false(database: Database) -> None:
    """set_password_hash on an id no user has returns False."""
    store = SqlUserStore(database)
    assert await store.set_password_hash("usr_nobody", "new", NOW) is False
