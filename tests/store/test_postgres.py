"""What only the PostgreSQL backend has to get right: outages and recovery."""

from __future__ import annotations

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
