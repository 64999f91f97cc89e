"""The real server's log: JSON lines, request ids, access lines, and no secret.

The secrets sent here have the exact shapes the service issues: an API key
(``ak_live_`` + 30 base62), a refresh token (``rt_`` + 43 base64url), an RS256 JWT
and a password; they travel in headers, query strings, form and JSON bodies, to
paths that exist and paths that do not.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.servers import Server

pytestmark = pytest.mark.e2e

StartServer = Callable[..., Server]
BASE62 = string.ascii_letters + string.digits


def api_key() -> str:
    return "ak_live_" + "".join(secrets.choice(BASE62) for _ in range(30))


def refresh_token() -> str:
    return "rt_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def jwt() -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    signature = base64.urlsafe_b64encode(secrets.token_bytes(256)).decode().rstrip("=")
    return f"{part({'alg': 'RS256', 'typ': 'at+jwt'})}.{part({'sub': 'alice'})}.{signature}"


def log_records(server: Server) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.logs().splitlines() if line.strip()]


def access_lines(server: Server, request_id: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in log_records(server)
                 if r.get("event") == "request" and r.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.mark.parametrize("workers", [1, 2])
def test_every_log_line_is_json(
    start_server: StartServer, embedded_env: dict[str, str], workers: int
) -> None:
    """With AUTHD_LOG_FORMAT=json, uvicorn's lines and ours are all JSON objects,
    from the supervisor and from every worker."""
    # Per-process limits accepted with 2 workers: this test is about the log lines.
    server = start_server({**embedded_env, "AUTHD_LOG_FORMAT": "json",
                           "AUTHD_PER_PROCESS_LIMITS": "true"}, workers=workers)
    httpx.get(server.base_url + "/nowhere")
    server.stop()
    lines = [line for line in server.logs().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line


def test_one_access_line_per_request_with_template_status_and_duration(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """Each request leaves exactly one access line naming route, status and duration."""
    server = start_server(embedded_env)
    response = httpx.get(server.base_url + "/healthz", headers={"X-Request-ID": "req-one-1"})
    assert response.headers["x-request-id"] == "req-one-1"
    [line] = access_lines(server, "req-one-1")
    assert line["route"] == "/healthz"
    assert line["method"] == "GET"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], int | float)


def test_an_unmatched_path_is_logged_without_the_raw_path(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """A 404 access line carries the bounded route label, not what the client typed."""
    server = start_server(embedded_env)
    httpx.get(server.base_url + "/users/alice@example.com/raw",
              headers={"X-Request-ID": "req-404"})
    [line] = access_lines(server, "req-404")
    assert line["status"] == 404
    assert "alice@example.com" not in server.logs()


def test_each_request_gets_its_own_request_id(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """Without an incoming X-Request-ID, each response and access line has a fresh one."""
    server = start_server(embedded_env)
    ids = {httpx.get(server.base_url + "/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3
    for request_id in ids:
        assert len(access_lines(server, request_id)) == 1


def test_no_secret_reaches_the_log(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """Passwords, API keys, bearer JWTs and refresh tokens never appear in any log line."""
    server = start_server({**embedded_env, "AUTHD_LOG_LEVEL": "debug"})
    password, key, token, refresh = "Tr0ub4dor&3-horse-" + secrets.token_hex(8), api_key(), \
        jwt(), refresh_token()
    base = server.base_url
    with httpx.Client(base_url=base) as http:
        http.post("/v1/login", json={"email": "a@example.com", "password": password})
        http.post("/v1/token", headers={"X-API-Key": key})
        http.post("/v1/token", headers={"Authorization": f"ApiKey {key}"})
        http.post("/oauth/token", data={"grant_type": "client_credentials",
                                        "client_id": "c1", "client_secret": key})
        http.post("/oauth/token", data={"grant_type": "refresh_token",
                                        "refresh_token": refresh})
        http.post("/oauth/token", data={"grant_type": "password", "username": "a",
                                        "password": password})
        http.post("/v1/refresh", json={"refresh_token": refresh},
                  headers={"Cookie": f"authd_refresh={refresh}"})
        http.post("/oauth/revoke", data={"token": token})
        http.post("/oauth/introspect", data={"token": refresh},
                  headers={"Authorization": f"Bearer {token}"})
        http.get("/admin/clients", headers={"Authorization": f"Bearer {token}"})
        http.get(f"/readyz?password={password}&api_key={key}&refresh_token={refresh}")
        http.get(f"/nowhere/{key}/{refresh}", headers={"Authorization": f"Bearer {token}"})
        http.get("/healthz", headers={"X-Request-ID": key})
        http.post("/healthz", content=f"password={password}&token={token}")
        http.post("/v1/login", content=f'{{"password": "{password}", "x": '.encode(),
                  headers={"Content-Type": "application/json"})
    server.stop()
    logs = server.logs()
    assert "request" in logs
    for secret in (password, key, token, refresh, token.split(".")[2]):
        assert secret not in logs
