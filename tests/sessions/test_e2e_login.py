"""Password login against a real server: no enumeration, lockout, clear errors."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable

import httpx

from tests.sessions.helpers import PASSWORD, create_user, fetchval, login
from tests.support.servers import Server

NO_LIMITS = {"AUTHD_LOGIN_MAX_FAILURES": "1000", "AUTHD_FAILED_LOGIN_RATE": "100000/m"}


def test_unknown_email_and_wrong_password_cost_the_same_and_answer_the_same(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Median time of 50 unknown-email and 50 wrong-password logins differ by < 10 %,
    and the two answers are byte-identical."""
    server = start_server({**server_env, **NO_LIMITS})
    create_user(server, "known@example.com")
    timings: dict[str, list[float]] = {"unknown": [], "wrong": []}
    bodies: dict[str, set[str]] = {"unknown": set(), "wrong": set()}
    emails = {"unknown": "nobody@example.com", "wrong": "known@example.com"}
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        for kind in ("unknown", "wrong"):  # warm-up
            client.post("/v1/login", json={"email": emails[kind], "password": "nope-nope"})
        for _ in range(50):
            for kind in ("unknown", "wrong"):  # interleaved, so drift hits both alike
                started = time.perf_counter()
                response = client.post("/v1/login",
                                       json={"email": emails[kind], "password": "nope-nope"})
                timings[kind].append(time.perf_counter() - started)
                assert response.status_code == 401
                bodies[kind].add(response.text)
    unknown, wrong = statistics.median(timings["unknown"]), statistics.median(timings["wrong"])
    assert abs(unknown - wrong) / max(unknown, wrong) < 0.10, (unknown, wrong)
    assert bodies["unknown"] == bodies["wrong"] and len(bodies["wrong"]) == 1


def test_lockout_answers_like_a_wrong_password_and_the_operator_sees_it(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """After the configured failures even the right password is refused with the same
    answer; the CLI shows the lock and ``users unlock`` lifts it."""
    server = start_server({**server_env, "AUTHD_LOGIN_MAX_FAILURES": "3",
                           "AUTHD_FAILED_LOGIN_RATE": "1000/m"})
    created = create_user(server, "lock@example.com")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        wrong = [client.post("/v1/login", json={"email": "lock@example.com",
                                                "password": "wrong-password"})
                 for _ in range(3)]
        locked = client.post("/v1/login", json={"email": "lock@example.com",
                                                "password": PASSWORD})
        assert locked.status_code == 401 and locked.text == wrong[0].text
        shown = json.loads(server.cli(["--json", "users", "show", created["id"]]).stdout)
        assert shown["status"] == "locked"
        server.cli(["--json", "users", "unlock", "lock@example.com"])
        assert login(client, "lock@example.com")["access_token"]


def test_failed_logins_from_one_ip_are_rate_limited(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Past AUTHD_FAILED_LOGIN_RATE failures an IP gets 429 with Retry-After."""
    server = start_server({**server_env, "AUTHD_FAILED_LOGIN_RATE": "5/m",
                           "AUTHD_LOGIN_MAX_FAILURES": "1000"})
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        statuses = [client.post("/v1/login", json={"email": f"u{n}@example.com",
                                                   "password": "whatever1"}).status_code
                    for n in range(7)]
        last = client.post("/v1/login", json={"email": "x@example.com", "password": "abcdefgh"})
    assert statuses[:5] == [401] * 5
    assert last.status_code == 429 and int(last.headers["retry-after"]) >= 1


def test_bad_login_input_gets_a_clear_client_error(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Malformed logins are 4xx problems naming the problem, never 500."""
    server = start_server(server_env)
    cases: list[tuple[dict[str, object], int, str]] = [
        ({"content": b"email=a", "headers": {"content-type": "text/plain"}}, 415, ""),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, "JSON"),
        ({"json": ["a"]}, 400, "object"),
        ({"json": {"email": "a@example.com"}}, 400, "required"),
        ({"json": {"email": 5, "password": "abcdefghij"}}, 400, "string"),
        ({"json": {"email": "not-an-email", "password": "abcdefghij"}}, 400, "email"),
        ({"json": {"email": "a@example.com", "password": "x" * 1025}}, 400, "1024 bytes"),
        ({"json": {"email": "a@example.com", "password": "abcdefghij", "extra": 1}}, 400,
         "extra"),
        ({"content": b'{"email": "a@example.com", "password": "ab\\ud800cd"}',
          "headers": {"content-type": "application/json"}}, 400, "surrogate"),
    ]
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        for kwargs, status, words in cases:
            response = client.post("/v1/login", **kwargs)  # type: ignore[arg-type]
            assert response.status_code == status, (kwargs, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert words in response.json()["detail"]
        garbage = client.post("/v1/refresh", json={"refresh_token": "rt_short"})
        assert garbage.status_code == 400 and garbage.json()["type"].endswith("invalid_grant")
        missing = client.post("/v1/refresh", json={})
        assert missing.status_code == 400 and "refresh_token" in missing.json()["detail"]
        grant = client.post("/oauth/token", data={"grant_type": "refresh_token"})
        assert grant.status_code == 400 and grant.json()["error"] == "invalid_request"


def test_no_password_or_token_reaches_logs_or_audit(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """After logins, refreshes, reuse and logout, no password, refresh or access
    token appears in the server's log or the audit table."""
    server = start_server(server_env)
    create_user(server, "quiet@example.com")
    secrets: list[str] = [PASSWORD, "Wrong-Password-123"]
    with httpx.Client(base_url=server.base_url, timeout=30,
                      headers={"user-agent": "test-agent/1.0"}) as client:
        client.post("/v1/login", json={"email": "quiet@example.com",
                                       "password": "Wrong-Password-123"})
        first = login(client, "quiet@example.com")
        second = client.post("/v1/refresh", json={"refresh_token": first["refresh_token"]}).json()
        time.sleep(0.1)
        client.post("/oauth/token", data={"grant_type": "refresh_token",
                                          "refresh_token": second["refresh_token"]})
        client.post("/v1/refresh", json={"refresh_token": first["refresh_token"]})
        client.post("/v1/logout", json={"refresh_token": second["refresh_token"]})
        secrets += [first["refresh_token"], first["access_token"], second["refresh_token"],
                    second["access_token"]]
    server.stop()  # a clean stop flushes the audit buffer
    audit = asyncio.run(fetchval(
        server, "SELECT string_agg(details || ' ' || COALESCE(ip, ''), ' ') FROM audit_events"
    ))
    assert "test-agent/1.0" in audit
    logs = server.logs()
    for secret in secrets:
        assert secret not in logs
        assert secret not in audit
