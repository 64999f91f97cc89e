"""authd_verifier.fastapi: a real FastAPI app, served by uvicorn, spoken to over HTTP."""

# No ``from __future__ import annotations``: FastAPI reads the routes' ``Annotated``
# parameters at run time, and they name the local ``auth``.
import time
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from authd_verifier import AsyncVerifier, Claims
from authd_verifier.fastapi import BearerAuth
from authd_verifier.testing import TokenMinter
from fastapi import Depends, FastAPI

from tests.support.servers import free_port

from .conftest import ISSUER
from .threaded_server import UvicornThread


def build_app(minter: TokenMinter, *, install: bool) -> FastAPI:
    """An orders API: GET needs orders:read, DELETE orders:write and MFA; /healthz is open."""
    auth = BearerAuth(
        minter.async_verifier(), realm="orders", scope_descriptions={"orders:read": "Read orders"}
    )
    app = FastAPI()
    if install:
        auth.install(app)

    @app.get("/orders")
    async def list_orders(
        claims: Annotated[Claims, Depends(auth.require_token(scopes=["orders:read"]))],
    ) -> dict[str, Any]:
        return {"sub": claims.subject, "scopes": sorted(claims.scopes)}

    @app.delete("/orders/{order_id}")
    async def cancel_order(
        order_id: int,
        claims: Annotated[Claims, Depends(auth.require_token(scopes=["orders:write"], mfa=True))],
    ) -> dict[str, Any]:
        return {"cancelled": order_id, "by": claims.subject}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture(scope="module")
def module_minter() -> TokenMinter:
    """A minter for this module's apps (the session minter's key would do; this keeps it local)."""
    return TokenMinter(issuer=ISSUER, audience="orders", kid="fastapi-key")


@pytest.fixture(scope="module")
def base_url(module_minter: TokenMinter) -> Iterator[str]:
    """The app with the middleware-shaped error bodies installed, served over HTTP."""
    with UvicornThread(build_app(module_minter, install=True)) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def plain_base_url(module_minter: TokenMinter) -> Iterator[str]:
    """The same app without ``auth.install``: FastAPI's own error bodies."""
    with UvicornThread(build_app(module_minter, install=False)) as server:
        yield server.base_url


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_valid_token_reaches_the_route_with_its_claims(
    base_url: str, module_minter: TokenMinter
) -> None:
    """A token granting the route's scope is answered 200 with the claims the route read."""
    token = module_minter.mint(subject="user-1", scope="orders:read")
    response = httpx.get(f"{base_url}/orders", headers=bearer(token))
    assert (response.status_code, response.json()) == (
        200,
        {"sub": "user-1", "scopes": ["orders:read"]},
    )


def test_missing_token_is_a_401_challenge_without_error_code(base_url: str) -> None:
    """No Authorization header: 401 with a bare Bearer challenge naming the realm (RFC 6750)."""
    response = httpx.get(f"{base_url}/orders")
    assert (response.status_code, response.headers["www-authenticate"]) == (
        401,
        'Bearer realm="orders"',
    )


def test_bad_token_is_invalid_token(base_url: str, module_minter: TokenMinter) -> None:
    """An expired token is 401 invalid_token, described in the challenge and the body."""
    hour_ago = int(time.time()) - 3600
    token = module_minter.mint(exp=hour_ago, iat=hour_ago - 900, nbf=hour_ago - 900)
    response = httpx.get(f"{base_url}/orders", headers=bearer(token))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json() == {
        "error": "invalid_token",
        "error_description": "the access token has expired",
    }


def test_missing_scope_is_insufficient_scope_naming_it(
    base_url: str, module_minter: TokenMinter
) -> None:
    """A valid token lacking the route's scope is 403 insufficient_scope naming orders:read."""
    token = module_minter.mint(scope="profile")
    response = httpx.get(f"{base_url}/orders", headers=bearer(token))
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="orders:read"' in challenge


def test_route_requiring_mfa_refuses_a_password_only_token(
    base_url: str, module_minter: TokenMinter
) -> None:
    """A route declared with mfa=True answers 401 insufficient_user_authentication (RFC 9470)."""
    token = module_minter.mint(scope="orders:write", amr=["pwd"])
    response = httpx.delete(f"{base_url}/orders/7", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["error"] == "insufficient_user_authentication"


def test_malformed_authorization_is_invalid_request(base_url: str) -> None:
    """An Authorization header that is not one Bearer token is 400 invalid_request."""
    response = httpx.get(f"{base_url}/orders", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_open_route_needs_no_token(base_url: str) -> None:
    """A route without the dependency stays open."""
    assert httpx.get(f"{base_url}/healthz").status_code == 200


def test_openapi_declares_the_scheme_with_client_credentials_and_scopes(base_url: str) -> None:
    """The OpenAPI document names authd's token URL and every scope a route requires."""
    document = httpx.get(f"{base_url}/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["authd"]
    assert scheme == {
        "type": "oauth2",
        "flows": {
            "clientCredentials": {
                "tokenUrl": f"{ISSUER}/oauth/token",
                "scopes": {"orders:read": "Read orders", "orders:write": "orders:write"},
            }
        },
    }


def test_openapi_marks_each_route_with_its_scopes(base_url: str) -> None:
    """Each protected operation carries a security requirement with its scopes; open ones none."""
    paths = httpx.get(f"{base_url}/openapi.json").json()["paths"]
    assert paths["/orders"]["get"]["security"] == [{"authd": ["orders:read"]}]
    assert paths["/orders/{order_id}"]["delete"]["security"] == [{"authd": ["orders:write"]}]
    assert "security" not in paths["/healthz"]["get"]


def test_without_install_the_refusal_keeps_status_and_challenge(
    plain_base_url: str, module_minter: TokenMinter
) -> None:
    """Without auth.install the body is FastAPI's detail, with the same status and challenge."""
    token = module_minter.mint(scope="profile")
    response = httpx.get(f"{plain_base_url}/orders", headers=bearer(token))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert response.json() == {"detail": "the access token lacks a required scope"}


def test_unreachable_keys_are_a_503_with_retry_after(module_minter: TokenMinter) -> None:
    """When authd's keys cannot be fetched at all, the answer is 503 with Retry-After, not 401."""
    dead = AsyncVerifier.for_issuer(f"http://127.0.0.1:{free_port()}", audience="orders")
    auth = BearerAuth(dead)
    app = FastAPI()
    auth.install(app)
    reader = auth.require_token(scopes=["orders:read"])

    @app.get("/orders")
    async def list_orders(claims: Annotated[Claims, Depends(reader)]) -> dict[str, str]:
        return {"sub": claims.subject}

    with UvicornThread(app) as server:
        response = httpx.get(
            f"{server.base_url}/orders", headers=bearer(module_minter.mint(scope="orders:read"))
        )
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert response.json()["error"] == "temporarily_unavailable"
