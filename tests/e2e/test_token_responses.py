"""Every answer that carries a token is ``Cache-Control: no-store`` (RFC 6749 §5.1),
whichever endpoint and grant issued it — one check across the domains."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.apikeys.support import bootstrap
from tests.sessions.helpers import PASSWORD, create_user
from tests.support.servers import Server

pytestmark = pytest.mark.e2e


def test_every_token_response_is_no_store(
    start_server: Callable[..., Server], server_env: dict[str, str]
) -> None:
    """API-key exchange (both endpoints), login and refresh all forbid caching."""
    server = start_server(server_env)
    admin = bootstrap(server)
    client = admin.client("no-store-check", "read:things")
    key = admin.key(client["id"])["api_key"]
    create_user(server, "cache@example.com")
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        answers = {
            "/v1/token": http.post("/v1/token", headers={"X-API-Key": key}),
            "/oauth/token client_credentials": http.post(
                "/oauth/token", data={"grant_type": "client_credentials"},
                auth=(client["id"], key)),
            "/v1/login": http.post("/v1/login", json={"email": "cache@example.com",
                                                      "password": PASSWORD}),
        }
        refresh_token = answers["/v1/login"].json()["refresh_token"]
        answers["/v1/refresh"] = http.post("/v1/refresh", json={"refresh_token": refresh_token})
        answers["/oauth/token refresh_token"] = http.post(
            "/oauth/token", data={"grant_type": "refresh_token",
                                  "refresh_token": answers["/v1/refresh"].json()["refresh_token"]})
    for name, response in answers.items():
        assert response.status_code == 200, (name, response.text)
        assert "access_token" in response.json(), name
        assert response.headers["cache-control"] == "no-store", name
        assert response.headers["pragma"] == "no-cache", name
