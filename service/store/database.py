"""The one storage interface every domain store is written against.

Domain stores hold plain SQL written once, in PostgreSQL's ``$1`` placeholder style,
that both dialects accept: times are Unix seconds (``double precision`` / ``REAL``),
digests are ``bytea`` / ``BLOB``, structured values are JSON text. The two
implementations differ only in how they connect, lock and translate placeholders, so
the same contract tests prove both (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

Row = dict[str, Any]
# One statement of a fixed sequence for ``Database.transact``: SQL and its parameters.
Statement = tuple[str, Sequence[Any]]


class StorageUnavailable(Exception):
    """The database cannot be reached; callers answer 503, never 500."""


class SchemaOutdated(StorageUnavailable):
    """A statement met a table or column the database does not have: ``authd migrate``
    has not run on it (or not since this version's migrations). For the server that is
    an outage like any other (503, ``/readyz`` fails, the log says what to do); the CLI
    answers it as one line telling the operator to migrate."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"the database schema is missing or out of date ({detail}): run `authd migrate`"
        )


class IntegrityViolation(Exception):
    """A write broke a unique or foreign-key constraint, on either backend.

    Both implementations raise the same two subclasses, naming the table and the
    columns the constraint covers (a foreign-key violation names them on PostgreSQL
    only: SQLite does not say which reference failed). Never the values: the driver's
    own message carries them (an email, a digest) and must not reach a log or a
    client. Domain stores turn the violations their writes can meet into their own
    typed errors (``docs/constraints.md`` lists every constraint and its answer);
    the HTTP and CLI error tables answer any other as a 409 conflict, never a 500.
    """

    kind = "integrity"

    def __init__(self, table: str | None, columns: tuple[str, ...] = ()) -> None:
        self.table = table
        self.columns = columns
        where = table or "a table"
        if columns:
            where += "(" + ", ".join(columns) + ")"
        super().__init__(f"{self.kind} constraint violated on {where}")


class UniqueViolation(IntegrityViolation):
    """The row would duplicate a primary key or a unique column set."""

    kind = "unique"


class ForeignKeyViolation(IntegrityViolation):
    """The row refers to a row that does not exist (or still has rows referring to it)."""

    kind = "foreign key"


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

    async def transact(self, statements: Sequence[Statement]) -> list[list[Row]]:
        """Run a fixed sequence of statements in one transaction (all or nothing, as
        ``transaction()``) and return each one's rows, in order.

        For a hot write whose later statements need nothing decided in Python from the
        earlier ones' answers (their conditions are in the SQL itself): SQLite then
        runs the whole transaction in one trip to its worker thread instead of one per
        statement plus BEGIN and COMMIT, each trip costing a loop wake-up and a GIL
        hand-off. Anything that decides between statements uses ``transaction()``.
        """
        ...

    async def ping(self) -> None:
        """Raise StorageUnavailable unless a trivial query answers."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Every wait on the database server is bounded (DESIGN §2): opening a connection,
    waiting for a free one in the pool, and one statement. A server that hangs turns
    into StorageUnavailable after at most these, never into piled-up requests."""

    connect: float = 2.0
    acquire: float = 2.0
    statement: float = 5.0


async def open_database(url: str, timeouts: Timeouts | None = None) -> Database:
    """Connect to ``postgresql://…`` or ``sqlite:///…``."""
    if url.startswith("sqlite:///"):
        from service.store.sqlite import SqliteDatabase

        return await SqliteDatabase.open(url.removeprefix("sqlite:///"))
    from service.store.postgres import PostgresDatabase

    return await PostgresDatabase.open(url, timeouts or Timeouts())

