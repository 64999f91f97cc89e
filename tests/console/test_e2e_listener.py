"""``AUTHD_ADMIN_LISTEN``: /admin and /console only on the admin port, the public
endpoints only on the public port — one real server, both sockets."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.apikeys.support import bootstrap
from tests.support.dpop import DPoPKey
from tests.support.servers import Server, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def split(start_server: Callable[..., Server], server_env: dict[str, str]
          ) -> tuple[Server, str]:
    admin_port = free_port()
    env = {**server_env, "AUTHD_ADMIN_LISTEN": f"127.0.0.1:{admin_port}"}
    server = start_server(env)
    return server, f"http://127.0.0.1:{admin_port}"


def test_the_public_port_does_not_serve_admin_or_console(split: tuple[Server, str]) -> None:
    """On the public port /admin/* and /console answer 404 problem+json."""
    server, _ = split
    for path in ("/admin/keys", "/console", "/console/login", "/admin/audit"):
        response = httpx.get(server.base_url + path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith(
            "application/problem+json") or path.startswith("/console")


def test_the_admin_port_serves_admin_and_console(split: tuple[Server, str]) -> None:
    """On the admin port the admin API asks for credentials and the console for a
    sign-in."""
    _, admin = split
    assert httpx.get(admin + "/admin/keys").status_code == 401
    console = httpx.get(admin + "/console")
    assert console.status_code == 303
    assert console.headers["location"] == "/console/login"
    assert httpx.get(admin + "/console/login").status_code == 200


def test_the_admin_port_does_not_serve_the_public_endpoints(
        split: tuple[Server, str]) -> None:
    """Token, JWKS and login are not on the admin port; its own probes are."""
    _, admin = split
    assert httpx.post(admin + "/oauth/token").status_code == 404
    assert httpx.get(admin + "/.well-known/jwks.json").status_code == 404
    assert httpx.post(admin + "/v1/login", json={}).status_code == 404
    assert httpx.get(admin + "/healthz").status_code == 200


def test_the_public_port_keeps_serving_the_public_endpoints(
        split: tuple[Server, str]) -> None:
    """JWKS answers on the public port as ever."""
    server, _ = split
    assert httpx.get(server.base_url + "/.well-known/jwks.json").status_code == 200


def test_every_worker_serves_the_admin_listener(
        start_server: Callable[..., Server], server_env: dict[str, str]) -> None:
    """With two workers (one SO_REUSEPORT listener pair each) the admin port answers
    and the public one still refuses /admin."""
    admin_port = free_port()
    server = start_server({**server_env, "AUTHD_ADMIN_LISTEN": f"127.0.0.1:{admin_port}"},
                          workers=2)
    statuses = {httpx.get(f"http://127.0.0.1:{admin_port}/admin/keys").status_code
                for _ in range(10)}
    assert statuses == {401}
    assert httpx.get(server.base_url + "/admin/keys").status_code == 404


def test_a_dpop_proof_for_the_admin_listener_is_accepted_there_and_a_forged_host_is_not(
        split: tuple[Server, str]) -> None:
    """At the admin port, htu may name the configured AUTHD_ADMIN_LISTEN address; a
    proof naming whatever the Host header claims is refused."""
    server, admin = split
    server.wait_ready()
    admin_key = bootstrap(server).admin_key
    key = DPoPKey()
    token = httpx.post(server.base_url + "/v1/token", headers={
        "X-API-Key": admin_key,
        "DPoP": key.proof("POST", server.base_url + "/v1/token")}).json()["access_token"]

    def clients(url: str, host: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"DPoP {token}",
                   "DPoP": key.proof("GET", url, access_token=token)}
        if host is not None:
            headers["Host"] = host
        return httpx.get(admin + "/admin/clients", headers=headers)

    assert clients(admin + "/admin/clients").status_code == 200
    forged = clients("http://admin.example/admin/clients", host="admin.example")
    assert forged.status_code == 401
