"""RFC 8693 token exchange end to end: a real authd on PostgreSQL + Redis, clients
and users made with the real CLI and admin API, results checked with authd-verifier
against the published JWKS and the revocation feed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest
from authd_verifier import AsyncRevocationFeed, AsyncVerifier, TokenRevoked

from tests.support.service_to_service import (
    ACCESS_TOKEN_TYPE,
    authd,
    claims_of,
    exchange,
    introspect,
    metric,
    new_client,
)
from tests.verifier.e2e_support import PYTEST_MARKS, Authd

__all__ = ["authd"]
pytestmark = PYTEST_MARKS

SCOPES = "orders:read orders:write"
ISSUED = 'authd_token_exchanges_total{outcome="issued"}'


def upstream_token(authd: Authd) -> str:
    """A token carrying orders:read and orders:write, as service A would receive it."""
    client_id, key = new_client(authd, SCOPES)
    return authd.client_credentials(client_id, key)


def service_a(authd: Authd, *audiences: str) -> tuple[str, str]:
    options = [opt for aud in audiences for opt in ("--exchange-audience", aud)]
    return new_client(authd, SCOPES, *options)


async def verified(authd: Authd, token: str, audience: str) -> Any:
    async with AsyncVerifier.for_issuer(authd.issuer, audience,
                                        allow_insecure_http=True) as verifier:
        return await verifier.verify(token)


def refused_changes_nothing(authd: Authd, response: Any, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_exchange_narrows_scope_for_the_allowed_audience_and_records_the_actor(
    authd: Authd,
) -> None:
    """Service A trades a token for audience svc-b with a narrower scope; the result
    verifies for svc-b, keeps the subject, names A in act and the exp of the original."""
    subject = upstream_token(authd)
    caller = service_a(authd, "svc-b")
    response = exchange(authd, caller, subject, audience="svc-b", scope="orders:read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert body["token_type"] == "Bearer" and body["scope"] == "orders:read"
    claims = await verified(authd, body["access_token"], "svc-b")
    original = claims_of(subject)
    assert claims.subject == original["sub"]
    assert claims.actors == (caller[0],)
    assert claims.client_id == caller[0]
    assert claims.scopes == {"orders:read"}
    assert claims.expires_at <= original["exp"]


async def test_exchanged_user_token_carries_the_session(authd: Authd) -> None:
    """A user's access token exchanged by A keeps the user as sub and the login's sid."""
    authd.user(email := f"u{time.time_ns()}@example.test")
    login = authd.login(email)
    response = exchange(authd, service_a(authd, "svc-b"), login["access_token"],
                        audience="svc-b")
    assert response.status_code == 200, response.text
    claims = await verified(authd, response.json()["access_token"], "svc-b")
    assert claims.session_id == claims_of(login["access_token"])["sid"]
    assert claims.subject == claims_of(login["access_token"])["sub"]


async def test_exchanging_an_exchanged_token_nests_the_actors(authd: Authd) -> None:
    """B exchanging the token A obtained for it yields act {B, act {A}}."""
    caller_a = service_a(authd, "svc-b")
    caller_b = service_a(authd, "svc-c")
    first = exchange(authd, caller_a, upstream_token(authd), audience="svc-b").json()
    second = exchange(authd, caller_b, first["access_token"], resource="svc-c")
    assert second.status_code == 200, second.text
    claims = await verified(authd, second.json()["access_token"], "svc-c")
    assert claims.actors == (caller_b[0], caller_a[0])
    assert claims.raw["act"] == {"sub": caller_b[0], "act": {"sub": caller_a[0]}}


def test_a_wider_scope_is_invalid_scope_and_issues_nothing(authd: Authd) -> None:
    """Asking for a scope the subject token lacks is invalid_scope; no token is issued."""
    client_id, key = new_client(authd, SCOPES)
    narrow = authd.client_credentials(client_id, key, scope="orders:read")
    before = metric(authd, ISSUED)
    response = exchange(authd, service_a(authd, "svc-b"), narrow, audience="svc-b",
                        scope="orders:read orders:write")
    refused_changes_nothing(authd, response, 400, "invalid_scope")
    assert metric(authd, ISSUED) == before


def test_an_audience_outside_the_policy_is_invalid_target(authd: Authd) -> None:
    """An audience the caller may not exchange for is invalid_target."""
    response = exchange(authd, service_a(authd, "svc-b"), upstream_token(authd),
                        audience="svc-z")
    refused_changes_nothing(authd, response, 400, "invalid_target")


def test_a_client_without_exchange_policy_is_unauthorized_client(authd: Authd) -> None:
    """A client with no exchange audiences (the default) may not exchange at all."""
    response = exchange(authd, new_client(authd, SCOPES), upstream_token(authd),
                        audience="svc-b")
    refused_changes_nothing(authd, response, 400, "unauthorized_client")


def test_a_revoked_subject_token_is_invalid_grant(authd: Authd) -> None:
    """A subject token revoked at /oauth/revoke cannot be exchanged."""
    subject = upstream_token(authd)
    assert authd.http.post("/oauth/revoke", data={"token": subject}).status_code == 200
    response = exchange(authd, service_a(authd, "svc-b"), subject, audience="svc-b")
    refused_changes_nothing(authd, response, 400, "invalid_grant")


def test_a_forged_subject_token_is_invalid_grant(authd: Authd) -> None:
    """A subject token whose signature does not verify is invalid_grant."""
    head, payload, signature = upstream_token(authd).split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    response = exchange(authd, service_a(authd, "svc-b"), forged, audience="svc-b")
    refused_changes_nothing(authd, response, 400, "invalid_grant")


def test_actor_token_is_refused_as_invalid_request(authd: Authd) -> None:
    """actor_token (impersonation by a third token) is not offered: invalid_request."""
    subject = upstream_token(authd)
    response = exchange(authd, service_a(authd, "svc-b"), subject, audience="svc-b",
                        actor_token=subject, actor_token_type=ACCESS_TOKEN_TYPE)
    refused_changes_nothing(authd, response, 400, "invalid_request")


def test_another_subject_token_type_is_invalid_request(authd: Authd) -> None:
    """Only access tokens are exchanged; an id_token type is invalid_request."""
    response = exchange(authd, service_a(authd, "svc-b"), upstream_token(authd),
                        audience="svc-b",
                        subject_token_type="urn:ietf:params:oauth:token-type:id_token")
    refused_changes_nothing(authd, response, 400, "invalid_request")


def test_a_missing_audience_is_invalid_request(authd: Authd) -> None:
    """Without audience or resource there is nothing to exchange for."""
    response = exchange(authd, service_a(authd, "svc-b"), upstream_token(authd))
    refused_changes_nothing(authd, response, 400, "invalid_request")


def test_a_wrong_client_secret_is_invalid_client(authd: Authd) -> None:
    """The caller authenticates as for client_credentials; a bad secret is 401."""
    client_id, _ = service_a(authd, "svc-b")
    _, other_key = new_client(authd, SCOPES)
    response = exchange(authd, (client_id, other_key), upstream_token(authd), audience="svc-b")
    refused_changes_nothing(authd, response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


def test_the_admin_api_sets_the_exchange_policy(authd: Authd) -> None:
    """POST /admin/clients/{id}/token-policy allows an audience; the exchange then works."""
    admin = authd.cli_json("bootstrap")["api_key"]
    caller = new_client(authd, SCOPES)
    response = authd.http.post(f"/admin/clients/{caller[0]}/token-policy",
                               json={"exchange_audiences": ["svc-b"]},
                               headers={"X-API-Key": admin})
    assert response.status_code == 200, response.text
    assert response.json()["exchange_audiences"] == ["svc-b"]
    assert exchange(authd, caller, upstream_token(authd), audience="svc-b").status_code == 200


async def test_every_exchange_is_audited(authd: Authd) -> None:
    """An exchange leaves an audit event naming caller, subject, audience and scope."""
    subject = upstream_token(authd)
    caller = service_a(authd, "svc-b")
    assert exchange(authd, caller, subject, audience="svc-b").status_code == 200
    conn = await asyncpg.connect(authd.server.env["AUTHD_DATABASE_URL"])
    try:
        for _ in range(50):
            row = await conn.fetchrow(
                "SELECT outcome, subject, details::text AS details FROM audit_events"
                " WHERE action = 'token.exchange' AND actor = $1", caller[0])
            if row is not None:
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    assert row is not None and row["outcome"] == "ok"
    assert row["subject"] == claims_of(subject)["sub"]
    for expected in ("svc-b", "orders:read orders:write"):
        assert expected in row["details"]
    assert subject not in row["details"]


async def test_logout_revokes_what_was_exchanged_from_the_session(authd: Authd) -> None:
    """Logging the user out makes the exchanged token inactive at introspection and
    refused by a verifier following the revocation feed."""
    authd.user(email := f"u{time.time_ns()}@example.test")
    login = authd.login(email)
    exchanged = exchange(authd, service_a(authd, "svc-b"), login["access_token"],
                         audience="svc-b").json()["access_token"]
    feed = await AsyncRevocationFeed(authd.issuer, interval=0.5,
                                     allow_insecure_http=True).start()
    verifier = AsyncVerifier.for_issuer(authd.issuer, "svc-b", revocations=feed,
                                        allow_insecure_http=True)
    try:
        await verifier.verify(exchanged)
        logout = authd.http.post("/v1/logout", json={"refresh_token": login["refresh_token"]})
        assert logout.status_code == 204, logout.text
        assert introspect(authd, exchanged) == {"active": False}
        await asyncio.sleep(1.5)
        with pytest.raises(TokenRevoked):
            await verifier.verify(exchanged)
    finally:
        await verifier.aclose()
        await feed.aclose()


async def test_an_expired_subject_token_is_invalid_grant(authd: Authd) -> None:
    """A subject token past its exp (and the verification leeway) cannot be exchanged."""
    short = authd.cli_json("clients", "create", f"short-{time.time_ns()}", "--scope", SCOPES,
                           "--token-ttl", "30s")
    short_key = authd.cli_json("apikeys", "create", "--client", short["id"])["api_key"]
    subject = authd.client_credentials(short["id"], short_key)
    await asyncio.sleep(30 + 30 + 2)  # the token's life plus authd's verification leeway
    response = exchange(authd, service_a(authd, "svc-b"), subject, audience="svc-b")
    refused_changes_nothing(authd, response, 400, "invalid_grant")


def test_the_callers_key_rate_limit_holds_for_exchanges_too(authd: Authd) -> None:
    """The caller's API key is held to its own rate limit by the exchange grant as by
    client_credentials: past it, 429 with Retry-After and nothing issued."""
    subject = upstream_token(authd)
    client = authd.cli_json("clients", "create", f"svc-{time.time_ns()}", "--scope", SCOPES,
                            "--exchange-audience", "svc-b")
    key = authd.cli_json("apikeys", "create", "--client", client["id"], "--rate-limit", "2/h")
    caller = (str(client["id"]), str(key["api_key"]))
    answers = [exchange(authd, caller, subject, audience="svc-b") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429], [a.text for a in answers]
    assert int(answers[2].headers["retry-after"]) >= 1
