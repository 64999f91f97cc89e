"""Migrations are applied once, recorded, and safe to run from two places at once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from service.store import open_database
from service.store.migrate import MIGRATIONS_DIR, available, migrate, pending
from tests.support.databases import create_database
from tests.support.servers import REPO, base_env, new_kek


def dialect_versions(dialect: str) -> list[str]:
    return [m.version for m in available(dialect)]


def test_both_dialects_have_the_same_migrations() -> None:
    """Every numbered migration exists for PostgreSQL and for SQLite."""
    assert dialect_versions("postgresql") == dialect_versions("sqlite")
    assert dialect_versions("postgresql")


async def test_sqlite_migrates_once_and_records_it(tmp_path: Path) -> None:
    """A fresh SQLite file gets every migration; a second run applies nothing."""
    db = await open_database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        assert await migrate(db) == dialect_versions("sqlite")
        assert await migrate(db) == []
        assert await pending(db) == []
        recorded = await db.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in recorded] == dialect_versions("sqlite")
    finally:
        await db.close()


async def test_postgres_migrates_once_and_records_it() -> None:
    """A fresh PostgreSQL database gets every migration; a second run applies nothing."""
    db = await open_database(await create_database("migrate"))
    try:
        assert await pending(db) == dialect_versions("postgresql")
        assert await migrate(db) == dialect_versions("postgresql")
        assert await migrate(db) == []
        recorded = await db.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in recorded] == dialect_versions("postgresql")
    finally:
        await db.close()


async def test_a_new_migration_file_is_applied_on_the_next_run(tmp_path: Path) -> None:
    """Only the migrations not yet recorded run when the folder grows."""
    folder = tmp_path / "migrations" / "sqlite"
    folder.mkdir(parents=True)
    (folder / "0001_a.sql").write_text("CREATE TABLE a (id integer);\n")
    db = await open_database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        assert await migrate(db, tmp_path / "migrations") == ["0001_a"]
        (folder / "0002_b.sql").write_text(
            "-- a comment line\nCREATE TABLE b (id integer);\nINSERT INTO a VALUES (1);\n"
        )
        assert await migrate(db, tmp_path / "migrations") == ["0002_b"]
        assert await db.fetchval("SELECT count(*) FROM a") == 1
    finally:
        await db.close()


async def test_a_failing_migration_leaves_nothing_applied(tmp_path: Path) -> None:
    """A broken migration rolls back entirely and is not recorded."""
    folder = tmp_path / "migrations" / "sqlite"
    folder.mkdir(parents=True)
    (folder / "0001_a.sql").write_text("CREATE TABLE a (id integer);\nNOT SQL AT ALL;\n")
    db = await open_database(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        try:
            await migrate(db, tmp_path / "migrations")
        except Exception as exc:
            assert "syntax" in str(exc).lower()
        else:
            raise AssertionError("a broken migration was applied")
        tables = await db.fetch("SELECT name FROM sqlite_master WHERE name = 'a'")
        assert tables == []
        assert await pending(db, tmp_path / "migrations") == ["0001_a"]
    finally:
        await db.close()


async def test_two_migrate_processes_at_once_apply_the_schema_once() -> None:
    """Two ``authd migrate`` started together on one empty database both exit 0."""
    url = await create_database("race")
    env = base_env({"AUTHD_DATABASE_URL": url, "AUTHD_KEK": new_kek()})
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "service", "--json", "migrate",
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(process.communicate() for process in processes)), timeout=60
    )
    assert [process.returncode for process in processes] == [0, 0], outcomes
    applied = [json.loads(stdout)["applied"] for stdout, _ in outcomes]
    assert sorted(applied, key=len) == [[], dialect_versions("postgresql")]
    db = await open_database(url)
    try:
        recorded = await db.fetch("SELECT version FROM schema_migrations")
        assert sorted(r["version"] for r in recorded) == dialect_versions("postgresql")
    finally:
        await db.close()


def test_migrations_live_in_the_repository() -> None:
    """The migrations folder ships with the code, one folder per dialect."""
    assert {p.name for p in MIGRATIONS_DIR.iterdir() if p.is_dir()} >= {"postgresql", "sqlite"}
