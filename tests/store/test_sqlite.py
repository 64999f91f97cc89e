"""What only the SQLite backend (the embedded default) has to get right."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service.store import open_database
from service.store.sqlite import translate


def test_translate_numbers_placeholders_and_drops_postgres_only_syntax() -> None:
    """``$n`` becomes ``?n``; casts and row locks vanish."""
    sql = "SELECT a FROM t WHERE ($1::text IS NULL OR b = $1::text) AND c = $2 FOR UPDATE"
    assert translate(sql) == "SELECT a FROM t WHERE (?1 IS NULL OR b = ?1) AND c = ?2"


async def test_a_statement_on_the_database_inside_its_transaction_fails_fast(
    tmp_path: Path,
) -> None:
    """Using the database instead of the transaction's connection raises, never hangs."""
    db = await open_database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        async with db.transaction():
            with pytest.raises(RuntimeError, match="transaction"):
                await db.fetchval("SELECT 1")
        assert await db.fetchval("SELECT 1") == 1
    finally:
        await db.close()


async def test_other_tasks_wait_for_an_open_transaction(tmp_path: Path) -> None:
    """A statement from another task runs after the transaction, not inside it."""
    db = await open_database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        await db.execute("CREATE TABLE t (v integer)")
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t (v) VALUES (1)")
            outside = asyncio.create_task(db.fetchval("SELECT count(*) FROM t"))
            await asyncio.sleep(0.05)
            assert not outside.done()
        assert await outside == 1
    finally:
        await db.close()


async def test_the_file_and_its_folder_are_created(tmp_path: Path) -> None:
    """Opening a SQLite URL in a missing folder creates both (make run on a fresh clone)."""
    path = tmp_path / "data" / "nested" / "authd.sqlite3"
    db = await open_database(f"sqlite:///{path}")
    await db.close()
    assert path.is_file()


@pytest.mark.parametrize("message", ["database is locked", "database is busy"])
async def test_a_lock_held_past_the_busy_timeout_is_an_outage_not_a_crash(message: str) -> None:
    """SQLite's 'locked'/'busy' after its busy timeout (another process held the write
    lock) is StorageUnavailable, answered 503 + Retry-After, never a 500."""
    import sqlite3

    from service.store import StorageUnavailable
    from service.store.sqlite import _translated

    with pytest.raises(StorageUnavailable):
        async with _translated():
            raise sqlite3.OperationalError(message)
