"""The API-key exchange end to end: real server processes on PostgreSQL + Redis, the
real CLI, tokens verified with PyJWT against the published JWKS."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from tests.apikeys.support import audit_rows, bootstrap, key_rows
from tests.support.forwarder import Forwarder
from tests.support.servers import Server

pytestmark = [
    pytest.mark.e2e,
    # tests/support/servers.py leaves each server's log file open (reported to the lead).
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

StartServer = Callable[..., Server]


def _cli_json(server: Server, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(server.cli(["--json", *args]).stdout)
    return result


def _client_and_key(server: Server, *key_args: str, ttl: str = "10m") -> tuple[str, str, str]:
    client = _cli_json(server, "clients", "create", f"svc-{time.time_ns()}",
                       "--scope", "read:things write:things",
                       "--audience", "https://api.example.test other-api", "--token-ttl", ttl)
    key = _cli_json(server, "apikeys", "create", "--client", client["id"], *key_args)
    return client["id"], key["id"], key["api_key"]


def _verify(server: Server, token: str, audience: str) -> dict[str, Any]:
    jwks = jwt.PyJWKSet.from_dict(
        httpx.get(server.base_url + "/.well-known/jwks.json", timeout=5).json()
    )
    header = jwt.get_unverified_header(token)
    claims: dict[str, Any] = jwt.decode(
        token, jwks[header["kid"]].key, algorithms=["RS256"], audience=audience,
        issuer=httpx.get(server.base_url + "/.well-known/oauth-authorization-server",
                         timeout=5).json()["issuer"],
    )
    assert header["typ"] == "at+jwt"
    return claims


def _v1(server: Server, key: str, **kw: Any) -> httpx.Response:
    return httpx.post(server.base_url + "/v1/token", headers={"X-API-Key": key}, timeout=10,
                      **kw)


def test_cli_key_exchanged_at_v1_token_verifies_against_the_jwks(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """A key made with the CLI gets a token at /v1/token with the right claims."""
    server = start_server({**server_env, "AUTHD_ISSUER": "http://authd.test",
                           "AUTHD_ALLOW_HTTP_ISSUER": "true"})
    server.wait_ready()
    client_id, _, key = _client_and_key(server, "--scope", "read:things")
    response = _v1(server, key)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert body["scope"] == "read:things"
    claims = _verify(server, body["access_token"], "https://api.example.test")
    assert claims["iss"] == "http://authd.test"
    assert claims["client_id"] == client_id and claims["sub"] == client_id
    assert claims["scope"] == "read:things"
    assert claims["exp"] - claims["iat"] == 600
    assert key not in server.logs()


def test_client_credentials_basic_and_post_both_issue_tokens(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """/oauth/token accepts client_secret_basic and client_secret_post, narrowing scope
    and honouring an allowed audience."""
    server = start_server(server_env)
    server.wait_ready()
    client_id, _, key = _client_and_key(server)
    url = server.base_url + "/oauth/token"
    basic = httpx.post(url, auth=(client_id, key), timeout=10,
                       data={"grant_type": "client_credentials", "scope": "write:things"})
    post = httpx.post(url, timeout=10, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": key,
        "audience": "other-api",
    })
    assert basic.status_code == 200 and post.status_code == 200, (basic.text, post.text)
    assert basic.headers["pragma"] == "no-cache"
    basic_claims = _verify(server, basic.json()["access_token"], "https://api.example.test")
    post_claims = _verify(server, post.json()["access_token"], "other-api")
    assert basic_claims["scope"] == "write:things"
    assert post_claims["scope"] == "read:things write:things"
    assert basic_claims["jti"] != post_claims["jti"]
    assert key not in server.logs()


def test_revoke_on_one_server_is_refused_by_the_other_within_a_second(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """Revoking through replica A makes replica B refuse the key within 1 s, although
    B's cache would keep it for a minute."""
    env = {**server_env, "AUTHD_API_KEY_CACHE_TTL": "60s"}
    first, second = start_server(env), start_server(env)
    second.wait_ready()
    admin = bootstrap(first)
    client = admin.client("svc", "read")
    key = admin.key(client["id"])
    assert _v1(second, key["api_key"]).status_code == 200  # now cached on B
    admin.call("POST", f"/admin/apikeys/{key['id']}/revoke")
    deadline = time.monotonic() + 1.0
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = _v1(second, key["api_key"]).status_code
    assert status == 401


def test_disabling_a_client_stops_its_keys_on_another_replica(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """Disabling a client with the CLI makes a replica with a warm cache refuse its key."""
    env = {**server_env, "AUTHD_API_KEY_CACHE_TTL": "60s"}
    server = start_server(env)
    server.wait_ready()
    client_id, _, key = _client_and_key(server)
    assert _v1(server, key).status_code == 200
    _cli_json(server, "clients", "disable", client_id)
    deadline = time.monotonic() + 1.0
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = _v1(server, key).status_code
    assert status == 401


async def test_last_use_and_audit_are_flushed_on_a_clean_stop(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """Exchanges right before SIGTERM still land as last-use time and audit counts."""
    server = start_server(server_env)
    server.wait_ready()
    _, key_id, key = _client_and_key(server)
    for _ in range(5):
        assert _v1(server, key).status_code == 200
    server.stop()  # SIGTERM: uvicorn's graceful shutdown, then the lifespan closers
    rows = {r["id"]: r for r in await key_rows(server_env["AUTHD_DATABASE_URL"])}
    assert rows[key_id]["last_used_at"] is not None
    events = await audit_rows(server_env["AUTHD_DATABASE_URL"], "apikey.exchange")
    counted = sum(json.loads(e["details"])["count"] for e in events
                  if e["subject"] == key_id and e["outcome"] == "ok")
    assert counted == 5


def test_key_rate_limit_answers_429_with_retry_after(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """A key limited to 2/m gets 429 with Retry-After on its third exchange."""
    server = start_server(server_env)
    server.wait_ready()
    _, _, key = _client_and_key(server, "--rate-limit", "2/m")
    assert [_v1(server, key).status_code for _ in range(2)] == [200, 200]
    limited = _v1(server, key)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["error"] == "rate_limited"


def test_failed_attempts_from_one_address_are_limited(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """After the allowed number of failures a failing key from that address gets 429
    with Retry-After, while a good key from it is still served."""
    server = start_server({**server_env, "AUTHD_FAILED_API_KEY_RATE": "3/m"})
    server.wait_ready()
    _, _, key = _client_and_key(server)
    bad = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert [_v1(server, bad).status_code for _ in range(3)] == [401, 401, 401]
    limited = _v1(server, bad)
    assert limited.status_code == 429
    assert "retry-after" in limited.headers
    assert _v1(server, key).status_code == 200


def test_rotation_keeps_the_old_key_during_the_overlap(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """After rotate --overlap 1h both the old and the new key exchange."""
    server = start_server(server_env)
    server.wait_ready()
    _, key_id, key = _client_and_key(server)
    rotated = _cli_json(server, "apikeys", "rotate", key_id, "--overlap", "1h")
    assert rotated["replaces"] == key_id
    assert rotated["previous"]["expires_at"] is not None
    assert _v1(server, key).status_code == 200
    assert _v1(server, rotated["api_key"]).status_code == 200
    listed = _cli_json(server, "apikeys", "list", "--client", rotated["client_id"])
    assert all("api_key" not in k for k in listed["keys"])
    assert {k["id"] for k in listed["keys"]} == {key_id, rotated["id"]}


def test_admin_api_needs_the_admin_scope(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """A key without authd:admin gets 403 at /admin/clients; no credential gets 401."""
    server = start_server(server_env)
    server.wait_ready()
    _, _, key = _client_and_key(server)
    url = server.base_url + "/admin/clients"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"X-API-Key": key}, timeout=10).status_code == 403


def test_redis_outage_falls_back_to_local_limits(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """With Redis cut mid-flight the exchange keeps working and the fallback is counted."""
    forwarder = Forwarder.for_url(server_env["AUTHD_REDIS_URL"]).start()
    try:
        env = {**server_env,
               "AUTHD_REDIS_URL": forwarder.url_through(server_env["AUTHD_REDIS_URL"])}
        server = start_server(env)
        server.wait_ready()
        # A small limit makes every hit consult Redis (see service/ratelimit.py).
        _, _, key = _client_and_key(server, "--rate-limit", "5/m")
        assert _v1(server, key).status_code == 200
        forwarder.stop()
        assert [_v1(server, key).status_code for _ in range(3)] == [200, 200, 200]
        metrics = httpx.get(server.base_url + "/metrics", timeout=10).text
        fallback = [line for line in metrics.splitlines()
                    if line.startswith("authd_rate_limit_fallback_total")]
        assert fallback and float(fallback[0].split()[-1]) >= 1
    finally:
        forwarder.close()
