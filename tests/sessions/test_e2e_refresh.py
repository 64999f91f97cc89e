"""Refresh rotation against a real server on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from tests.sessions.helpers import api_key_with_scope, create_user, fetchval, introspect, login
from tests.support.servers import Server

GRACE = 2.0


async def test_concurrent_refreshes_share_one_successor_and_late_reuse_revokes_the_family(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """50 concurrent uses of one token yield at most one successor, every success is
    that successor, and a use of the original after the grace window revokes the
    family so that its access tokens fail introspection."""
    server = start_server({**server_env, "AUTHD_REFRESH_REUSE_GRACE": f"{int(GRACE)}s"})
    create_user(server, "race@example.com")
    key = api_key_with_scope(server, "introspector", "authd:introspect")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        original = login(client, "race@example.com")["refresh_token"]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30,
                                 limits=httpx.Limits(max_connections=50)) as aclient:
        responses = await asyncio.gather(*(
            aclient.post("/v1/refresh", json={"refresh_token": original}) for _ in range(50)
        ))
    ok = [r.json() for r in responses if r.status_code == 200]
    assert ok, [r.text for r in responses]
    assert all(r.status_code in (200, 400) for r in responses)
    assert len({body["refresh_token"] for body in ok}) == 1
    successor = ok[0]["refresh_token"]
    sid = await fetchval(server, "SELECT family_id FROM refresh_tokens WHERE generation = 1")
    assert await fetchval(server, "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = $1",
                          sid) == 2

    await asyncio.sleep(GRACE + 0.5)
    _reuse_after_grace(server, key, original, successor, [b["access_token"] for b in ok[:5]])
    assert await fetchval(server, "SELECT COUNT(*) FROM audit_events"
                          " WHERE action = 'refresh.reuse_detected'") == 1
    assert await fetchval(server, "SELECT revoke_reason FROM refresh_families WHERE id = $1",
                          sid) == "reuse"


def _reuse_after_grace(server: Server, key: str, original: str, successor: str,
                      access_tokens: list[str]) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        reuse = client.post("/v1/refresh", json={"refresh_token": original})
        assert reuse.status_code == 400
        assert reuse.json()["type"].endswith("invalid_grant")
        assert client.post("/v1/refresh", json={"refresh_token": successor}).status_code == 400
        for token in access_tokens:
            assert introspect(client, key, token) == {"active": False}


def test_rotation_spends_the_token_and_the_successor_works(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Each refresh returns a new refresh token, which refreshes again, on both the
    JSON endpoint and the OAuth refresh_token grant."""
    server = start_server(server_env)
    create_user(server, "rot@example.com")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        first = login(client, "rot@example.com")
        second = client.post("/v1/refresh", json={"refresh_token": first["refresh_token"]})
        assert second.status_code == 200
        assert second.headers["cache-control"] == "no-store"
        third = client.post("/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": second.json()["refresh_token"]})
        assert third.status_code == 200, third.text
        body = third.json()
        assert body["token_type"] == "Bearer"
        assert body["refresh_token"] not in (first["refresh_token"],
                                             second.json()["refresh_token"])


def test_logout_revokes_the_session_and_its_access_tokens(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """After logout the refresh token is refused and the access token is inactive."""
    server = start_server(server_env)
    create_user(server, "out@example.com")
    key = api_key_with_scope(server, "introspector", "authd:introspect")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        tokens = login(client, "out@example.com")
        assert introspect(client, key, tokens["access_token"])["active"] is True
        out = client.post("/v1/logout", json={"refresh_token": tokens["refresh_token"]})
        assert out.status_code == 204
        assert introspect(client, key, tokens["access_token"]) == {"active": False}
        assert introspect(client, key, tokens["refresh_token"]) == {"active": False}
        again = client.post("/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert again.status_code == 400


def test_cookie_mode_keeps_the_refresh_token_out_of_the_body(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """With AUTHD_REFRESH_COOKIE the refresh token travels only in a Secure, HttpOnly,
    SameSite=Strict cookie scoped to /v1/refresh, and refreshing from it works."""
    server = start_server({**server_env, "AUTHD_REFRESH_COOKIE": "true"})
    create_user(server, "cookie@example.com")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        response = client.post("/v1/login", json={"email": "cookie@example.com",
                                                  "password": "correct horse battery staple"})
        assert response.status_code == 200
        assert "refresh_token" not in response.json()
        header = response.headers["set-cookie"].lower()
        for part in ("httponly", "secure", "samesite=strict", "path=/v1/refresh"):
            assert part in header
        cookie = response.cookies["authd_refresh"]
        # The cookie is Secure, so httpx on plain-http loopback would not send it by
        # itself: the test sends it as a browser would, with the page's Origin and a
        # JSON body (the CSRF rule; tests/sessions/test_e2e_cookie_csrf.py).
        refreshed = client.post("/v1/refresh", json={}, headers={
            "Cookie": f"authd_refresh={cookie}", "Origin": server.base_url})
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.cookies["authd_refresh"] != cookie


def test_a_too_wide_scope_is_refused_without_spending_the_refresh_token(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """``grant_type=refresh_token`` with a scope the session was not granted answers
    400 invalid_scope and leaves the token as it was: with no grace window, the same
    token still refreshes afterwards (and is not taken for reuse)."""
    server = start_server({**server_env, "AUTHD_REFRESH_REUSE_GRACE": "0s"})
    create_user(server, "scope@example.com")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        token = login(client, "scope@example.com")["refresh_token"]
        wide = client.post("/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": token, "scope": "authd:admin"})
        assert wide.status_code == 400, wide.text
        assert wide.json()["error"] == "invalid_scope"
        again = client.post("/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": token})
        assert again.status_code == 200, again.text
        assert again.json()["refresh_token"] != token


def test_logout_by_bearer_access_token_revokes_its_session(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """``POST /v1/logout`` with the session's access token as Bearer revokes the
    session named by its ``sid``; a revoked or forged Bearer token is 401."""
    server = start_server(server_env)
    create_user(server, "bearer-out@example.com")
    key = api_key_with_scope(server, "introspector", "authd:introspect")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        tokens = login(client, "bearer-out@example.com")
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        out = client.post("/v1/logout", headers=bearer)
        assert out.status_code == 204, out.text
        assert introspect(client, key, tokens["access_token"]) == {"active": False}
        assert introspect(client, key, tokens["refresh_token"]) == {"active": False}
        refused = client.post("/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refused.status_code == 400
        assert client.post("/v1/logout", headers=bearer).status_code == 401
        forged = client.post("/v1/logout", headers={"Authorization": "Bearer not.a.jwt"})
        assert forged.status_code == 401
