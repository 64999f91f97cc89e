"""What only the PostgreSQL backend has to get right: outages and recovery."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from service.store import StorageUnavailable, open_database
from tests.support.forwarder import Forwarder


async def test_opening_while_postgres_is_down_succeeds(
    pg_template_url: str, pg_forwarder: Forwarder
) -> None:
    """The pool is lazy, so a server starting during an outage still comes up."""
    pg_forwarder.stop()
    db = await open_database(pg_forwarder.url_through(pg_template_url))
    try:
        with pytest.raises(StorageUnavailable):
            await db.ping()
    finally:
        await db.close()


async def test_the_pool_recovers_when_postgres_comes_back(
    pg_template_url: str, pg_forwarder: Forwarder
) -> None:
    """After an outage that cut live connections, the next statement reconnects."""
    db = await open_database(pg_forwarder.url_through(pg_template_url))
    try:
        await db.ping()
        pg_forwarder.stop()
        with pytest.raises(StorageUnavailable):
            await db.ping()
        with pytest.raises(StorageUnavailable):
            await db.fetchval("SELECT 1")
        pg_forwarder.start()
        await db.ping()
        assert await db.fetchval("SELECT 1") == 1
    finally:
        await db.close()


async def test_a_transaction_during_an_outage_raises_storage_unavailable(
    pg_template_url: str, pg_forwarder: Forwarder
) -> None:
    """A transaction that cannot reach the server fails as StorageUnavailable (503)."""
    db = await open_database(pg_forwarder.url_through(pg_template_url))
    try:
        pg_forwarder.stop()
        with pytest.raises(StorageUnavailable):
            async with db.transaction() as tx:
                await tx.fetchval("SELECT 1")
    finally:
        await db.close()


async def test_an_outage_mid_transaction_raises_storage_unavailable(
    pg_template_url: str, pg_forwarder: Forwarder
) -> None:
    """A connection cut inside a transaction surfaces as StorageUnavailable."""
    db = await open_database(pg_forwarder.url_through(pg_template_url))
    try:
        with pytest.raises(StorageUnavailable):
            async with db.transaction() as tx:
                await tx.fetchval("SELECT 1")
                pg_forwarder.stop()
                await tx.fetchval("SELECT 1")
    finally:
        await db.close()


def _with(url: str, *, user: str | None = None, database: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc if user is None else f"{user}@{parts.netloc.rpartition('@')[2]}"
    path = parts.path if database is None else "/" + database
    return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))


@pytest.mark.parametrize(
    ("change", "named"),
    [({"user": "authd_no_such_user"}, "authd_no_such_user"),
     ({"database": "authd_no_such_database"}, "authd_no_such_database")],
    ids=["unknown-user", "unknown-database"],
)
async def test_a_refused_login_is_storage_unavailable_naming_the_problem(
    pg_template_url: str, change: dict[str, str], named: str
) -> None:
    """A wrong user or database name is reported as what it is, not as a crash."""
    db = await open_database(_with(pg_template_url, **change))
    try:
        with pytest.raises(StorageUnavailable) as caught:
            await db.fetchval("SELECT 1")
    finally:
        await db.close()
    assert named in str(caught.value)
    assert "AUTHD_DATABASE_URL" in str(caught.value)


async def test_a_refused_password_is_not_repeated(pg_template_url: str) -> None:
    """The message about a refused login never carries the password that was tried."""
    parts = urlsplit(pg_template_url)
    host = parts.netloc.rpartition("@")[2]
    password = f"pw-{uuid.uuid4().hex}"
    url = urlunsplit((parts.scheme, f"authd_no_such_user:{password}@{host}", parts.path, "", ""))
    db = await open_database(url)
    try:
        with pytest.raises(StorageUnavailable) as caught:
            await db.ping()
    finally:
        await db.close()
    assert password not in str(caught.value)


async def test_a_misused_statement_is_not_reported_as_an_outage(pg_template_url: str) -> None:
    """asyncpg's InterfaceError for a wrong argument count is a bug: it propagates
    (500 with a traceback), never as a 503 'PostgreSQL is unreachable'."""
    db = await open_database(pg_template_url)
    try:
        with pytest.raises(asyncpg.exceptions.InterfaceError):
            await db.fetchval("SELECT $1::int")
        with pytest.raises(asyncpg.exceptions.InterfaceError):
            async with db.transaction() as tx:
                await tx.fetchval("SELECT $1::int", 1, 2)
        assert await db.fetchval("SELECT 1") == 1
    finally:
        await db.close()


async def test_a_closed_database_is_storage_unavailable(pg_template_url: str) -> None:
    """A statement after close (the pool is closing at shutdown) answers 503."""
    db = await open_database(pg_template_url)
    await db.ping()
    await db.close()
    with pytest.raises(StorageUnavailable):
        await db.ping()
