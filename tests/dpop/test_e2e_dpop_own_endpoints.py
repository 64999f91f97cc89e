"""authd's own resource endpoints (MFA, logout, introspection by Bearer token) take a
DPoP-bound token only as ``Authorization: DPoP`` with a proof by its key (RFC 9449 §7)."""

from __future__ import annotations

import time

import httpx

from tests.support.dpop import DPoPKey
from tests.support.service_to_service import authd, bound_login, new_client
from tests.verifier.e2e_support import PYTEST_MARKS, Authd

__all__ = ["authd"]
pytestmark = PYTEST_MARKS


def with_proof(authd: Authd, key: DPoPKey, token: str, method: str, path: str) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}",
            "DPoP": key.proof(method, authd.issuer + path, access_token=token)}


def test_a_bound_user_token_reaches_mfa_with_its_proof(authd: Authd) -> None:
    """GET /v1/mfa with Authorization: DPoP and a proof by the bound key is 200."""
    key = DPoPKey()
    token = bound_login(authd, key)["access_token"]
    response = authd.http.get("/v1/mfa", headers=with_proof(authd, key, token, "GET", "/v1/mfa"))
    assert response.status_code == 200, response.text


def test_a_bound_user_token_as_bearer_is_refused(authd: Authd) -> None:
    """The same token as Bearer is 401 invalid_token."""
    token = bound_login(authd, DPoPKey())["access_token"]
    response = authd.http.get("/v1/mfa", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "invalid_token" in response.headers["www-authenticate"]


def test_a_proof_by_another_key_is_refused_at_authd(authd: Authd) -> None:
    """A proof by a key other than cnf.jkt is 401 invalid_token."""
    token = bound_login(authd, DPoPKey())["access_token"]
    response = authd.http.get("/v1/mfa",
                              headers=with_proof(authd, DPoPKey(), token, "GET", "/v1/mfa"))
    assert response.status_code == 401


def test_a_stale_proof_is_invalid_dpop_proof_at_authd(authd: Authd) -> None:
    """A stale proof is 401 with a DPoP challenge naming invalid_dpop_proof."""
    key = DPoPKey()
    token = bound_login(authd, key)["access_token"]
    response = authd.http.get("/v1/mfa", headers={
        "Authorization": f"DPoP {token}",
        "DPoP": key.proof("GET", authd.issuer + "/v1/mfa", access_token=token,
                          iat=time.time() - 600)})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("DPoP ") and 'error="invalid_dpop_proof"' in challenge


def test_logout_takes_the_bound_token_with_its_proof(authd: Authd) -> None:
    """POST /v1/logout with Authorization: DPoP and its proof ends the session."""
    key = DPoPKey()
    token = bound_login(authd, key)["access_token"]
    response = authd.http.post("/v1/logout",
                               headers=with_proof(authd, key, token, "POST", "/v1/logout"))
    assert response.status_code == 204, response.text


def test_introspection_by_a_bound_token_needs_its_proof(authd: Authd) -> None:
    """A bound token holding authd:introspect authenticates introspection as DPoP,
    and is refused as Bearer."""
    key = DPoPKey()
    caller = new_client(authd, "authd:introspect")
    token = httpx.post(authd.issuer + "/oauth/token", auth=caller,
                       data={"grant_type": "client_credentials"},
                       headers={"DPoP": key.proof("POST", authd.issuer + "/oauth/token")},
                       ).json()["access_token"]
    as_bearer = authd.http.post("/oauth/introspect", data={"token": token},
                                headers={"Authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401
    as_dpop = authd.http.post("/oauth/introspect", data={"token": token},
                              headers=with_proof(authd, key, token, "POST", "/oauth/introspect"))
    assert as_dpop.status_code == 200, as_dpop.text
    assert as_dpop.json()["active"] is True and as_dpop.json()["token_type"] == "DPoP"


def test_a_proof_for_the_url_of_a_forged_host_is_refused(authd: Authd) -> None:
    """htu is checked against the configured issuer, never a URL built from the Host
    header: a proof made for another server, sent with that server's name as Host,
    is 401 invalid_dpop_proof."""
    key = DPoPKey()
    token = bound_login(authd, key)["access_token"]
    elsewhere = "http://resource.example/v1/mfa"
    response = authd.http.get("/v1/mfa", headers={
        "Host": "resource.example",
        "Authorization": f"DPoP {token}",
        "DPoP": key.proof("GET", elsewhere, access_token=token)})
    assert response.status_code == 401
    assert 'error="invalid_dpop_proof"' in response.headers["www-authenticate"]
