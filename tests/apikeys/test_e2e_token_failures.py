"""The token endpoints' failures are logged and answered like every other error:
a ``request.failed`` line with the request id, and RFC 6749 JSON even when storage
fails (issue: the raw ASGI endpoints skipped the shared error path)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from service.apikeys import keyformat
from tests.support.forwarder import Forwarder
from tests.support.servers import Server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def _failed_lines(server: Server, request_id: str) -> list[dict[str, Any]]:
    """The ``request.failed`` lines of one request (the log is written asynchronously)."""
    deadline = time.monotonic() + 5
    while True:
        records = [json.loads(line) for line in server.logs().splitlines()
                   if line.startswith("{")]
        found = [r for r in records
                 if r.get("event") == "request.failed" and r.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_refused_refresh_on_oauth_token_is_logged_with_its_request_id(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """RefreshRejected carries an operator detail: it must reach the log."""
    server = start_server({**server_env, "AUTHD_LOG_FORMAT": "json"})
    response = httpx.post(server.base_url + "/oauth/token", timeout=30,
                          data={"grant_type": "refresh_token", "refresh_token": "rt_" + "A" * 43},
                          headers={"X-Request-ID": "req-refresh-refused"})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    [line] = _failed_lines(server, "req-refresh-refused")
    assert line["error"] == "invalid_grant"


def test_storage_down_on_v1_token_is_rfc6749_temporarily_unavailable_and_logged(
    server_env: dict[str, str], start_server: Callable[..., Server], pg_forwarder: Forwarder
) -> None:
    """A key lookup that cannot reach PostgreSQL is a 503 ``temporarily_unavailable``
    in the token endpoint's own format, counted and logged with the request id."""
    env = {**server_env, "AUTHD_LOG_FORMAT": "json",
           "AUTHD_DATABASE_URL": pg_forwarder.url_through(server_env["AUTHD_DATABASE_URL"])}
    server = start_server(env)
    pg_forwarder.stop()
    unknown = keyformat.generate("ak_live")  # well formed: a cache miss goes to storage
    response = httpx.post(server.base_url + "/v1/token", timeout=60,
                          headers={"X-API-Key": unknown, "X-Request-ID": "req-storage-down"})
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "temporarily_unavailable"
    assert response.headers["cache-control"] == "no-store"
    [line] = _failed_lines(server, "req-storage-down")
    assert line["error"] == "temporarily_unavailable"
    metrics = httpx.get(server.base_url + "/metrics", timeout=30).text
    assert ('authd_token_requests_failed_total{error="temporarily_unavailable",'
            'grant="api_key"}') in metrics
