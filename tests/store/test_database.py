"""The storage contract: every statement behaves the same on PostgreSQL and SQLite.

Each test takes the parametrized ``database`` fixture, so it runs once per backend
(test ids ``[postgresql]`` and ``[sqlite]``) against a real, migrated database.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import pytest

from service.store import (
    Connection,
    Database,
    ForeignKeyViolation,
    IntegrityViolation,
    SchemaOutdated,
    StorageUnavailable,
    UniqueViolation,
)

CLIENT = (
    "INSERT INTO clients (id, name, scopes, audience, token_ttl, created_at, updated_at)"
    " VALUES ($1, $2, $3, 'api', 900, $4, $4)"
)


async def add_client(db: Connection, client_id: str, name: str | None = None) -> None:
    await db.execute(CLIENT, client_id, name or client_id, "read", time.time())


class Boom(Exception):
    pass


async def test_fetch_returns_rows_as_dicts_in_order(database: Database) -> None:
    """fetch answers every row as a dict keyed by column name."""
    await add_client(database, "c1")
    await add_client(database, "c2")
    rows = await database.fetch("SELECT id, scopes FROM clients ORDER BY id")
    assert rows == [{"id": "c1", "scopes": "read"}, {"id": "c2", "scopes": "read"}]


async def test_fetch_of_nothing_is_an_empty_list(database: Database) -> None:
    """fetch with no matching row answers an empty list, not None."""
    assert await database.fetch("SELECT id FROM clients WHERE id = $1", "none") == []


async def test_fetchrow_returns_one_row_or_none(database: Database) -> None:
    """fetchrow answers the first row as a dict, or None when there is none."""
    await add_client(database, "c1")
    assert await database.fetchrow("SELECT id, name FROM clients WHERE id = $1", "c1") == {
        "id": "c1", "name": "c1",
    }
    assert await database.fetchrow("SELECT id FROM clients WHERE id = $1", "c9") is None


async def test_fetchval_returns_the_first_column_or_none(database: Database) -> None:
    """fetchval answers the first column of the first row, or None."""
    await add_client(database, "c1")
    assert await database.fetchval("SELECT count(*) FROM clients") == 1
    assert await database.fetchval("SELECT name FROM clients WHERE id = $1", "c9") is None


async def test_execute_counts_the_rows_it_touched(database: Database) -> None:
    """execute answers how many rows an INSERT, UPDATE or DELETE touched."""
    await add_client(database, "c1")
    await add_client(database, "c2")
    assert await database.execute("UPDATE clients SET scopes = $1", "write") == 2
    assert await database.execute("UPDATE clients SET scopes = $1 WHERE id = $2", "x", "c1") == 1
    assert await database.execute("UPDATE clients SET scopes = $1 WHERE id = $2", "x", "c9") == 0
    assert await database.execute("DELETE FROM clients") == 2


async def test_execute_counts_rows_of_a_returning_statement(database: Database) -> None:
    """execute of an UPDATE … RETURNING counts the rows it changed on both backends."""
    await add_client(database, "c1")
    await add_client(database, "c2")
    touched = await database.execute("UPDATE clients SET status = 'disabled' RETURNING id")
    assert touched == 2


async def test_execute_of_a_statement_without_rows_counts_zero(database: Database) -> None:
    """DDL touches no rows, so execute answers 0 rather than a backend's -1."""
    assert await database.execute("CREATE TABLE contract_scratch (id integer)") == 0
    assert await database.execute("DROP TABLE contract_scratch") == 0


async def test_insert_returning_gives_the_generated_id(database: Database) -> None:
    """An identity column's value comes back through INSERT … RETURNING."""
    insert = (
        "INSERT INTO audit_events (at, action, outcome) VALUES ($1, $2, 'ok') RETURNING id"
    )
    first = await database.fetchval(insert, 1.0, "a")
    second = await database.fetchval(insert, 2.0, "b")
    assert isinstance(first, int)
    assert second == first + 1


async def test_a_placeholder_may_repeat_and_come_in_any_order(database: Database) -> None:
    """``$2`` before ``$1`` and a ``$1`` used twice bind by number, not by position."""
    await add_client(database, "c1")
    row = await database.fetchrow(
        "SELECT id FROM clients WHERE name = $2 AND id = $1 AND id = $2", "c1", "c1"
    )
    assert row == {"id": "c1"}


async def test_a_null_parameter_round_trips(database: Database) -> None:
    """None binds as NULL and reads back as None, typed by a cast where needed."""
    await add_client(database, "c1")
    await database.execute(
        "INSERT INTO api_keys (id, client_id, digest, display, expires_at, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        "k1", "c1", b"\x00" * 32, "ak_live_abc", None, time.time(),
    )
    assert await database.fetchval("SELECT expires_at FROM api_keys WHERE id = $1", "k1") is None
    matches = await database.fetchval(
        "SELECT count(*) FROM api_keys WHERE ($1::text IS NULL OR id = $1::text)", None
    )
    assert matches == 1


async def test_a_digest_round_trips_as_bytes(database: Database) -> None:
    """A SHA-256 digest goes in as bytes, is found by equality and comes back as bytes."""
    await add_client(database, "c1")
    digest = hashlib.sha256(b"ak_live_secret").digest()
    await database.execute(
        "INSERT INTO api_keys (id, client_id, digest, display, created_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        "k1", "c1", digest, "ak_live_abc", time.time(),
    )
    row = await database.fetchrow("SELECT id, digest FROM api_keys WHERE digest = $1", digest)
    assert row is not None
    assert row["id"] == "k1"
    assert bytes(row["digest"]) == digest
    assert isinstance(row["digest"], bytes)


async def test_floats_keep_sub_second_precision(database: Database) -> None:
    """Times are Unix seconds as floats; a fraction survives the round trip."""
    at = 1_700_000_000.123456
    await database.execute("INSERT INTO audit_events (at, action, outcome) VALUES ($1, 'a', 'ok')",
                           at)
    assert await database.fetchval("SELECT at FROM audit_events") == pytest.approx(at, abs=1e-6)


async def test_a_transaction_commits_together(database: Database) -> None:
    """Statements in a transaction that ends normally are all visible afterwards."""
    async with database.transaction() as tx:
        await add_client(tx, "c1")
        await add_client(tx, "c2")
        assert await tx.fetchval("SELECT count(*) FROM clients") == 2
    assert await database.fetchval("SELECT count(*) FROM clients") == 2


async def test_a_transaction_rolls_back_on_an_exception(database: Database) -> None:
    """An exception inside a transaction undoes every statement in it and propagates."""
    await add_client(database, "before")
    with pytest.raises(Boom):
        async with database.transaction() as tx:
            await tx.execute("DELETE FROM clients")
            await add_client(tx, "c1")
            raise Boom
    assert await database.fetch("SELECT id FROM clients") == [{"id": "before"}]


async def test_a_failed_statement_rolls_back_the_transaction(database: Database) -> None:
    """A constraint violation inside a transaction leaves nothing of it behind."""
    with pytest.raises(UniqueViolation):
        async with database.transaction() as tx:
            await add_client(tx, "c1")
            await add_client(tx, "c1")
    assert await database.fetchval("SELECT count(*) FROM clients") == 0


async def test_the_database_is_usable_after_a_rollback(database: Database) -> None:
    """A rolled-back transaction leaves no connection stuck inside it."""
    with pytest.raises(Boom):
        async with database.transaction():
            raise Boom
    async with database.transaction() as tx:
        await add_client(tx, "c1")
    assert await database.fetchval("SELECT count(*) FROM clients") == 1


async def test_transact_answers_each_statements_rows_in_order(database: Database) -> None:
    """transact runs a fixed sequence in one transaction and answers every statement's
    rows: none for a plain write, the written rows for RETURNING, a later read's."""
    now = time.time()
    results = await database.transact([
        (CLIENT, ("c1", "c1", "read", now)),
        ("UPDATE clients SET name = $2 WHERE id = $1 RETURNING id, name", ("c1", "renamed")),
        ("SELECT id, name FROM clients ORDER BY id", ()),
    ])
    assert results == [[], [{"id": "c1", "name": "renamed"}],
                       [{"id": "c1", "name": "renamed"}]]


async def test_transact_commits_all_or_nothing(database: Database) -> None:
    """A failing statement (typed, as elsewhere) undoes the earlier ones; the database
    is usable afterwards."""
    now = time.time()
    await add_client(database, "before")
    with pytest.raises(UniqueViolation):
        await database.transact([
            ("DELETE FROM clients", ()),
            (CLIENT, ("c1", "c1", "read", now)),
            (CLIENT, ("c1", "again", "read", now)),
        ])
    assert await database.fetch("SELECT id FROM clients") == [{"id": "before"}]
    assert await database.transact([(CLIENT, ("c2", "c2", "read", now))]) == [[]]
    assert await database.fetchval("SELECT count(*) FROM clients") == 2


async def test_lock_inside_a_transaction_is_allowed_twice(database: Database) -> None:
    """A named lock can be taken in a transaction, and re-taken by the same one."""
    async with database.transaction() as tx:
        await tx.lock("authd.contract")
        await tx.lock("authd.contract")
        await add_client(tx, "c1")
    assert await database.fetchval("SELECT count(*) FROM clients") == 1


async def test_a_named_lock_serialises_read_modify_write(database: Database) -> None:
    """Two transactions that take the same lock run one after the other: no lost update."""
    await database.execute(
        "INSERT INTO audit_events (at, action, outcome) VALUES (0, 'counter', 'ok')"
    )

    async def increment() -> None:
        async with database.transaction() as tx:
            await tx.lock("authd.contract.counter")
            seen = await tx.fetchval("SELECT at FROM audit_events WHERE action = 'counter'")
            await asyncio.sleep(0.05)
            await tx.execute("UPDATE audit_events SET at = $1 WHERE action = 'counter'", seen + 1)

    await asyncio.gather(increment(), increment(), increment())
    assert await database.fetchval("SELECT at FROM audit_events WHERE action = 'counter'") == 3


async def test_lock_outside_a_transaction_is_refused(database: Database) -> None:
    """A named lock only makes sense until a transaction ends, so without one it fails."""
    with pytest.raises(RuntimeError, match="transaction"):
        await database.lock("authd.contract")


async def test_ping_answers_on_a_working_database(database: Database) -> None:
    """ping returns quietly while the database answers."""
    await database.ping()


async def test_foreign_keys_are_enforced(database: Database) -> None:
    """A row pointing at a missing parent is refused as a ForeignKeyViolation on both."""
    with pytest.raises(ForeignKeyViolation):
        await database.execute(
            "INSERT INTO api_keys (id, client_id, digest, display, created_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            "k1", "nobody", b"\x01" * 32, "ak_live_x", time.time(),
        )


async def test_a_unique_violation_names_its_table_and_columns(database: Database) -> None:
    """A duplicate unique column is a UniqueViolation naming table and column alike."""
    await add_client(database, "c1", "same")
    with pytest.raises(UniqueViolation) as raised:
        await add_client(database, "c2", "same")
    assert (raised.value.table, raised.value.columns) == ("clients", ("name",))


async def test_a_duplicate_primary_key_is_a_unique_violation(database: Database) -> None:
    """A repeated primary key is reported as a UniqueViolation of its column."""
    await add_client(database, "c1")
    with pytest.raises(UniqueViolation) as raised:
        await add_client(database, "c1", "other")
    assert raised.value.columns == ("id",)


async def test_a_violated_composite_key_names_every_column(database: Database) -> None:
    """A composite unique key is reported with all its columns, in order."""
    await database.execute("INSERT INTO users (id, email, password_hash, created_at, updated_at)"
                           " VALUES ('u1', 'a@example.org', 'h', 0, 0)")
    await database.execute("INSERT INTO refresh_families (id, user_id, scopes, created_at,"
                           " expires_at) VALUES ('f1', 'u1', '', 0, 1)")
    insert = ("INSERT INTO refresh_tokens (digest, family_id, generation, issued_at)"
              " VALUES ($1, 'f1', 1, 0)")
    await database.execute(insert, b"\x01" * 32)
    with pytest.raises(UniqueViolation) as raised:
        await database.execute(insert, b"\x02" * 32)
    assert raised.value.columns == ("family_id", "generation")


async def test_a_violation_inside_a_transaction_is_typed(database: Database) -> None:
    """Inside a transaction the violation surfaces as the same typed error."""
    with pytest.raises(ForeignKeyViolation):
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO refresh_families (id, user_id, scopes, created_at,"
                             " expires_at) VALUES ('f1', 'nobody', '', 0, 1)")


async def test_a_violation_never_carries_the_values(database: Database) -> None:
    """The violation's text names the constraint's columns, never the row's values."""
    await add_client(database, "c1", "secret-looking-name")
    with pytest.raises(IntegrityViolation) as raised:
        await add_client(database, "c2", "secret-looking-name")
    assert "secret-looking-name" not in str(raised.value)
    assert raised.value.__cause__ is None


@pytest.mark.parametrize("statement", [
    "SELECT * FROM no_such_table",
    "SELECT no_such_column FROM clients",
    "UPDATE clients SET no_such_column = 1",
])
async def test_a_missing_table_or_column_is_schema_outdated(
    database: Database, statement: str
) -> None:
    """A statement naming what the schema lacks is SchemaOutdated, a StorageUnavailable
    whose message says to run ``authd migrate``."""
    with pytest.raises(SchemaOutdated, match="authd migrate") as raised:
        await database.execute(statement)
    assert isinstance(raised.value, StorageUnavailable)
