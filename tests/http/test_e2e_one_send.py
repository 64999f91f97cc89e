"""On the real server each response leaves in one system call, seen by strace.

``authd serve`` sends a response's head with its body (service/http/coalescing.py);
test_coalescing.py shows the transport doing so on a recording stand-in. Here strace
watches every socket write of a running server while a real client asks for tokens
and the JWKS on one keep-alive connection, and the connection's writes are read back
from strace's output by the client's address.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.apikeys.support import bootstrap
from tests.support.servers import Server
from tests.support.strace import Strace

pytestmark = pytest.mark.e2e


def client_address(response: httpx.Response) -> str:
    """The client's end of the connection the response came on, as strace prints it."""
    host, port = response.extensions["network_stream"].get_extra_info("client_addr")
    return f"{host}:{port}"


def wire_length(response: httpx.Response) -> int:
    """The bytes the server wrote for the response: status line, headers, blank line
    and the body as sent (before any content decoding)."""
    status = f"{response.http_version} {response.status_code} {response.reason_phrase}\r\n"
    headers = sum(len(name) + len(b": ") + len(value) + len(b"\r\n")
                  for name, value in response.headers.raw)
    return len(status) + headers + len(b"\r\n") + response.num_bytes_downloaded


def test_each_response_leaves_the_server_in_one_system_call(
    start_server: Callable[..., Server], server_env: dict[str, str], tmp_path: Path
) -> None:
    """Two token answers and a JWKS on one keep-alive connection are three sends of
    whole responses on its socket, and nothing else is written to it."""
    server = start_server(server_env)
    assert server.process is not None
    admin = bootstrap(server)
    client = admin.client("one-send", "read:things")
    key = admin.key(client["id"])["api_key"]
    with Strace(server.process.pid, tmp_path) as strace, \
            httpx.Client(base_url=server.base_url, timeout=10) as http:
        responses = [
            http.post("/v1/token", headers={"X-API-Key": key}),
            http.post("/oauth/token", data={"grant_type": "client_credentials"},
                      auth=(client["id"], key)),
            http.get("/.well-known/jwks.json"),
        ]
        addresses = {client_address(response) for response in responses}
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert len(addresses) == 1, f"not one keep-alive connection: {addresses}"
    (address,) = addresses

    sends = [send for send in strace.sends() if send.peer == address]
    assert len(sends) == len(responses), (
        "not one system call per response on the connection's socket:\n"
        + "\n".join(f"{send.syscall}({send.arguments}) = {send.result}" for send in sends)
    )
    assert all(send.starts_with("HTTP/1.1 200 OK\\r\\n") for send in sends)
    assert [send.result for send in sends] == [wire_length(r) for r in responses]
