"""DPoP-bound sessions (RFC 9449 §5) on a real authd: a login with a proof binds the
refresh family to the proof's key; refreshing needs a proof by that key."""

from __future__ import annotations

import time

import httpx

from tests.mfa.helpers import password_step, ticket_of
from tests.support.dpop import DPoPKey
from tests.support.service_to_service import authd, bound_login, claims_of
from tests.verifier.e2e_support import PYTEST_MARKS, Authd

__all__ = ["authd"]
pytestmark = PYTEST_MARKS


def oauth_refresh(authd: Authd, refresh_token: str, key: DPoPKey | None) -> httpx.Response:
    headers = {} if key is None else {"DPoP": key.proof("POST", authd.issuer + "/oauth/token")}
    return authd.http.post("/oauth/token", headers=headers, data={
        "grant_type": "refresh_token", "refresh_token": refresh_token})


def test_a_login_with_a_proof_gets_a_bound_session(authd: Authd) -> None:
    """/v1/login with a proof answers token_type DPoP and an access token bound to the key."""
    key = DPoPKey()
    login = bound_login(authd, key)
    assert login["token_type"] == "DPoP"
    assert claims_of(login["access_token"])["cnf"] == {"jkt": key.thumbprint}


def test_a_bound_session_refreshes_with_a_proof_by_its_key(authd: Authd) -> None:
    """grant_type=refresh_token with a proof by the login's key gets a bound token."""
    key = DPoPKey()
    response = oauth_refresh(authd, bound_login(authd, key)["refresh_token"], key)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert claims_of(response.json()["access_token"])["cnf"]["jkt"] == key.thumbprint


def test_v1_refresh_of_a_bound_session_takes_a_proof(authd: Authd) -> None:
    """/v1/refresh with a proof by the login's key rotates and stays bound."""
    key = DPoPKey()
    login = bound_login(authd, key)
    response = authd.http.post(
        "/v1/refresh", json={"refresh_token": login["refresh_token"]},
        headers={"DPoP": key.proof("POST", authd.issuer + "/v1/refresh")})
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"


def test_refresh_with_another_key_is_refused_and_spends_nothing(authd: Authd) -> None:
    """A proof by another key is invalid_grant; the token still works with the right key."""
    key = DPoPKey()
    login = bound_login(authd, key)
    refused = oauth_refresh(authd, login["refresh_token"], DPoPKey())
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert oauth_refresh(authd, login["refresh_token"], key).status_code == 200


def test_refresh_of_a_bound_session_without_a_proof_revokes_the_session(authd: Authd) -> None:
    """No proof for a bound family is invalid_grant and ends the session: the refresh
    token then fails even with the right key."""
    key = DPoPKey()
    login = bound_login(authd, key)
    refused = oauth_refresh(authd, login["refresh_token"], None)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert oauth_refresh(authd, login["refresh_token"], key).status_code == 400


def test_an_mfa_login_with_a_proof_gets_a_bound_session(authd: Authd) -> None:
    """The second step (/v1/login/mfa) with a proof binds the session to its key."""
    user = authd.enrol_totp(f"m{time.time_ns()}@example.test")
    ticket = ticket_of(password_step(authd.http, user.email))
    key = DPoPKey()
    response = authd.http.post(
        "/v1/login/mfa", json={"mfa_ticket": ticket, "code": user.next_code()},
        headers={"DPoP": key.proof("POST", authd.issuer + "/v1/login/mfa")})
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert claims_of(response.json()["access_token"])["cnf"]["jkt"] == key.thumbprint
    assert oauth_refresh(authd, response.json()["refresh_token"], key).status_code == 200
