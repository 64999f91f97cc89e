"""``POST /v1/refresh`` answers odd requests exactly as the plain view did: the fast
ASGI path only takes the common JSON body and hands everything else over."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.sessions.helpers import create_user, login
from tests.support.servers import Server


def test_odd_refresh_requests_get_clear_problem_answers_and_change_nothing(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Extra members, a non-string token, another media type, a JSON array, broken
    JSON or no token at all each get a 4xx problem+json, and the token still works."""
    server = start_server(server_env)
    create_user(server, "odd@example.com")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        token = login(client, "odd@example.com")["refresh_token"]
        json_type = {"Content-Type": "application/json"}
        cases: list[tuple[dict[str, object], int]] = [
            ({"json": {"refresh_token": token, "extra": 1}}, 400),
            ({"json": {"refresh_token": 42}}, 400),
            ({"json": [token]}, 400),
            ({"content": b'{"refresh_token": "', "headers": json_type}, 400),
            ({"content": b"[" * 20_000, "headers": json_type}, 400),
            ({"data": {"refresh_token": token}}, 415),
            ({}, 400),
        ]
        for kwargs, status in cases:
            response = client.post("/v1/refresh", **kwargs)  # type: ignore[arg-type]
            assert response.status_code == status, (kwargs, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
        refreshed = client.post("/v1/refresh", json={"refresh_token": token})
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.headers["cache-control"] == "no-store"
        assert refreshed.json()["refresh_token"] != token
