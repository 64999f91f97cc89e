"""The one storage interface every domain store is written against.

Domain stores hold plain SQL written once, in PostgreSQL's ``$1`` placeholder style,
that both dialects accept: times are Unix seconds (``double precision`` / ``REAL``),
digests are ``bytea`` / ``BLOB``, structured values are JSON text. The two
implementations differ only in how they connect, lock and translate placeholders, so
the same contract tests prove both (DESIGN §2).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

Row = dict[str, Any]


class StorageUnavailable(Exception):
    """The database cannot be reached; callers answer 503, never 500."""


class Connection(Protocol):
    """Statements run on one connection, inside a transaction when one is open."""

    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...

    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; return the number of rows it touched."""
        ...

    async def lock(self, name: str) -> None:
        """Take a named lock held until the surrounding transaction ends.

        PostgreSQL uses a transaction-scoped advisory lock, so two replicas that rotate
        keys or migrate at the same moment queue behind each other. SQLite takes its
        single write lock when the transaction begins, which already serialises them.
        """
        ...


class Database(Connection, Protocol):
    dialect: str

    def transaction(self) -> AbstractAsyncContextManager[Connection]:
        """A connection whose statements commit together or not at all."""
        ...

    async def ping(self) -> None:
        """Raise StorageUnavailable unless a trivial query answers."""
        ...

    async def close(self) -> None: ...


async def open_database(url: str) -> Database:
    """Connect to ``postgresql://…`` or ``sqlite:///…``."""
    if url.startswith("sqlite:///"):
        from service.store.sqlite import SqliteDatabase

        return await SqliteDatabase.open(url.removeprefix("sqlite:///"))
    from service.store.postgres import PostgresDatabase

    return await PostgresDatabase.open(url)

