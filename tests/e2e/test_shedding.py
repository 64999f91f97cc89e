"""Load shedding on the real server: past AUTHD_MAX_IN_FLIGHT a request is answered
503 + Retry-After at once, except JWKS, /healthz, /readyz and /metrics.

One request is held in flight by sending its headers and only part of its body: the
server has started the request and waits for the rest, so with a bound of 1 the next
request finds the worker full.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import Server

pytestmark = pytest.mark.e2e

StartServer = Callable[..., Server]
FORM = b"grant_type=client_credentials&scope=read"


class HeldRequest:
    """A POST /oauth/token whose body stops halfway until ``release``."""

    def __init__(self, server: Server) -> None:
        self.released = False
        self._conn = socket.create_connection(("127.0.0.1", server.port))
        self._conn.sendall(
            b"POST /oauth/token HTTP/1.1\r\nHost: authd\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Authorization: Basic Y2xpZW50OnNlY3JldA==\r\n"
            b"Content-Length: " + str(len(FORM)).encode() + b"\r\n\r\n" + FORM[:10]
        )

    def release(self) -> int:
        """Send the rest of the body; the status the server answers."""
        self.released = True
        self._conn.sendall(FORM[10:])
        status = int(self._conn.makefile("rb").readline().split()[1])
        self._conn.close()
        return status


@pytest.fixture
def full_server(
    start_server: StartServer, embedded_env: dict[str, str]
) -> Iterator[tuple[Server, HeldRequest]]:
    """A server with a bound of one request in flight, and that one request held."""
    server = start_server({**embedded_env, "AUTHD_MAX_IN_FLIGHT": "1"})
    server.wait_ready()
    held = HeldRequest(server)
    wait_until_shed(server)
    yield server, held
    if not held.released:
        held.release()


def wait_until_shed(server: Server) -> None:
    """The held request reaches the application a moment after it is sent: poll a cheap
    sheddable request until it is refused (bounded, so a bug fails the test)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if httpx.post(server.base_url + "/v1/token").status_code == 503:
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing was shed:\n{server.logs()}")


def shed_count(server: Server) -> float:
    text = httpx.get(server.base_url + "/metrics").text
    return next(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "authd_requests_shed_total"
    )


def test_past_the_bound_a_request_is_answered_503_with_retry_after(
    full_server: tuple[Server, HeldRequest],
) -> None:
    """With the one slot taken, POST /v1/token gets a problem+json 503 carrying Retry-After."""
    server, _ = full_server
    response = httpx.post(server.base_url + "/v1/token", headers={"X-API-Key": "ak_live_x"})
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 503


def test_a_shed_oauth_request_gets_an_rfc6749_error(
    full_server: tuple[Server, HeldRequest],
) -> None:
    """POST /oauth/token past the bound answers RFC 6749 temporarily_unavailable."""
    server, _ = full_server
    response = httpx.post(server.base_url + "/oauth/token",
                          data={"grant_type": "client_credentials"}, auth=("a", "b"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"] == "temporarily_unavailable"


@pytest.mark.parametrize("path", [
    "/.well-known/jwks.json", "/.well-known/oauth-authorization-server",
    "/healthz", "/readyz", "/metrics",
])
def test_jwks_health_and_metrics_are_never_shed(
    full_server: tuple[Server, HeldRequest], path: str
) -> None:
    """While the worker is full, the JWKS, the metadata that points verifiers to it,
    liveness, readiness and metrics still answer 200."""
    server, _ = full_server
    assert httpx.get(server.base_url + path).status_code == 200


def test_sheds_are_counted(full_server: tuple[Server, HeldRequest]) -> None:
    """Each shed request adds one to authd_requests_shed_total."""
    server, _ = full_server
    before = shed_count(server)
    httpx.post(server.base_url + "/v1/token")
    httpx.post(server.base_url + "/v1/token")
    assert shed_count(server) == before + 2


def test_the_held_request_is_answered_and_the_slot_freed(
    full_server: tuple[Server, HeldRequest],
) -> None:
    """The admitted request completes normally, after which new requests are served again."""
    server, held = full_server
    assert held.release() == 401  # its made-up client is refused, not shed
    assert httpx.post(server.base_url + "/v1/token").status_code != 503
