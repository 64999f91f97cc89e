"""Revocation, the feed and introspection against a real server (PostgreSQL + Redis)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx

from tests.sessions.helpers import (
    admin_key,
    api_key_with_scope,
    create_user,
    introspect,
    login,
)
from tests.support.databases import REDIS_URL
from tests.support.forwarder import Forwarder
from tests.support.servers import Server


def test_subject_revocation_covers_earlier_tokens_and_is_in_the_feed(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Tokens issued before ``authd revoke subject`` are inactive and listed in the feed;
    a token issued after it is active."""
    server = start_server(server_env)
    user = create_user(server, "leaver@example.com")
    key = api_key_with_scope(server, "introspector", "authd:introspect")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        cursor = client.get("/v1/revocations").json()["cursor"]
        before = login(client, "leaver@example.com")
        revoked = json.loads(server.cli(["--json", "revoke", "subject", user["id"]]).stdout)
        assert introspect(client, key, before["access_token"]) == {"active": False}
        assert introspect(client, key, before["refresh_token"]) == {"active": False}
        feed = client.get("/v1/revocations", params={"since": cursor})
        assert feed.headers["cache-control"].startswith("public, max-age=")
        entries = feed.json()["entries"]
        assert {"kind": "sub", "value": user["id"], "not_before": revoked["not_before"],
                "expires_at": revoked["expires_at"]} in entries
        time.sleep(max(0.0, revoked["not_before"] - time.time()) + 0.05)
        after = login(client, "leaver@example.com")
        assert introspect(client, key, after["access_token"])["active"] is True


def test_rfc7009_revocation_of_an_access_token_and_of_unknown_tokens(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """/oauth/revoke answers 200 for anything; a revoked access token is inactive and
    its jti is in the feed, while its session's refresh token still works."""
    server = start_server(server_env)
    create_user(server, "rev@example.com")
    key = api_key_with_scope(server, "introspector", "authd:introspect")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        tokens = login(client, "rev@example.com")
        for junk in ("junk", "rt_" + "A" * 43, "eyJ.x.y"):
            assert client.post("/oauth/revoke", data={"token": junk}).status_code == 200
        response = client.post("/oauth/revoke", data={"token": tokens["access_token"],
                                                      "token_type_hint": "access_token"})
        assert response.status_code == 200
        assert introspect(client, key, tokens["access_token"]) == {"active": False}
        jti = [e for e in client.get("/v1/revocations").json()["entries"] if e["kind"] == "jti"]
        assert len(jti) == 1
        assert client.post("/v1/refresh",
                           json={"refresh_token": tokens["refresh_token"]}).status_code == 200


def test_introspection_needs_the_scope_and_rejects_bad_input(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Without credentials 401, without authd:introspect 403, bad parameters 400,
    malformed or foreign tokens inactive."""
    server = start_server(server_env)
    other = api_key_with_scope(server, "other", "something:else")
    key = api_key_with_scope(server, "introspector", "authd:introspect")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        assert client.post("/oauth/introspect", data={"token": "x"}).status_code == 401
        assert client.post("/oauth/introspect", data={"token": "x"},
                           headers={"X-API-Key": other}).status_code == 403
        no_token = client.post("/oauth/introspect", data={}, headers={"X-API-Key": key})
        assert no_token.status_code == 400 and no_token.json()["error"] == "invalid_request"
        foreign = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0."
                   "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
        for token in ("garbage", foreign, "rt_" + "B" * 43):
            assert introspect(client, key, token) == {"active": False}
        assert client.get("/v1/revocations", params={"since": "abc"}).status_code == 400


def test_admin_disables_a_user_and_everything_of_theirs_is_revoked(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """POST /admin/users creates, /disable revokes the user's sessions and tokens and
    refuses further logins; the admin API needs authd:admin."""
    server = start_server(server_env)
    admin = {"X-API-Key": admin_key(server)}
    key = api_key_with_scope(server, "introspector", "authd:introspect")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        assert client.post("/admin/users", json={"email": "x@example.com",
                                                 "password": "long enough"}).status_code == 401
        created = client.post("/admin/users", headers=admin,
                              json={"email": "Emp@Example.COM", "password": "long enough pw"})
        assert created.status_code == 201, created.text
        assert created.json()["email"] == "emp@example.com"
        dup = client.post("/admin/users", headers=admin,
                          json={"email": "emp@example.com", "password": "long enough pw"})
        assert dup.status_code == 409
        weak = client.post("/admin/users", headers=admin,
                           json={"email": "w@example.com", "password": "short"})
        assert weak.status_code == 400
        tokens = login(client, "emp@example.com", "long enough pw")
        user_id = created.json()["id"]
        disabled = client.post(f"/admin/users/{user_id}/disable", headers=admin)
        assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
        assert introspect(client, key, tokens["access_token"]) == {"active": False}
        assert client.post("/v1/refresh",
                           json={"refresh_token": tokens["refresh_token"]}).status_code == 400
        assert client.post("/v1/login", json={"email": "emp@example.com",
                                              "password": "long enough pw"}).status_code == 401
        assert client.get("/admin/users/usr_missing", headers=admin).status_code == 404


def test_redis_outage_keeps_login_refresh_revoke_and_introspect_correct(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """With Redis cut, login, refresh, revoke and introspect keep answering correctly
    from PostgreSQL; once Redis is back, revocations made meanwhile still hold."""
    forwarder = Forwarder.for_url(REDIS_URL).start()
    try:
        env = {**server_env, "AUTHD_REDIS_URL": forwarder.url_through(REDIS_URL)}
        server = start_server(env)
        create_user(server, "outage@example.com")
        key = api_key_with_scope(server, "introspector", "authd:introspect")
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            early = login(client, "outage@example.com")
            assert introspect(client, key, early["access_token"])["active"] is True
            forwarder.stop()
            during = login(client, "outage@example.com")
            rotated = client.post("/v1/refresh", json={"refresh_token": during["refresh_token"]})
            assert rotated.status_code == 200, rotated.text
            assert client.post("/oauth/revoke",
                               data={"token": early["access_token"]}).status_code == 200
            assert introspect(client, key, early["access_token"]) == {"active": False}
            assert introspect(client, key, rotated.json()["access_token"])["active"] is True
            forwarder.start()
            time.sleep(1.5)  # the mirror loop notices and catches up
            assert introspect(client, key, early["access_token"]) == {"active": False}
            assert introspect(client, key, rotated.json()["access_token"])["active"] is True
            client.post("/oauth/revoke", data={"token": rotated.json()["access_token"]})
            assert introspect(client, key, rotated.json()["access_token"]) == {"active": False}
        assert "request.crashed" not in server.logs()
    finally:
        forwarder.close()


def test_oauth_revoke_client_authentication_reads_and_counts_like_the_token_endpoint(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Presented client credentials must be valid: good Basic is accepted, a bad one is
    401 with a Basic challenge (an API key header gets an ApiKey challenge), two
    differing keys are 400, and failures spend the address's API-key budget, after
    which a failing credential is 429 and the valid one is still served."""
    server = start_server({**server_env, "AUTHD_FAILED_API_KEY_RATE": "3/m"})
    created = json.loads(server.cli(["--json", "clients", "create", "app", "--scope",
                                     "read"]).stdout)
    key = json.loads(server.cli(["--json", "apikeys", "create", "--client",
                                 created["id"]]).stdout)["api_key"]
    wrong = key[:-8] + ("A" if key[-8] != "A" else "B") + key[-7:]
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        good = client.post("/oauth/revoke", data={"token": "junk"}, auth=(created["id"], key))
        assert good.status_code == 200, good.text
        differing = client.post("/oauth/revoke", data={"token": "junk"},
                                headers={"X-API-Key": key, "Authorization": f"ApiKey {wrong}"})
        assert differing.status_code == 400, differing.text
        bad = client.post("/oauth/revoke", data={"token": "junk"}, auth=(created["id"], wrong))
        assert bad.status_code == 401, bad.text
        assert bad.json()["error"] == "invalid_client"
        assert bad.headers["www-authenticate"].startswith("Basic ")
        bad_header = client.post("/oauth/revoke", data={"token": "junk"},
                                 headers={"X-API-Key": wrong})
        assert bad_header.status_code == 401, bad_header.text
        assert bad_header.headers["www-authenticate"].startswith("ApiKey ")
        assert client.post("/oauth/revoke", data={"token": "junk", "client_id": created["id"],
                                                  "client_secret": wrong}).status_code == 401
        over = client.post("/oauth/revoke", data={"token": "junk"}, auth=(created["id"], wrong))
        served = client.post("/oauth/revoke", data={"token": "junk"}, auth=(created["id"], key))
    assert over.status_code == 429, over.text
    assert served.status_code == 200, served.text
