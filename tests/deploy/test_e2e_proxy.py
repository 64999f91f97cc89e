"""X-Forwarded-For is honoured only from AUTHD_TRUSTED_PROXIES, so neither the
audit log's IP nor a per-IP rate limit can be spoofed by the caller itself.

The untrusted peer is a real second loopback address: the client binds 127.0.0.2
while only 127.0.0.1/32 is trusted."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import asyncpg
import httpx
import pytest

from tests.support.servers import Server

pytestmark = pytest.mark.e2e

TRUSTED = "127.0.0.1"
UNTRUSTED = "127.0.0.2"
SPOOFED = "203.0.113.7"


def client_from(server: Server, source: str) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=server.base_url, transport=transport, timeout=10)


def failed_login(client: httpx.Client, forwarded_for: str) -> httpx.Response:
    """A login for an address that has no account: refused and audited with the caller's IP."""
    return client.post(
        "/v1/login",
        json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.com", "password": "wrong password"},
        headers={"X-Forwarded-For": forwarded_for},
    )


async def audited_login_ips(database_url: str, expected: int) -> list[str]:
    """The IPs of the audited login events, once ``expected`` of them are written
    (the audit log is written in batches)."""
    deadline = time.monotonic() + 20
    connection = await asyncpg.connect(database_url)
    try:
        while True:
            rows = await connection.fetch(
                "SELECT ip FROM audit_events WHERE action = 'login' ORDER BY id")
            if len(rows) >= expected or time.monotonic() > deadline:
                return [row["ip"] for row in rows]
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


@pytest.fixture
def proxied_server(server_env: dict[str, str], start_server: Callable[..., Server]) -> Server:
    return start_server({**server_env, "AUTHD_TRUSTED_PROXIES": f"{TRUSTED}/32",
                         "AUTHD_FAILED_LOGIN_RATE": "3/m"})


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(proxied_server: Server) -> None:
    """The audit log records the untrusted peer's own address, not its X-Forwarded-For."""
    with client_from(proxied_server, UNTRUSTED) as client:
        assert failed_login(client, SPOOFED).status_code == 401
    ips = await audited_login_ips(proxied_server.env["AUTHD_DATABASE_URL"], 1)
    assert ips == [UNTRUSTED]


async def test_forwarded_for_from_a_trusted_proxy_is_honoured(proxied_server: Server) -> None:
    """Behind a trusted proxy the audit log records the client the proxy names."""
    with client_from(proxied_server, TRUSTED) as client:
        assert failed_login(client, SPOOFED).status_code == 401
    ips = await audited_login_ips(proxied_server.env["AUTHD_DATABASE_URL"], 1)
    assert ips == [SPOOFED]


async def test_forwarded_for_is_ignored_when_no_proxy_is_trusted(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Without AUTHD_TRUSTED_PROXIES even a loopback peer cannot choose its address."""
    server = start_server(server_env)
    with client_from(server, TRUSTED) as client:
        assert failed_login(client, SPOOFED).status_code == 401
    ips = await audited_login_ips(server.env["AUTHD_DATABASE_URL"], 1)
    assert ips == [TRUSTED]


def test_rotating_forwarded_for_does_not_escape_the_per_ip_limit(proxied_server: Server) -> None:
    """An untrusted peer that varies X-Forwarded-For is still limited as one address."""
    with client_from(proxied_server, UNTRUSTED) as client:
        statuses = [failed_login(client, f"198.51.100.{n}").status_code for n in range(1, 6)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]


def test_clients_behind_a_trusted_proxy_are_limited_separately(proxied_server: Server) -> None:
    """Different clients named by a trusted proxy each get their own per-IP budget."""
    with client_from(proxied_server, TRUSTED) as client:
        statuses = [failed_login(client, f"198.51.100.{n}").status_code for n in range(1, 6)]
    assert statuses == [401] * 5
