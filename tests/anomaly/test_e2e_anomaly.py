"""Anomaly signals against a real server behind a trusted proxy: the client address
comes from X-Forwarded-For sent by a trusted loopback peer (AUTHD_TRUSTED_PROXIES)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from tests.mfa.helpers import claims, enrol, password_step, ticket_of
from tests.sessions.helpers import admin_key, create_user
from tests.support.servers import Server

pytestmark = pytest.mark.e2e

HOME = "198.51.100.7"
AWAY = "203.0.113.9"
PROXIED = {"AUTHD_TRUSTED_PROXIES": "127.0.0.1/32"}


def from_(address: str) -> dict[str, str]:
    """The header a trusted proxy adds for the client it forwards."""
    return {"X-Forwarded-For": address}


async def audit_rows(server: Server, action: str, *, until: Callable[[list[Any]], bool],
                     query_action: str | None = None) -> list[dict[str, Any]]:
    """The audit rows of ``action`` once ``until`` holds for the rows of ``query_action``
    (the audit log is written in batches, at least once a second)."""
    deadline = time.monotonic() + 20
    conn = await asyncpg.connect(server.env["AUTHD_DATABASE_URL"])
    try:
        while True:
            gate = await conn.fetch("SELECT * FROM audit_events WHERE action = $1",
                                    query_action or action)
            if until(gate) or time.monotonic() > deadline:
                rows = await conn.fetch(
                    "SELECT * FROM audit_events WHERE action = $1 ORDER BY id", action)
                return [dict(r) for r in rows]
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def test_a_login_from_a_new_network_raises_exactly_one_anomaly(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Logins from two /24s: one login.anomaly (new_network) for the second, naming the
    forwarded client address; a third from the first network raises none."""
    server = start_server({**server_env, **PROXIED})
    user = create_user(server, "traveller@example.com")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        for address in (HOME, AWAY, HOME):
            assert password_step(client, user["email"], headers=from_(address)).status_code == 200
    anomalies = await audit_rows(server, "login.anomaly", query_action="login",
                                 until=lambda rows: sum(r["outcome"] == "ok" for r in rows) >= 3)
    assert len(anomalies) == 1
    assert anomalies[0]["ip"] == AWAY and anomalies[0]["subject"] == user["id"]
    assert json.loads(anomalies[0]["details"])["reasons"] == ["new_network"]
    metrics = _metrics(server)
    assert 'authd_auth_anomalies_total{kind="login",reason="new_network"} 1.0' in metrics
    assert AWAY not in metrics


def test_with_step_up_a_login_from_a_new_network_asks_for_mfa(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Under AUTHD_ANOMALY_POLICY=step_up an enrolled user logging in from the known
    network gets tokens (amr pwd); from a new network the login answers mfa_required."""
    server = start_server({**server_env, **PROXIED, "AUTHD_ANOMALY_POLICY": "step_up"})
    with httpx.Client(base_url=server.base_url, timeout=30,
                      headers={"X-Forwarded-For": HOME}) as client:
        user = enrol(server, client, "stepup@example.com")  # enrols after a login from HOME
        familiar = password_step(client, user.email, headers=from_(HOME))
        assert familiar.status_code == 200, familiar.text
        assert claims(familiar.json()["access_token"])["amr"] == ["pwd"]
        ticket_of(password_step(client, user.email, headers=from_(AWAY)))


def test_admin_lists_recent_logins_and_anomalies(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """``users logins`` shows both logins newest first; ``users anomalies`` the one anomaly."""
    server = start_server({**server_env, **PROXIED})
    user = create_user(server, "listed@example.com")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        for address in (HOME, AWAY):
            assert password_step(client, user["email"], headers=from_(address)).status_code == 200
    logins = json.loads(server.cli(["--json", "users", "logins", user["id"]]).stdout)["logins"]
    assert [entry["ip"] for entry in logins] == [AWAY, HOME]
    assert logins[0]["reasons"] == ["new_network"] and logins[0]["network"] == "203.0.113.0/24"
    deadline = time.monotonic() + 20
    while True:
        listed = httpx.get(f"{server.base_url}/admin/users/{user['id']}/anomalies",
                           headers={"X-API-Key": admin_key(server)}, timeout=10)
        assert listed.status_code == 200
        if listed.json()["anomalies"] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert [a["reasons"] for a in listed.json()["anomalies"]] == [["new_network"]]


def _key(server: Server) -> tuple[str, str]:
    client = json.loads(server.cli(["--json", "clients", "create", f"svc-{time.time_ns()}",
                                    "--scope", "read"]).stdout)
    key = json.loads(server.cli(["--json", "apikeys", "create", "--client",
                                 client["id"]]).stdout)
    return str(key["id"]), str(key["api_key"])


def test_deny_refuses_a_key_outside_its_allowed_cidrs(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """With policy deny, a key restricted to 198.51.100.0/24 exchanges from inside it
    and gets 401 invalid_client from outside it."""
    server = start_server({**server_env, **PROXIED, "AUTHD_ANOMALY_POLICY": "deny"})
    key_id, key = _key(server)
    server.cli(["--json", "anomaly", "allow-cidrs", key_id, "198.51.100.0/24"])
    with httpx.Client(base_url=server.base_url, timeout=30,
                      headers={"X-API-Key": key}) as client:
        assert client.post("/v1/token", headers=from_(HOME)).status_code == 200
        outside = client.post("/v1/token", headers=from_(AWAY))
    assert outside.status_code == 401 and outside.json()["error"] == "invalid_client"


async def test_a_key_used_from_a_new_network_raises_one_anomaly(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Exchanges from HOME, then several from AWAY: exactly one apikey.anomaly, and the
    key's history lists both networks."""
    server = start_server({**server_env, **PROXIED})
    key_id, key = _key(server)
    _exchange_from_home_then_away(server, key_id, key)
    server.stop()  # flushes the history and the audit buffer
    anomalies = await audit_rows(server, "apikey.anomaly", until=lambda rows: True)
    assert len(anomalies) == 1 and anomalies[0]["ip"] == AWAY
    networks = json.loads(server.cli(["--json", "anomaly", "key-networks", key_id]).stdout)
    assert {n["network"] for n in networks["networks"]} == {"198.51.100.0/24", "203.0.113.0/24"}


def _metrics(server: Server) -> str:
    return httpx.get(server.base_url + "/metrics", timeout=10).text


def _exchange_from_home_then_away(server: Server, key_id: str, key: str) -> None:
    """One exchange from HOME, until it is the key's history; then three from AWAY."""
    with httpx.Client(base_url=server.base_url, timeout=30,
                      headers={"X-API-Key": key}) as client:
        assert client.post("/v1/token", headers=from_(HOME)).status_code == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            shown = json.loads(server.cli(["--json", "anomaly", "key-networks", key_id]).stdout)
            if shown["networks"]:
                break
            time.sleep(0.3)
        for _ in range(3):
            assert client.post("/v1/token", headers=from_(AWAY)).status_code == 200
