"""A PostgreSQL database per test run (or per server under test), dropped after.

AUTHD_TEST_DATABASE_URL names the server and a database to connect to for admin
work (default: the local postgres database); each database made here is new and
uniquely named, so concurrent runs never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ADMIN_URL = os.environ.get("AUTHD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AUTHD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

RUN_ID = uuid.uuid4().hex[:10]
CREATED: list[str] = []


def url_for(database: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


async def create_database(label: str = "db", *, template: str | None = None) -> str:
    """Create an empty database, or a copy of ``template`` (the URL of a database made
    here that nothing is connected to: copying a migrated one is cheaper than
    migrating again); return its URL."""
    name = f"authd_test_{RUN_ID}_{label}_{uuid.uuid4().hex[:6]}"
    source = "" if template is None else f' TEMPLATE "{urlsplit(template).path.lstrip("/")}"'
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"{source}')
        CREATED.append(name)
    finally:
        await conn.close()
    return url_for(name)


async def drop_run_databases() -> None:
    """Drop every database this run created."""
    if not CREATED:
        return
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        while CREATED:
            await conn.execute(f'DROP DATABASE IF EXISTS "{CREATED.pop()}" WITH (FORCE)')
    finally:
        await conn.close()
