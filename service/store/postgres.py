"""PostgreSQL through an asyncpg pool: the production backend."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from service.store.database import (
    Connection,
    ForeignKeyViolation,
    IntegrityViolation,
    Row,
    SchemaOutdated,
    Statement,
    StorageUnavailable,
    Timeouts,
    UniqueViolation,
)

# Errors that mean "the server is not there", as opposed to a bad statement.
# asyncpg's InterfaceError is not among them: it also reports misuse (a wrong number
# of arguments), so it counts only when the connection or pool is found closed.
_UNREACHABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)
# The server is there but refuses this login or database: a configuration problem
# to name for the operator. Only connecting raises these SQLSTATEs (28xxx, 3D000),
# so a statement's error is never mistaken for one.
_REFUSED = (
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # incl. a wrong password
    asyncpg.exceptions.InvalidCatalogNameError,
)
_UNREACHABLE_TEXT = "PostgreSQL is unreachable"


_KEY_COLUMNS = re.compile(r"Key \(([^()]*)\)=")


def _integrity(exc: asyncpg.exceptions.IntegrityConstraintViolationError) -> IntegrityViolation:
    """The backend-neutral violation; the columns come from the server's DETAIL
    (``Key (name)=(…) already exists.``), whose values are dropped here."""
    found = _KEY_COLUMNS.match(exc.detail or "")
    columns = tuple(c.strip() for c in found.group(1).split(",")) if found else ()
    kind = UniqueViolation if isinstance(exc, asyncpg.exceptions.UniqueViolationError) else (
        ForeignKeyViolation)
    return kind(exc.table_name, columns)


def _rowcount(status: str) -> int:
    """asyncpg answers ``UPDATE 3`` / ``INSERT 0 1``; the last word is the count."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool beyond what asyncpg always
    does (roll back an open transaction): nothing. asyncpg's default reset is one more
    round trip per release (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET
    ALL``) for session state authd never creates: its locks are transaction-scoped
    (``pg_advisory_xact_lock``), it declares no cursors outside a transaction, listens
    to nothing and sets no session parameter. Every statement paid for that trip."""


class _PgConnection:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self._conn.fetch(sql, *args)]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row = await self._conn.fetchrow(sql, *args)
        return None if row is None else dict(row)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        return _rowcount(await self._conn.execute(sql, *args))

    async def lock(self, name: str) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", name)


def _lost(conn: asyncpg.Connection) -> bool:
    """The connection closed under us. The pool detaches a closed connection from
    its proxy, after which even ``is_closed()`` raises InterfaceError."""
    try:
        return bool(conn.is_closed())
    except asyncpg.exceptions.InterfaceError:
        return True


def _terminate(conn: asyncpg.Connection) -> None:
    """Close at once without a word to the server; a connection the pool already
    took back (asyncpg closes one whose cancellation failed) is left alone."""
    try:
        conn.terminate()
    except asyncpg.exceptions.InterfaceError:
        pass


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, pool: asyncpg.Pool, timeouts: Timeouts) -> None:
        self._pool = pool
        self._timeouts = timeouts

    @classmethod
    async def open(cls, url: str, timeouts: Timeouts | None = None) -> PostgresDatabase:
        """Create the pool lazily (no connection before the first statement) so that
        a server started while PostgreSQL is down still comes up (``/readyz`` says
        503) and recovers by itself later. ``timeouts`` bound connecting (``timeout``),
        waiting for a pooled connection and every statement (``command_timeout``,
        enforced by the client: a frozen server never answers a server-side one)."""
        timeouts = timeouts or Timeouts()
        pool = await asyncpg.create_pool(
            url,
            min_size=0,
            max_size=10,
            command_timeout=timeouts.statement,
            timeout=timeouts.connect,
            max_inactive_connection_lifetime=60,
            reset=_keep_session,
        )
        return cls(pool, timeouts)

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; an outage or a refused login raises StorageUnavailable
        whether it happens while connecting or inside the caller's block."""
        try:
            async with self._pool.acquire(timeout=self._timeouts.acquire) as conn:
                try:
                    yield conn
                except (TimeoutError, asyncio.CancelledError):
                    # A statement timed out (or its caller gave up): asyncpg would now
                    # send a cancel request and the pool's release would wait for its
                    # answer without a bound, which a frozen server never gives. Drop
                    # the connection instead; the pool opens a fresh one when needed.
                    _terminate(conn)
                    raise
                except asyncpg.exceptions.InterfaceError as exc:
                    if not _lost(conn):
                        raise
                    raise StorageUnavailable(_UNREACHABLE_TEXT) from exc
        except _UNREACHABLE as exc:
            raise StorageUnavailable(_UNREACHABLE_TEXT) from exc
        except (asyncpg.exceptions.UniqueViolationError,
                asyncpg.exceptions.ForeignKeyViolationError) as exc:
            # ``from None``: the driver's exception text holds the row's values.
            raise _integrity(exc) from None
        except (asyncpg.exceptions.UndefinedTableError,
                asyncpg.exceptions.UndefinedColumnError) as exc:
            raise SchemaOutdated(str(exc)) from None
        except _REFUSED as exc:
            # The server's message names the user or database, never the password.
            raise StorageUnavailable(
                f"PostgreSQL refused the connection ({exc.sqlstate}: {exc}): "
                "check the user, password and database name in AUTHD_DATABASE_URL"
            ) from exc
        except asyncpg.exceptions.InterfaceError as exc:
            if not self._pool.is_closing():
                raise
            raise StorageUnavailable(_UNREACHABLE_TEXT) from exc

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._acquire() as conn:
            return await _PgConnection(conn).fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        async with self._acquire() as conn:
            return await _PgConnection(conn).fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self._acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._acquire() as conn:
            return _rowcount(await conn.execute(sql, *args))

    async def lock(self, name: str) -> None:
        raise RuntimeError("a named lock needs a transaction: use db.transaction()")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._acquire() as conn, conn.transaction():
            yield _PgConnection(conn)

    async def transact(self, statements: Sequence[Statement]) -> list[list[Row]]:
        async with self._acquire() as conn, conn.transaction():
            return [[dict(row) for row in await conn.fetch(sql, *args)]
                    for sql, args in statements]

    async def ping(self) -> None:
        async with self._acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._pool.close(), timeout=5)
        except (TimeoutError, *_UNREACHABLE):
            self._pool.terminate()
