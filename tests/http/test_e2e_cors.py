"""CORS on the real server: the user endpoints answer allow-listed origins with
credentials, the public documents any origin without, the rest nobody."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import httpx
import pytest

from tests.support.servers import Server, free_port

pytestmark = pytest.mark.e2e

APP_ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://app.example.com.evil.net"
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials",
                "access-control-allow-methods", "access-control-allow-headers")


def _server(root: pytest.TempPathFactory, name: str, extra: dict[str, str]) -> Server:
    path = root.mktemp(name)
    env = {"AUTHD_DATA_DIR": str(path / "data"), "AUTHD_KEYS_DIR": str(path / "keys"), **extra}
    server = Server(env=env, port=free_port(), log_path=path / "server.log")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        return server.start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One embedded-default server with one allowed origin: these tests only read."""
    started = _server(tmp_path_factory, "cors", {"AUTHD_CORS_ORIGINS": APP_ORIGIN})
    yield started
    started.stop()


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The same without AUTHD_CORS_ORIGINS: the default."""
    started = _server(tmp_path_factory, "nocors", {})
    yield started
    started.stop()


def preflight(origin: str, method: str = "POST", headers: str = "content-type") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers}


def no_cors_headers(response: httpx.Response) -> bool:
    return not any(name in response.headers for name in CORS_HEADERS)


def test_a_login_preflight_from_the_allowed_origin_is_granted(server: Server) -> None:
    """The browser may send the JSON login with credentials from the allowed origin."""
    response = httpx.options(server.base_url + "/v1/login", headers=preflight(APP_ORIGIN))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-methods"] == "POST"
    assert "content-type" in response.headers["access-control-allow-headers"].lower()
    assert "x-request-id" in response.headers


def test_a_login_preflight_from_another_origin_is_refused(server: Server) -> None:
    """A look-alike origin gets a 400 problem and no Allow-Origin."""
    response = httpx.options(server.base_url + "/v1/login", headers=preflight(OTHER_ORIGIN))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "access-control-allow-origin" not in response.headers


def test_a_refused_login_is_readable_by_the_allowed_origin(server: Server) -> None:
    """A wrong password's 401 carries the CORS headers, so the page can show why."""
    response = httpx.post(server.base_url + "/v1/login", headers={"Origin": APP_ORIGIN},
                          json={"email": "nobody@example.com", "password": "wrong password!"})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in response.headers["vary"]


def test_a_login_from_another_origin_gets_no_cors_headers(server: Server) -> None:
    """The browser keeps the answer from a page on an origin not on the list."""
    response = httpx.post(server.base_url + "/v1/login", headers={"Origin": OTHER_ORIGIN},
                          json={"email": "nobody@example.com", "password": "wrong password!"})
    assert no_cors_headers(response)


def test_the_mfa_endpoints_preflight_allows_the_bearer_header(server: Server) -> None:
    """``GET /v1/mfa`` with ``Authorization`` passes preflight from the allowed origin."""
    response = httpx.options(server.base_url + "/v1/mfa", headers=preflight(
        APP_ORIGIN, method="GET", headers="authorization"))
    assert response.status_code == 200
    assert response.headers["access-control-allow-methods"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/v1/token", "/oauth/token", "/oauth/introspect",
                                  "/admin/clients"])
def test_machine_and_admin_endpoints_send_no_cors_headers(server: Server, path: str) -> None:
    """Even the allowed origin gets no CORS header from a token, introspection or
    admin endpoint, and its preflight there is a 405."""
    answer = httpx.post(server.base_url + path, headers={"Origin": APP_ORIGIN})
    assert no_cors_headers(answer)
    refused = httpx.options(server.base_url + path, headers=preflight(APP_ORIGIN))
    assert refused.status_code == 405
    assert no_cors_headers(refused)


@pytest.mark.parametrize("path", ["/.well-known/jwks.json",
                                  "/.well-known/oauth-authorization-server"])
def test_public_documents_are_readable_by_any_origin_without_credentials(
    server: Server, path: str
) -> None:
    """JWKS and metadata answer ``*`` and never allow credentials."""
    response = httpx.get(server.base_url + path, headers={"Origin": OTHER_ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


def test_the_jwks_304_carries_allow_origin(server: Server) -> None:
    """A page revalidating the JWKS with If-None-Match can read the 304 too."""
    first = httpx.get(server.base_url + "/.well-known/jwks.json")
    again = httpx.get(server.base_url + "/.well-known/jwks.json",
                      headers={"Origin": OTHER_ORIGIN, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("path", ["/v1/login", "/.well-known/jwks.json"])
def test_without_the_setting_no_path_sends_cors_headers(plain_server: Server, path: str) -> None:
    """CORS is off by default: no answer names an origin and preflights are 405."""
    response = httpx.options(plain_server.base_url + path, headers=preflight(APP_ORIGIN))
    assert response.status_code == 405
    assert no_cors_headers(response)
