"""Fixtures: real PostgreSQL, real Redis, real SQLite files, real server processes.

Each run creates its own PostgreSQL databases and uses its own Redis key prefix, so
two runs on one machine never see each other's data. A server that cannot be reached
fails the run (DESIGN §8) — ``make test`` starts them first.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from service.store import Database, open_database
from service.store.migrate import migrate
from tests.support.browser import browser, browser_context  # noqa: F401 (fixtures)
from tests.support.databases import (
    ADMIN_URL,
    REDIS_URL,
    RUN_ID,
    create_database,
    drop_run_databases,
)
from tests.support.forwarder import Forwarder
from tests.support.servers import Server, free_port, new_kek

TABLES = (
    "audit_events", "revocations", "refresh_tokens", "refresh_families", "users",
    "api_keys", "clients", "signing_keys", "signing_target", "changes",
)


@pytest.fixture(scope="session")
async def pg_template_url() -> str:
    """One migrated PostgreSQL database for the storage tests of this run."""
    url = await create_database("store")
    db = await open_database(url)
    try:
        await migrate(db)
    finally:
        await db.close()
    return url


@pytest.fixture(scope="session", autouse=True)
async def _drop_databases_after_run() -> AsyncIterator[None]:
    yield
    await drop_run_databases()


@pytest.fixture(params=["postgresql", "sqlite"])
async def database(
    request: pytest.FixtureRequest, pg_template_url: str, tmp_path: Path
) -> AsyncIterator[Database]:
    """The storage contract runs unchanged against both backends."""
    if request.param == "postgresql":
        db = await open_database(pg_template_url)
        await db.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    else:
        db = await open_database(f"sqlite:///{tmp_path / 'contract.sqlite3'}")
        await migrate(db)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def redis_prefix() -> str:
    return f"authd-test:{RUN_ID}:{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def redis(redis_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    await client.ping()
    yield client
    keys = [key async for key in client.scan_iter(match=redis_prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def server_env(redis_prefix: str) -> dict[str, str]:
    """The environment of a production-shaped server: PostgreSQL + Redis + a KEK."""
    return {
        "AUTHD_DATABASE_URL": await create_database("e2e"),
        "AUTHD_REDIS_URL": REDIS_URL,
        "AUTHD_REDIS_PREFIX": redis_prefix,
        "AUTHD_KEK": new_kek(),
    }


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``authd serve`` processes; every one is stopped after the test."""
    started: list[Server] = []

    def start(env: dict[str, str], *, workers: int = 1, migrate_first: bool = True) -> Server:
        server = Server(env=dict(env), port=free_port(),
                        log_path=tmp_path / f"server-{len(started)}.log", workers=workers)
        if migrate_first and "AUTHD_DATABASE_URL" in env:
            server.cli(["migrate"])
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def pg_forwarder() -> Iterator[Forwarder]:
    """A cuttable TCP path to the real PostgreSQL (see tests.support.forwarder)."""
    forwarder = Forwarder.for_url(ADMIN_URL).start()
    yield forwarder
    forwarder.close()


@pytest.fixture
def redis_forwarder() -> Iterator[Forwarder]:
    """A cuttable TCP path to the real Redis (see tests.support.forwarder)."""
    forwarder = Forwarder.for_url(REDIS_URL).start()
    yield forwarder
    forwarder.close()
