"""SQLite through aiosqlite: the embedded default of ``make run``.

One connection per process, guarded by an asyncio lock, in WAL mode with a busy
timeout so that the CLI and a running server can share the file. Transactions begin
``IMMEDIATE``: the write lock is taken up front, which is what makes ``FOR UPDATE``
(dropped from the SQL here) and named locks unnecessary in this dialect.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import aiosqlite

from service.store.database import (
    Connection,
    ForeignKeyViolation,
    IntegrityViolation,
    Row,
    SchemaOutdated,
    Statement,
    StorageUnavailable,
    UniqueViolation,
)

_PLACEHOLDER = re.compile(r"\$(\d+)")
_FOR_UPDATE = re.compile(r"\s+FOR\s+UPDATE(\s+SKIP\s+LOCKED)?", re.IGNORECASE)
_CAST = re.compile(r"::(text|bigint|integer|double precision|bytea)\b")


@lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """PostgreSQL ``$1`` placeholders become SQLite's numbered ``?1``; casts (needed
    by PostgreSQL for untyped NULL parameters) and row locks are dropped."""
    return _CAST.sub("", _FOR_UPDATE.sub("", _PLACEHOLDER.sub(r"?\1", sql)))


_UNIQUE_FAILED = re.compile(r"UNIQUE constraint failed: (.+)")
# What SQLite says of a table or column the schema lacks (PostgreSQL: 42P01, 42703).
_SCHEMA_MISSING = re.compile(r"no such (table|column): |table \S+ has no column named ")


def _integrity(exc: sqlite3.IntegrityError) -> IntegrityViolation | None:
    """The backend-neutral violation, or None for another kind (CHECK, NOT NULL).
    SQLite names a unique violation's columns as ``table.column, table.column`` and
    a foreign-key violation not at all."""
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return ForeignKeyViolation(None)
    found = _UNIQUE_FAILED.match(str(exc))
    if found is None:
        return None
    qualified = [part.strip() for part in found.group(1).split(",")]
    table = qualified[0].partition(".")[0] if "." in qualified[0] else None
    return UniqueViolation(table, tuple(part.rpartition(".")[2] for part in qualified))


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """sqlite3's errors as the backend-neutral ones PostgreSQL's also become."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        violation = _integrity(exc)
        if violation is None:
            raise
        raise violation from None
    except sqlite3.OperationalError as exc:
        if _SCHEMA_MISSING.match(str(exc)):
            raise SchemaOutdated(str(exc)) from None
        if str(exc).startswith(("database is locked", "database is busy")):
            # Another process (the CLI) held the write lock past the busy timeout: an
            # outage to answer with 503 + Retry-After, not a crash.
            raise StorageUnavailable("the SQLite database is locked by another process") from None
        raise


def _row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Row:
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


def _run_transaction(conn: sqlite3.Connection, statements: list[tuple[str, tuple[Any, ...]]]
                     ) -> list[list[Row]]:
    """``SqliteDatabase.transact``'s work, on aiosqlite's worker thread: BEGIN
    IMMEDIATE, the statements, COMMIT; ROLLBACK if any of them fails."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = [conn.execute(sql, args).fetchall() for sql, args in statements]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return rows


class _SqliteConnection:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    # Reads take one trip to aiosqlite's thread (execute and fetch together) rather than
    # three (execute, fetch, close the cursor): each trip waits for a turn of the event
    # loop and a GIL hand-off, which under saturation made one read take a good part of
    # a second (issue 15). ``fetchrow`` serves single-row lookups only.
    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with _translated():
            rows = await self._conn.execute_fetchall(translate(sql), args)
        return list(rows)  # type: ignore[arg-type]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        async with _translated():
            rows = list(await self._conn.execute_fetchall(translate(sql), args))
        return rows[0] if rows else None  # type: ignore[return-value]

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else next(iter(row.values()))

    async def execute(self, sql: str, *args: Any) -> int:
        """Rows touched, as PostgreSQL counts them: ``sqlite3`` reports -1 for a
        SELECT or DDL and 0 for a ``RETURNING`` statement whose rows were not read,
        so a statement that yields rows is counted by reading them."""
        async with _translated(), self._conn.execute(translate(sql), args) as cursor:
            if cursor.description is not None:
                return len(list(await cursor.fetchall()))
            return max(cursor.rowcount, 0)

    async def lock(self, name: str) -> None:
        return None


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._raw = _SqliteConnection(conn)
        self._mutex = asyncio.Lock()
        self._in_transaction: asyncio.Task[Any] | None = None

    @classmethod
    async def open(cls, path: str) -> SqliteDatabase:
        if path != ":memory:":
            folder = Path(path).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageUnavailable(
                    f"cannot create the SQLite folder {folder} (AUTHD_DATA_DIR): "
                    f"{exc.strerror or type(exc).__name__}"
                ) from exc
        try:
            conn = await aiosqlite.connect(path, isolation_level=None, timeout=10)
        except sqlite3.Error as exc:
            raise StorageUnavailable(f"cannot open SQLite database: {exc}") from exc
        conn.row_factory = _row  # type: ignore[assignment]
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=10000")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA synchronous=NORMAL")
        return cls(conn)

    def _check_not_inside_transaction(self) -> None:
        """The one connection is held by the open transaction: a statement on the
        database from the same task would wait for it forever. Fail loudly instead."""
        if self._in_transaction is not None and self._in_transaction is asyncio.current_task():
            raise RuntimeError("inside db.transaction(), run statements on its connection")

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        self._check_not_inside_transaction()
        async with self._mutex:
            return await self._raw.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        self._check_not_inside_transaction()
        async with self._mutex:
            return await self._raw.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self._check_not_inside_transaction()
        async with self._mutex:
            return await self._raw.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        self._check_not_inside_transaction()
        async with self._mutex:
            return await self._raw.execute(sql, *args)

    async def lock(self, name: str) -> None:
        raise RuntimeError("a named lock needs a transaction: use db.transaction()")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        self._check_not_inside_transaction()
        async with self._mutex:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageUnavailable(f"SQLite database is unusable: {exc}") from exc
            self._in_transaction = asyncio.current_task()
            try:
                yield self._raw
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            else:
                await self._conn.execute("COMMIT")
            finally:
                self._in_transaction = None

    async def transact(self, statements: Sequence[Statement]) -> list[list[Row]]:
        """One trip to aiosqlite's worker thread for the whole transaction. aiosqlite
        has no public call for running a function there, so this uses its
        ``_execute`` and ``_conn`` (the version is pinned; the storage contract
        tests run this on every change)."""
        self._check_not_inside_transaction()
        work = [(translate(sql), tuple(args)) for sql, args in statements]
        async with self._mutex, _translated():
            rows: list[list[Row]] = await self._conn._execute(  # type: ignore[no-untyped-call]
                lambda: _run_transaction(self._conn._conn, work))
        return rows

    async def ping(self) -> None:
        try:
            await self.fetchval("SELECT 1")
        except sqlite3.Error as exc:
            raise StorageUnavailable("SQLite database is unusable") from exc

    async def close(self) -> None:
        await self._conn.close()
