"""SIGTERM lets in-flight requests finish before the process exits."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.support.forwarder import Forwarder
from tests.support.servers import Server

pytestmark = pytest.mark.e2e

StartServer = Callable[..., Server]
# uvicorn finishes its graceful shutdown, then re-raises the signal it caught, so a
# clean stop is "terminated by SIGTERM" (systemd and Kubernetes count it as success).
CLEAN_EXIT = (0, -signal.SIGTERM)


def test_sigterm_lets_an_in_flight_request_finish(
    start_server: StartServer, server_env: dict[str, str], pg_forwarder: Forwarder
) -> None:
    """A /readyz slowed by a lagging database still gets its answer during shutdown."""
    env = {**server_env,
           "AUTHD_DATABASE_URL": pg_forwarder.url_through(server_env["AUTHD_DATABASE_URL"])}
    server = start_server(env)
    server.wait_ready()
    pg_forwarder.delay = 0.6  # each round trip to PostgreSQL now takes over a second

    answers: list[httpx.Response | Exception] = []

    def slow_request() -> None:
        try:
            answers.append(httpx.get(server.base_url + "/readyz", timeout=15))
        except httpx.HTTPError as exc:
            answers.append(exc)

    worker = threading.Thread(target=slow_request)
    worker.start()
    time.sleep(0.4)
    assert worker.is_alive(), "the request finished before the signal: not in flight"
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    worker.join(timeout=20)
    [answer] = answers
    assert isinstance(answer, httpx.Response), answer
    assert answer.status_code in (200, 503)
    assert server.stop() in CLEAN_EXIT
    assert "Application shutdown complete." in server.logs()


def test_sigterm_on_an_idle_server_exits_cleanly(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """An idle server stops promptly with exit status 0 on SIGTERM."""
    server = start_server(embedded_env)
    started = time.monotonic()
    assert server.stop() in CLEAN_EXIT
    assert time.monotonic() - started < 10
    assert "Application shutdown complete." in server.logs()
