"""authd_verifier.wsgi: the middleware and decorator in real WSGI apps served over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any

import flask
import httpx
import pytest
from authd_verifier import Verifier
from authd_verifier.testing import TokenMinter
from authd_verifier.wsgi import CLAIMS_ENVIRON_KEY, BearerAuthMiddleware, require_token

from .conftest import ISSUER
from .threaded_server import WSGIThread

Environ = MutableMapping[str, Any]


def whoami(environ: Environ, start_response: Any) -> Iterable[bytes]:
    """A plain WSGI app answering with the verified subject, or "open" without claims."""
    claims = environ.get(CLAIMS_ENVIRON_KEY)
    body = json.dumps({"sub": claims.subject if claims else "open"}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@pytest.fixture(scope="module")
def minter() -> TokenMinter:
    """A minter for this module's apps."""
    return TokenMinter(issuer=ISSUER, audience="orders", kid="wsgi-key")


@pytest.fixture(scope="module")
def verifier(minter: TokenMinter) -> Verifier:
    """The synchronous verifier every app here uses."""
    return minter.verifier()


@pytest.fixture(scope="module")
def middleware_url(verifier: Verifier) -> Iterator[str]:
    """whoami behind BearerAuthMiddleware (orders:read, /healthz exempt), served over HTTP."""
    app = BearerAuthMiddleware(
        whoami, verifier, realm="orders", require_scopes=["orders:read"], exempt_paths=["/healthz"]
    )
    with WSGIThread(app) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def decorated_url(verifier: Verifier) -> Iterator[str]:
    """whoami decorated as a WSGI callable requiring orders:write."""
    with WSGIThread(require_token(verifier, scopes=["orders:write"])(whoami)) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def flask_url(verifier: Verifier) -> Iterator[str]:
    """A real Flask app whose view is decorated Flask-style (environ from flask.request)."""
    app = flask.Flask("orders")

    @app.get("/orders")
    @require_token(verifier, scopes=["orders:read"], environ=lambda: flask.request.environ)
    def orders() -> dict[str, Any]:
        return {"sub": flask.request.environ[CLAIMS_ENVIRON_KEY].subject}

    with WSGIThread(app) as server:
        yield server.base_url


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_middleware_passes_claims_to_the_app(middleware_url: str, minter: TokenMinter) -> None:
    """A token granting the required scope reaches the app with its claims in the environ."""
    token = minter.mint(subject="user-1", scope="orders:read")
    response = httpx.get(f"{middleware_url}/orders", headers=bearer(token))
    assert (response.status_code, response.json()) == (200, {"sub": "user-1"})


def test_middleware_challenges_a_request_without_token(middleware_url: str) -> None:
    """No Authorization header: 401 with a bare Bearer challenge naming the realm."""
    response = httpx.get(f"{middleware_url}/orders")
    assert (response.status_code, response.headers["www-authenticate"]) == (
        401,
        'Bearer realm="orders"',
    )


def test_middleware_refuses_a_forged_token_as_invalid_token(
    middleware_url: str, minter: TokenMinter
) -> None:
    """A token signed by another key is 401 invalid_token with the RFC 6750 JSON body."""
    forger = TokenMinter(issuer=ISSUER, audience="orders", kid="wsgi-key")
    response = httpx.get(
        f"{middleware_url}/orders", headers=bearer(forger.mint(scope="orders:read"))
    )
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["error"] == "invalid_token"


def test_middleware_answers_missing_scope_with_403(
    middleware_url: str, minter: TokenMinter
) -> None:
    """A valid token without the required scope is 403 insufficient_scope naming it."""
    response = httpx.get(f"{middleware_url}/orders", headers=bearer(minter.mint(scope="profile")))
    assert response.status_code == 403
    assert 'scope="orders:read"' in response.headers["www-authenticate"]


def test_middleware_refuses_two_authorization_headers(
    middleware_url: str, minter: TokenMinter
) -> None:
    """Two Authorization headers (folded by WSGI into one value) are 400 invalid_request."""
    token = minter.mint(scope="orders:read")
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    response = httpx.get(f"{middleware_url}/orders", headers=headers)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


def test_middleware_lets_exempt_paths_through(middleware_url: str) -> None:
    """An exempt path reaches the app without a token."""
    response = httpx.get(f"{middleware_url}/healthz")
    assert (response.status_code, response.json()) == (200, {"sub": "open"})


def test_decorated_wsgi_callable_requires_its_own_scope(
    decorated_url: str, minter: TokenMinter
) -> None:
    """A decorated WSGI callable refuses a token lacking its scope and accepts one holding it."""
    lacking = httpx.get(decorated_url, headers=bearer(minter.mint(scope="orders:read")))
    holding = httpx.get(decorated_url, headers=bearer(minter.mint(scope="orders:write")))
    assert (lacking.status_code, holding.status_code) == (403, 200)


def test_flask_view_receives_the_claims(flask_url: str, minter: TokenMinter) -> None:
    """A Flask view decorated with environ=flask.request.environ reads the verified claims."""
    token = minter.mint(subject="user-5", scope="orders:read")
    response = httpx.get(f"{flask_url}/orders", headers=bearer(token))
    assert (response.status_code, response.json()) == (200, {"sub": "user-5"})


def test_flask_view_refusal_is_the_rfc6750_answer(flask_url: str) -> None:
    """A refused Flask request gets the same 401, challenge and JSON body as the middleware's."""
    response = httpx.get(f"{flask_url}/orders", headers={"Authorization": "Bearer not.a.jwt"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(
        'Bearer realm="api", error="invalid_token"'
    )
    assert response.json()["error"] == "invalid_token"
