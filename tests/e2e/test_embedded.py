"""The embedded default keeps its state: a restart reuses the SQLite file and KEK."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.servers import Server

pytestmark = pytest.mark.e2e

StartServer = Callable[..., Server]


def test_a_second_start_reuses_the_sqlite_file_and_the_kek(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """Restarting keeps the same database, the same KEK (mode 0600) and its keys."""
    kek_path = Path(embedded_env["AUTHD_KEYS_DIR"]) / "kek"
    db_path = Path(embedded_env["AUTHD_DATA_DIR"]) / "authd.sqlite3"

    first = start_server(embedded_env)
    first.wait_ready()
    jwks_before = httpx.get(first.base_url + "/.well-known/jwks.json").json()
    first.stop()
    kek_before = kek_path.read_bytes()
    assert stat.S_IMODE(kek_path.stat().st_mode) == 0o600
    inode_before = db_path.stat().st_ino

    second = start_server(embedded_env)
    second.wait_ready()
    jwks_after = httpx.get(second.base_url + "/.well-known/jwks.json").json()
    second.stop()

    assert kek_path.read_bytes() == kek_before
    assert stat.S_IMODE(kek_path.stat().st_mode) == 0o600
    assert db_path.stat().st_ino == inode_before
    assert {k["kid"] for k in jwks_before["keys"]} <= {k["kid"] for k in jwks_after["keys"]}
    with sqlite3.connect(db_path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    assert len(versions) == len(set(versions))


def test_the_embedded_default_creates_its_files_on_first_start(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """A fresh machine gets a data folder with the SQLite file and a private KEK."""
    server = start_server(embedded_env)
    server.wait_ready()
    kek = Path(embedded_env["AUTHD_KEYS_DIR"]) / "kek"
    assert (Path(embedded_env["AUTHD_DATA_DIR"]) / "authd.sqlite3").is_file()
    assert stat.S_IMODE(kek.stat().st_mode) == 0o600
    assert len(kek.read_text().strip()) == 44  # base64 of 32 bytes
