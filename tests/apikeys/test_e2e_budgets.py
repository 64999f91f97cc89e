"""The failed-attempt budgets bound guessing and store lookups, never valid clients
(DESIGN §2, issue 13 §1): a real server on PostgreSQL + Redis behind a trusted proxy,
so that each request names its client address in X-Forwarded-For."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable

import asyncpg
import httpx
import pytest

from service.apikeys import keyformat
from tests.sessions.helpers import PASSWORD, create_user
from tests.support.servers import Server

pytestmark = pytest.mark.e2e

ADDRESS_A = "198.51.100.1"
ADDRESS_B = "198.51.100.2"
# The unique index behind SELECT … WHERE digest = $1: its scan count is the number of
# API-key lookups PostgreSQL itself has served.
DIGEST_INDEX = "api_keys_digest_key"


def _exchange(client: httpx.Client, key: str, address: str) -> httpx.Response:
    return client.post("/v1/token", headers={"X-API-Key": key, "X-Forwarded-For": address})


def _new_key(server: Server, client_id: str) -> tuple[str, str]:
    issued = json.loads(server.cli(["--json", "apikeys", "create", "--client",
                                    client_id]).stdout)
    return str(issued["id"]), str(issued["api_key"])


# PostgreSQL (15 and later) publishes a backend's counters when a transaction ends at
# most once a second; a backend that goes idle with counters still pending publishes
# them within PGSTAT_IDLE_INTERVAL, 10 s. So two equal reads a moment apart can both
# come before a lookup is counted (seen: 0, then 3): the count is read only once that
# interval has passed since the server's last statement.
STATS_SETTLE_S = 11.0


async def _settled_lookups(database_url: str) -> int:
    """The digest index's scan count once every lookup made so far is published."""
    await asyncio.sleep(STATS_SETTLE_S)
    connection = await asyncpg.connect(database_url)
    try:
        return int(await connection.fetchval(
            "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = $1",
            DIGEST_INDEX))
    finally:
        await connection.close()


def _wait_for_window_start(seconds: float, *, room: float) -> None:
    """Fixed windows: start a sequence at least ``room`` seconds before a boundary."""
    left = seconds - time.time() % seconds
    if left < room:
        time.sleep(left + 0.1)


@pytest.fixture
def proxied(server_env: dict[str, str], start_server: Callable[..., Server]) -> Server:
    return start_server({
        **server_env,
        "AUTHD_TRUSTED_PROXIES": "127.0.0.1/32",
        "AUTHD_FAILED_API_KEY_RATE": "30/h",
        "AUTHD_FAILED_LOGIN_RATE": "30/20s",
    })


async def test_a_valid_key_is_served_from_an_address_over_its_budget(proxied: Server) -> None:
    """60 exchanges with a revoked key from A spend A's budget; valid keys from A — one
    cached, one never used before — and from B are still served, and random unknown
    keys from A are then refused with 429 without a single store lookup."""
    _wait_for_window_start(3600, room=180)
    created = json.loads(proxied.cli(["--json", "clients", "create", "cron",
                                      "--scope", "read"]).stdout)
    revoked_id, revoked = _new_key(proxied, created["id"])
    _, warm = _new_key(proxied, created["id"])
    proxied.cli(["apikeys", "revoke", revoked_id])
    database_url = proxied.env["AUTHD_DATABASE_URL"]
    with httpx.Client(base_url=proxied.base_url, timeout=30) as client:
        assert _exchange(client, warm, ADDRESS_A).status_code == 200
        flood = [_exchange(client, revoked, ADDRESS_A).status_code for _ in range(60)]
        assert flood[:30] == [401] * 30, flood
        assert set(flood[30:]) == {429}, flood
        _, cold = _new_key(proxied, created["id"])  # created after the flood, never cached
        assert _exchange(client, warm, ADDRESS_A).status_code == 200
        # The CLI announces the new key on the bus; until the server has heard it, the
        # key is unknown to it and A (over budget) is refused the lookup.
        deadline = time.monotonic() + 5
        while (cold_answer := _exchange(client, cold, ADDRESS_A)).status_code == 429:
            assert time.monotonic() < deadline, "the new key never became known"
            await asyncio.sleep(0.05)
        assert cold_answer.status_code == 200, cold_answer.text
        assert _exchange(client, warm, ADDRESS_B).status_code == 200

        before = await _settled_lookups(database_url)
        unknown = [_exchange(client, keyformat.generate("ak_live"), ADDRESS_A)
                   for _ in range(40)]
        assert {r.status_code for r in unknown} == {429}
        assert all(int(r.headers["retry-after"]) >= 1 for r in unknown)
        assert await _settled_lookups(database_url) == before

        # The same unknown keys from B, under its budget, do reach the store.
        from_b = [_exchange(client, keyformat.generate("ak_live"), ADDRESS_B).status_code
                  for _ in range(5)]
    assert from_b == [401] * 5
    assert await _settled_lookups(database_url) == before + 5


def test_failed_logins_leave_api_keys_alone_and_refuse_even_the_right_password(
    proxied: Server,
) -> None:
    """40 failed logins from A exhaust A's login budget only: API-key exchanges from A
    are unaffected (a valid key 200, an unknown key 401, not 429), while the right
    password from A is 429 until the login window ends, and 200 after it."""
    created = json.loads(proxied.cli(["--json", "clients", "create", "svc",
                                      "--scope", "read"]).stdout)
    _, key = _new_key(proxied, created["id"])
    create_user(proxied, "alice@example.com")
    _wait_for_window_start(20, room=15)
    with httpx.Client(base_url=proxied.base_url, timeout=30) as client:
        headers = {"X-Forwarded-For": ADDRESS_A}
        failures = [
            client.post("/v1/login", headers=headers, json={
                "email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "wrong"
            }).status_code
            for _ in range(40)
        ]
        right = client.post("/v1/login", headers=headers,
                            json={"email": "alice@example.com", "password": PASSWORD})
        exchange = _exchange(client, key, ADDRESS_A)
        unknown = _exchange(client, keyformat.generate("ak_live"), ADDRESS_A)
        window_left = 20 - time.time() % 20
        assert failures[:30] == [401] * 30, failures
        assert set(failures[30:]) == {429}, failures
        assert right.status_code == 429, right.text
        assert 1 <= int(right.headers["retry-after"]) <= 20
        assert exchange.status_code == 200, exchange.text
        assert unknown.status_code == 401, unknown.text
        time.sleep(window_left + 0.2)
        after = client.post("/v1/login", headers=headers,
                            json={"email": "alice@example.com", "password": PASSWORD})
    assert after.status_code == 200, after.text


async def test_budget_refusals_are_counted_per_budget(proxied: Server) -> None:
    """authd_rate_limited_total tells the two budgets apart by their ``limit`` label, and
    the audit log records the API-key budget's exhaustion once, naming that budget."""
    async with httpx.AsyncClient(base_url=proxied.base_url, timeout=30) as client:
        for _ in range(32):
            await client.post("/v1/token", headers={
                "X-API-Key": keyformat.generate("ak_live"), "X-Forwarded-For": ADDRESS_A})
        _wait_for_window_start(20, room=10)
        for _ in range(31):
            await client.post("/v1/login", headers={"X-Forwarded-For": ADDRESS_B}, json={
                "email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "wrong"})
        metrics = (await client.get("/metrics")).text
    assert 'authd_rate_limited_total{limit="failed_api_key"} 2.0' in metrics
    assert 'authd_rate_limited_total{limit="failed_login"} 1.0' in metrics
    assert ADDRESS_A not in metrics and ADDRESS_B not in metrics
    connection = await asyncpg.connect(proxied.env["AUTHD_DATABASE_URL"])
    try:
        deadline = time.monotonic() + 20
        while True:
            rows = await connection.fetch(
                "SELECT ip, details FROM audit_events WHERE action = 'ratelimit.exhausted'")
            if rows or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await connection.close()
    assert [(r["ip"], json.loads(r["details"])["limit"]) for r in rows] == [
        (ADDRESS_A, "failed_api_key")]
