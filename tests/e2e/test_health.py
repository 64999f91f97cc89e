"""Liveness and readiness of the real server, through real outages of its dependencies.

An outage is a TCP forwarder between the server and the shared PostgreSQL or Redis
being cut (tests.support.forwarder): the shared servers themselves keep running.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.support.databases import REDIS_URL
from tests.support.forwarder import Forwarder
from tests.support.servers import Server, run_cli

pytestmark = pytest.mark.e2e

StartServer = Callable[..., Server]


def wait_for_status(server: Server, path: str, status: int, timeout: float = 20.0) -> \
        httpx.Response:
    deadline = time.monotonic() + timeout
    response = httpx.get(server.base_url + path, timeout=5)
    while response.status_code != status and time.monotonic() < deadline:
        time.sleep(0.2)
        response = httpx.get(server.base_url + path, timeout=5)
    assert response.status_code == status, response.text
    return response


def test_healthz_answers_200_on_the_embedded_default(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """With nothing configured the process is alive and says so."""
    server = start_server(embedded_env)
    response = httpx.get(server.base_url + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_200_on_the_embedded_default(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """SQLite with no Redis is a complete, ready service (make run)."""
    server = start_server(embedded_env)
    response = wait_for_status(server, "/readyz", 200)
    assert response.json()["checks"]["database"] == "ok"
    assert "redis" not in response.json()["checks"]


def test_readyz_answers_200_with_postgres_and_redis(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """The production shape checks PostgreSQL and Redis and finds both up."""
    server = start_server(server_env)
    checks = wait_for_status(server, "/readyz", 200).json()["checks"]
    assert checks["database"] == "ok"
    assert checks["redis"] == "ok"


def test_readyz_names_the_database_while_postgres_is_down_and_recovers(
    start_server: StartServer, server_env: dict[str, str], pg_forwarder: Forwarder
) -> None:
    """A PostgreSQL outage is a 503 naming the database; liveness stays 200; it heals."""
    env = {**server_env,
           "AUTHD_DATABASE_URL": pg_forwarder.url_through(server_env["AUTHD_DATABASE_URL"])}
    server = start_server(env)
    wait_for_status(server, "/readyz", 200)

    pg_forwarder.stop()
    down = wait_for_status(server, "/readyz", 503)
    assert down.headers["content-type"] == "application/problem+json"
    assert "database" in down.json()["detail"]
    assert down.json()["checks"]["database"] == "down"
    assert httpx.get(server.base_url + "/healthz").status_code == 200

    pg_forwarder.start()
    wait_for_status(server, "/readyz", 200)


def test_readyz_names_redis_while_redis_is_down_and_recovers(
    start_server: StartServer, server_env: dict[str, str], redis_forwarder: Forwarder
) -> None:
    """A Redis outage is a 503 naming redis; liveness stays 200; it heals."""
    server = start_server({**server_env, "AUTHD_REDIS_URL": redis_forwarder.url_through(REDIS_URL)})
    wait_for_status(server, "/readyz", 200)

    redis_forwarder.stop()
    down = wait_for_status(server, "/readyz", 503)
    assert "redis" in down.json()["detail"]
    assert "database" not in down.json()["detail"]
    assert httpx.get(server.base_url + "/healthz").status_code == 200

    redis_forwarder.start()
    wait_for_status(server, "/readyz", 200)


def test_a_server_started_during_a_postgres_outage_comes_up_and_recovers(
    start_server: StartServer, server_env: dict[str, str], pg_forwarder: Forwarder
) -> None:
    """Starting while PostgreSQL is unreachable still serves /healthz, then heals."""
    run_cli(["migrate"], server_env)
    pg_forwarder.stop()
    env = {**server_env,
           "AUTHD_DATABASE_URL": pg_forwarder.url_through(server_env["AUTHD_DATABASE_URL"])}
    server = start_server(env, migrate_first=False)
    assert "database" in wait_for_status(server, "/readyz", 503).json()["detail"]

    pg_forwarder.start()
    wait_for_status(server, "/readyz", 200, timeout=30)
