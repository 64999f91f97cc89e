"""DPoP (RFC 9449) end to end: a client with a P-256 key it generated gets bound
tokens from a real authd (PostgreSQL + Redis), and a resource service guarded by the
verifier library's DPoP middleware accepts them only with a fresh proof by that key."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from authd_verifier import AsyncVerifier, DPoPVerifier
from authd_verifier.dpop_middleware import CLAIMS_SCOPE_KEY, DPoPAuthMiddleware
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.dpop import DPoPKey
from tests.support.service_to_service import (
    authd,
    claims_of,
    exchange,
    introspect,
    new_client,
    start_shared_authd,
)
from tests.verifier.e2e_support import AUDIENCE, PYTEST_MARKS, Authd

__all__ = ["authd"]
pytestmark = PYTEST_MARKS

SCOPES = "orders:read orders:write"
RESOURCE = "http://orders.test/orders"


def token_url(authd: Authd) -> str:
    return authd.issuer + "/oauth/token"


def bound_token(authd: Authd, key: DPoPKey, client: tuple[str, str] | None = None) -> str:
    client = client or new_client(authd, SCOPES)
    response = authd.http.post(
        "/oauth/token", auth=client, data={"grant_type": "client_credentials"},
        headers={"DPoP": key.proof("POST", token_url(authd))},
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    return str(response.json()["access_token"])


def token_request(authd: Authd, proof: str) -> httpx.Response:
    return authd.http.post("/oauth/token", auth=new_client(authd, SCOPES),
                           data={"grant_type": "client_credentials"}, headers={"DPoP": proof})


def refused_proof(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"


async def orders(request: Request) -> JSONResponse:
    claims = request.scope[CLAIMS_SCOPE_KEY]
    return JSONResponse({"sub": claims.subject, "jkt": claims.dpop_thumbprint})


@pytest.fixture
async def resource(authd: Authd) -> AsyncIterator[httpx.AsyncClient]:
    """A Starlette service guarded by DPoPAuthMiddleware trusting the shared authd,
    called in-process through httpx's ASGI transport at http://orders.test."""
    verifier = AsyncVerifier.for_issuer(authd.issuer, AUDIENCE)
    app = Starlette(routes=[Route("/orders", orders, methods=["GET", "POST"])])
    app.add_middleware(DPoPAuthMiddleware, verifier=verifier, dpop=DPoPVerifier())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://orders.test") as client:
        yield client
    await verifier.aclose()


def dpop_headers(token: str, proof: str) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", "DPoP": proof}


# ---- the token endpoints bind ------------------------------------------------------


def test_client_credentials_with_a_proof_is_bound_to_the_proof_key(authd: Authd) -> None:
    """A proof at /oauth/token gets token_type DPoP and cnf.jkt = the key's thumbprint."""
    key = DPoPKey()
    assert claims_of(bound_token(authd, key))["cnf"] == {"jkt": key.thumbprint}


def test_v1_token_with_a_proof_is_bound(authd: Authd) -> None:
    """The plain API-key exchange binds as well (htu is /v1/token)."""
    key = DPoPKey()
    _, api_key = new_client(authd, SCOPES)
    response = authd.http.post("/v1/token", headers={
        "X-API-Key": api_key, "DPoP": key.proof("POST", authd.issuer + "/v1/token")})
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert claims_of(response.json()["access_token"])["cnf"]["jkt"] == key.thumbprint


def test_token_exchange_with_a_proof_is_bound(authd: Authd) -> None:
    """An exchanged token requested with a proof is bound to the proof's key."""
    key = DPoPKey()
    caller = new_client(authd, SCOPES, "--exchange-audience", "svc-b")
    subject = authd.client_credentials(*new_client(authd, SCOPES))
    response = authd.http.post("/oauth/token", auth=caller, data={
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": subject, "audience": "svc-b",
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
    }, headers={"DPoP": key.proof("POST", token_url(authd))})
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert claims_of(response.json()["access_token"])["cnf"]["jkt"] == key.thumbprint


def test_a_bound_subject_token_is_exchanged_only_with_its_key(authd: Authd) -> None:
    """A DPoP-bound subject token exchanged without a proof by its key is invalid_grant."""
    subject = bound_token(authd, DPoPKey())
    caller = new_client(authd, SCOPES, "--exchange-audience", "svc-b")
    response = exchange(authd, caller, subject, audience="svc-b")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_metadata_lists_the_proof_algorithms(authd: Authd) -> None:
    """RFC 8414 metadata names dpop_signing_alg_values_supported."""
    document = authd.http.get("/.well-known/oauth-authorization-server").json()
    assert "ES256" in document["dpop_signing_alg_values_supported"]
    assert "HS256" not in document["dpop_signing_alg_values_supported"]


def test_introspection_reports_the_binding(authd: Authd) -> None:
    """Introspecting a bound token answers token_type DPoP and its cnf.jkt."""
    key = DPoPKey()
    answer = introspect(authd, bound_token(authd, key))
    assert answer["active"] is True and answer["token_type"] == "DPoP"
    assert answer["cnf"] == {"jkt": key.thumbprint}


def test_a_client_that_requires_dpop_is_refused_without_a_proof(authd: Authd) -> None:
    """A client set to require DPoP gets invalid_dpop_proof without one, a token with one."""
    client = new_client(authd, SCOPES, "--dpop-required")
    response = authd.http.post("/oauth/token", auth=client,
                               data={"grant_type": "client_credentials"})
    refused_proof(response)
    assert bound_token(authd, DPoPKey(), client)


# ---- the token endpoint's proof checks ----------------------------------------------


def test_a_replayed_proof_is_refused_at_the_token_endpoint(authd: Authd) -> None:
    """The same proof twice: the second is invalid_dpop_proof (the jti cache in Redis)."""
    proof = DPoPKey().proof("POST", token_url(authd))
    assert token_request(authd, proof).status_code == 200
    refused_proof(token_request(authd, proof))


def test_a_proof_for_another_url_is_refused_at_the_token_endpoint(authd: Authd) -> None:
    """htu naming another endpoint is invalid_dpop_proof."""
    refused_proof(token_request(authd, DPoPKey().proof("POST", authd.issuer + "/v1/token")))


def test_a_proof_for_another_method_is_refused_at_the_token_endpoint(authd: Authd) -> None:
    """htm GET for a POST is invalid_dpop_proof."""
    refused_proof(token_request(authd, DPoPKey().proof("GET", token_url(authd))))


def test_a_proof_with_a_private_jwk_is_refused(authd: Authd) -> None:
    """A jwk carrying the private key (d) is refused, never used."""
    key = DPoPKey()
    leaked = {**key.public_jwk, "d": "AAAA"}
    refused_proof(token_request(authd, key.proof("POST", token_url(authd),
                                                 header={"jwk": leaked})))


def test_a_stale_proof_is_refused_at_the_token_endpoint(authd: Authd) -> None:
    """A proof whose iat is older than the window is invalid_dpop_proof."""
    refused_proof(token_request(authd, DPoPKey().proof("POST", token_url(authd),
                                                       iat=time.time() - 600)))


def test_a_malformed_proof_is_refused_at_the_token_endpoint(authd: Authd) -> None:
    """A DPoP header that is no JWT is invalid_dpop_proof, not a 500."""
    refused_proof(token_request(authd, "not-a-proof"))


# ---- the resource service ------------------------------------------------------------


async def test_the_resource_accepts_the_token_with_a_fresh_proof(
    authd: Authd, resource: httpx.AsyncClient
) -> None:
    """Authorization: DPoP with a fresh proof by the bound key reaches the app."""
    key = DPoPKey()
    token = bound_token(authd, key)
    response = await resource.get("/orders", headers=dpop_headers(
        token, key.proof("GET", RESOURCE, access_token=token)))
    assert response.status_code == 200, response.text
    assert response.json()["jkt"] == key.thumbprint


async def test_the_resource_refuses_a_bound_token_sent_as_bearer(
    authd: Authd, resource: httpx.AsyncClient
) -> None:
    """A DPoP-bound token presented as Bearer is 401 invalid_token."""
    response = await resource.get("/orders", headers={
        "Authorization": f"Bearer {bound_token(authd, DPoPKey())}"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def _refused(resource: httpx.AsyncClient, token: str, proof: str, *,
                   method: str = "GET") -> dict[str, Any]:
    response = await resource.request(method, "/orders", headers=dpop_headers(token, proof))
    assert response.status_code == 401, response.text
    assert any(c.startswith("DPoP ") for c in response.headers.get_list("www-authenticate"))
    body: dict[str, Any] = response.json()
    return body


async def test_the_resource_refuses_a_replayed_proof(
    authd: Authd, resource: httpx.AsyncClient
) -> None:
    """The same proof a second time is invalid_dpop_proof."""
    key = DPoPKey()
    token = bound_token(authd, key)
    proof = key.proof("GET", RESOURCE, access_token=token)
    assert (await resource.get("/orders", headers=dpop_headers(token, proof))).status_code == 200
    assert (await _refused(resource, token, proof))["error"] == "invalid_dpop_proof"


async def test_the_resource_refuses_a_proof_for_another_url(
    authd: Authd, resource: httpx.AsyncClient
) -> None:
    """A proof for another URL is invalid_dpop_proof."""
    key = DPoPKey()
    token = bound_token(authd, key)
    proof = key.proof("GET", "http://orders.test/refunds", access_token=token)
    assert (await _refused(resource, token, proof))["error"] == "invalid_dpop_proof"


async def test_the_resource_refuses_a_proof_for_another_method(
    authd: Authd, resource: httpx.AsyncClient
) -> None:
    """A GET proof on a POST request is invalid_dpop_proof."""
    key = DPoPKey()
    token = bound_token(authd, key)
    proof = key.proof("GET", RESOURCE, access_token=token)
    refused = await _refused(resource, token, proof, method="POST")
    assert refused["error"] == "invalid_dpop_proof"


async def test_the_resource_refuses_a_proof_by_another_key(
    authd: Authd, resource: httpx.AsyncClient
) -> None:
    """A valid proof by a key other than cnf.jkt is invalid_token."""
    token = bound_token(authd, DPoPKey())
    proof = DPoPKey().proof("GET", RESOURCE, access_token=token)
    assert (await _refused(resource, token, proof))["error"] == "invalid_token"


async def test_the_resource_refuses_a_proof_without_ath(
    authd: Authd, resource: httpx.AsyncClient
) -> None:
    """A proof lacking the access-token hash is invalid_dpop_proof."""
    key = DPoPKey()
    token = bound_token(authd, key)
    assert (await _refused(resource, token, key.proof("GET", RESOURCE)))["error"] == (
        "invalid_dpop_proof")


async def test_the_resource_refuses_a_proof_with_a_stale_iat(
    authd: Authd, resource: httpx.AsyncClient
) -> None:
    """A proof issued ten minutes ago is invalid_dpop_proof."""
    key = DPoPKey()
    token = bound_token(authd, key)
    proof = key.proof("GET", RESOURCE, access_token=token, iat=time.time() - 600)
    assert (await _refused(resource, token, proof))["error"] == "invalid_dpop_proof"


async def test_the_resource_refuses_dpop_without_a_proof(
    authd: Authd, resource: httpx.AsyncClient
) -> None:
    """Authorization: DPoP with no DPoP header is invalid_dpop_proof."""
    token = bound_token(authd, DPoPKey())
    response = await resource.get("/orders", headers={"Authorization": f"DPoP {token}"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_dpop_proof"


async def test_the_resource_challenge_offers_dpop_with_its_algorithms(
    resource: httpx.AsyncClient,
) -> None:
    """No credentials: 401 with a Bearer and a DPoP challenge naming algs (§7.1)."""
    response = await resource.get("/orders")
    assert response.status_code == 401
    challenges = response.headers.get_list("www-authenticate")
    assert any(c.startswith("DPoP ") and 'algs="' in c and "ES256" in c for c in challenges)


# ---- server nonces -----------------------------------------------------------------


async def test_server_nonces_are_demanded_then_accepted(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With AUTHD_DPOP_NONCE a proof without nonce gets use_dpop_nonce and a DPoP-Nonce;
    the retry carrying it gets a bound token."""
    noncing = await start_shared_authd(tmp_path_factory.mktemp("nonce"), AUTHD_DPOP_NONCE="true")
    try:
        key, client = DPoPKey(), new_client(noncing, SCOPES)
        first = noncing.http.post("/oauth/token", auth=client,
                                  data={"grant_type": "client_credentials"},
                                  headers={"DPoP": key.proof("POST", token_url(noncing))})
        assert first.status_code == 400 and first.json()["error"] == "use_dpop_nonce"
        nonce = first.headers["dpop-nonce"]
        retry = noncing.http.post("/oauth/token", auth=client,
                                  data={"grant_type": "client_credentials"},
                                  headers={"DPoP": key.proof("POST", token_url(noncing),
                                                             nonce=nonce)})
        assert retry.status_code == 200, retry.text
        assert retry.json()["token_type"] == "DPoP"
    finally:
        noncing.http.close()
        noncing.server.stop()
