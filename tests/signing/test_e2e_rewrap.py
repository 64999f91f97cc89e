"""``authd keys rewrap`` with the real CLI against PostgreSQL, while a server runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.signing.e2e import jwks_kids
from tests.support.servers import Server, new_kek, run_cli

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery staple"


def _refresh(server: Server, token: str) -> str:
    response = httpx.post(f"{server.base_url}/v1/refresh", json={"refresh_token": token},
                          timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["refresh_token"])


def test_rewrap_then_restart_with_the_new_kek_keeps_keys_and_sessions(
    server_env: dict[str, str], start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """The running server keeps refreshing after the rewrap, a server restarted with
    the new KEK serves the same JWKS and the same session, and no KEK is printed."""
    old = start_server(server_env)
    old.cli(["users", "create", "kek@example.com"], stdin=PASSWORD + "\n")
    login = httpx.post(f"{old.base_url}/v1/login", timeout=10,
                       json={"email": "kek@example.com", "password": PASSWORD})
    assert login.status_code == 200, login.text
    token = _refresh(old, login.json()["refresh_token"])  # leaves a sealed successor
    kids = jwks_kids(old)
    new_text = new_kek()
    new_file = tmp_path / "kek.new"
    new_file.write_text(new_text + "\n")

    result = old.cli(["--json", "keys", "rewrap", "--new-kek-file", str(new_file)])
    report = json.loads(result.stdout)
    assert report["status"] == "rewrapped"
    assert report["signing_key"]["rewrapped"] == 2
    assert report["refresh_successor"]["rewrapped"] >= 1

    token = _refresh(old, token)  # the old-KEK replica signs with its keys in memory
    old.stop()
    restarted = start_server({**server_env, "AUTHD_KEK": new_text}, migrate_first=False)
    restarted.wait_ready()
    assert jwks_kids(restarted) == kids
    _refresh(restarted, token)
    printed = result.stdout + result.stderr + old.logs() + restarted.logs()
    assert server_env["AUTHD_KEK"] not in printed and new_text not in printed


def test_rewrap_without_a_new_kek_fails_with_one_line_and_changes_nothing(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Without --new-kek-file or AUTHD_NEW_KEK (or with a malformed one) the command
    exits non-zero with one line, and a later valid run still finds every key to rewrap."""
    start_server(server_env)
    failed = run_cli(["keys", "rewrap"], server_env, check=False)
    assert failed.returncode != 0
    assert failed.stderr.strip().count("\n") == 0
    assert "--new-kek-file" in failed.stderr and "AUTHD_NEW_KEK" in failed.stderr
    bad = run_cli(["keys", "rewrap"], {**server_env, "AUTHD_NEW_KEK": "not base64!"},
                  check=False)
    assert bad.returncode != 0 and "not base64!" not in bad.stderr
    result = run_cli(["--json", "keys", "rewrap"], {**server_env, "AUTHD_NEW_KEK": new_kek()})
    assert json.loads(result.stdout)["signing_key"]["rewrapped"] == 2
