"""The real server answers every bad request with a clear 4xx, never a 500."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import Server, free_port

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One embedded-default server for the module: these tests only read."""
    root = tmp_path_factory.mktemp("errors")
    env = {"AUTHD_DATA_DIR": str(root / "data"), "AUTHD_KEYS_DIR": str(root / "keys"),
           "AUTHD_MAX_BODY_BYTES": "4096"}
    started = Server(env=env, port=free_port(), log_path=root / "server.log").start()
    yield started
    started.stop()


def raw_request(server: Server, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes as they are; read one answer (or until the server closes)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head + body)
        answer = b""
        while not _complete(answer) and (chunk := sock.recv(65536)):
            answer += chunk
        return answer


def _complete(answer: bytes) -> bool:
    headers, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in headers.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def test_an_unknown_route_is_404_problem(server: Server) -> None:
    """A path no route knows is a 404 RFC 9457 problem."""
    response = httpx.get(server.base_url + "/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 404


def test_a_wrong_method_is_405_problem_with_allow(server: Server) -> None:
    """DELETE on /healthz is a 405 problem listing the allowed methods."""
    response = httpx.delete(server.base_url + "/healthz")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert "GET" in response.headers["allow"]


def test_a_declared_oversized_body_is_413_before_it_is_sent(server: Server) -> None:
    """A 10 MB Content-Length is refused at once; the server does not wait for it."""
    head = (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10000000\r\n\r\n")
    answer = raw_request(server, head, b"{")
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer
    assert b"application/problem+json" in rest
    assert b"connection: close" in rest.lower()


def test_the_server_keeps_serving_after_a_413(server: Server) -> None:
    """Refusing one huge body leaves the server answering everyone else."""
    raw_request(server, b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
    assert httpx.get(server.base_url + "/healthz").status_code == 200


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"GET /readyz?%zz=%%&a=\xff HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 404),
        (b"POST /oauth/nothing HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n{{{", 404),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: \xff\xfe\r\n\r\n", 200),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", 400),
        (b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n", 400),
    ],
    ids=["bad-percent-path", "bad-query", "long-path", "oauth-unknown", "bad-request-id",
         "bad-length", "odd-method", "tls-to-plain"],
)
def test_odd_input_is_never_a_500_nor_a_traceback(
    server: Server, head: bytes, status: int
) -> None:
    """Malformed or hostile requests get an answer with a definite non-5xx status —
    a closed connection without one would hide a crash — and no traceback."""
    answer = raw_request(server, head)
    assert answer, "the server closed the connection without answering"
    status_line = answer.partition(b"\r\n")[0]
    assert status_line.startswith(b"HTTP/1.1 %d " % status), answer[:300]
    assert b"Traceback" not in answer
    assert httpx.get(server.base_url + "/healthz").status_code == 200
