"""CORS: which paths answer which origins, and how preflights are answered.

The app below has the service's paths (with stand-in endpoints) behind the same
middleware and exception table as the service, so the policies are checked in-process.
"""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.http.cors import browser_cors
from service.http.errors import EXCEPTION_HANDLERS
from service.http.middleware import RequestContextMiddleware

APP_ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://evil.example.net"


async def ok(request: Request) -> Response:
    return JSONResponse({"ok": True}, headers={"Cache-Control": "no-store"})


ROUTES = [
    Route("/v1/login", ok, methods=["POST"]),
    Route("/v1/login/mfa", ok, methods=["POST"]),
    Route("/v1/refresh", ok, methods=["POST"]),
    Route("/v1/logout", ok, methods=["POST"]),
    Route("/v1/mfa", ok, methods=["GET"]),
    Route("/v1/mfa/totp/enroll", ok, methods=["POST"]),
    Route("/oauth/revoke", ok, methods=["POST"]),
    Route("/.well-known/jwks.json", ok, methods=["GET"]),
    Route("/.well-known/oauth-authorization-server", ok, methods=["GET"]),
    Route("/v1/token", ok, methods=["POST"]),
    Route("/oauth/token", ok, methods=["POST"]),
    Route("/oauth/introspect", ok, methods=["POST"]),
    Route("/admin/clients", ok, methods=["GET"]),
    Route("/admin/clients", ok, methods=["POST"]),
]
USER_PATHS = ["/v1/login", "/v1/login/mfa", "/v1/refresh", "/v1/logout",
              "/v1/mfa/totp/enroll", "/oauth/revoke"]
MACHINE_AND_ADMIN_PATHS = ["/v1/token", "/oauth/token", "/oauth/introspect", "/admin/clients"]
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials",
                "access-control-allow-methods", "access-control-allow-headers",
                "access-control-expose-headers")


def client(origins: tuple[str, ...] = (APP_ORIGIN,)) -> httpx.AsyncClient:
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(RequestContextMiddleware, max_body_bytes=4096),
                    Middleware(browser_cors, routes=ROUTES, origins=origins)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="https://auth.example.com")


def preflight(origin: str, method: str = "POST", headers: str = "content-type") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers}


def no_cors_headers(response: httpx.Response) -> bool:
    return not any(name in response.headers for name in CORS_HEADERS)


def test_without_origins_the_app_is_returned_unwrapped() -> None:
    """AUTHD_CORS_ORIGINS unset adds nothing in front of the app: no request pays."""
    app = Starlette(routes=ROUTES)
    assert browser_cors(app, routes=ROUTES, origins=()) is app


@pytest.mark.parametrize("path", USER_PATHS)
async def test_a_user_endpoint_answers_an_allowed_origin_with_credentials(path: str) -> None:
    """A POST from an allow-listed origin gets that origin back, credentials allowed,
    the headers a page may read exposed, and ``Vary: Origin``."""
    async with client() as http:
        response = await http.post(path, headers={"Origin": APP_ORIGIN})
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "retry-after" in response.headers["access-control-expose-headers"].lower()
    assert "Origin" in response.headers["vary"]


@pytest.mark.parametrize("path", USER_PATHS)
async def test_a_user_endpoint_sends_no_cors_headers_to_an_unknown_origin(path: str) -> None:
    """An origin not on the list gets no Allow-Origin and no Allow-Credentials, so the
    browser keeps the answer from the page; the answer still varies by Origin."""
    async with client() as http:
        response = await http.post(path, headers={"Origin": OTHER_ORIGIN})
    assert no_cors_headers(response)
    assert "Origin" in response.headers["vary"]


async def test_a_request_without_origin_gets_no_cors_headers() -> None:
    """A non-browser client (no ``Origin``) is answered as before."""
    async with client() as http:
        response = await http.post("/v1/login")
    assert response.status_code == 200
    assert no_cors_headers(response)


async def test_an_allowed_preflight_names_the_routes_methods_and_accepted_headers() -> None:
    """The preflight answer mirrors the origin, allows credentials, and lists exactly
    the route's methods and the request headers the endpoints read."""
    async with client() as http:
        response = await http.options(
            "/v1/logout", headers=preflight(APP_ORIGIN, headers="authorization, content-type"))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-methods"] == "POST"
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"]
               .split(",")}
    assert {"authorization", "content-type", "x-request-id"} <= allowed
    assert "Origin" in response.headers["vary"]
    assert int(response.headers["access-control-max-age"]) > 0


async def test_a_get_endpoints_preflight_names_get() -> None:
    """``/v1/mfa`` is read with GET (and HEAD), and its preflight says so."""
    async with client() as http:
        response = await http.options("/v1/mfa", headers=preflight(
            APP_ORIGIN, method="GET", headers="authorization"))
    assert response.status_code == 200
    assert response.headers["access-control-allow-methods"] == "GET, HEAD"


async def test_a_preflight_from_an_unknown_origin_is_a_400_problem() -> None:
    """The refusal is problem+json naming what was refused, and allows no origin."""
    async with client() as http:
        response = await http.options("/v1/login", headers=preflight(OTHER_ORIGIN))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:authd:problem:cors_refused"
    assert "origin" in response.json()["detail"]
    assert "access-control-allow-origin" not in response.headers


async def test_a_preflight_for_a_method_the_route_does_not_take_is_refused() -> None:
    """PUT on /v1/login is not accepted, so its preflight is not either."""
    async with client() as http:
        response = await http.options("/v1/login", headers=preflight(APP_ORIGIN, method="PUT"))
    assert response.status_code == 400
    assert "method" in response.json()["detail"]


async def test_a_preflight_for_a_header_the_endpoints_do_not_read_is_refused() -> None:
    """A request header the user endpoints do not accept (here DPoP) fails preflight."""
    async with client() as http:
        response = await http.options("/v1/login", headers=preflight(APP_ORIGIN, headers="dpop"))
    assert response.status_code == 400
    assert "headers" in response.json()["detail"]


async def test_a_refused_preflight_on_an_oauth_path_is_an_oauth_error() -> None:
    """``/oauth/revoke`` answers its refusals in RFC 6749 form, preflight included."""
    async with client() as http:
        response = await http.options("/oauth/revoke", headers=preflight(OTHER_ORIGIN))
    assert response.status_code == 400
    assert response.json()["error"] == "cors_refused"


@pytest.mark.parametrize("path", MACHINE_AND_ADMIN_PATHS)
async def test_machine_and_admin_endpoints_send_no_cors_headers(path: str) -> None:
    """Token, introspection and admin endpoints answer even an allow-listed origin
    without any CORS header, so no page can read them."""
    async with client() as http:
        response = await http.post(path, headers={"Origin": APP_ORIGIN})
    assert no_cors_headers(response)


@pytest.mark.parametrize("path", MACHINE_AND_ADMIN_PATHS)
async def test_machine_and_admin_endpoints_refuse_preflights(path: str) -> None:
    """A preflight there meets the router's 405, with no CORS header: the browser
    never sends the real request."""
    async with client() as http:
        response = await http.options(path, headers=preflight(APP_ORIGIN))
    assert response.status_code == 405
    assert no_cors_headers(response)


@pytest.mark.parametrize("path", ["/.well-known/jwks.json",
                                  "/.well-known/oauth-authorization-server"])
async def test_public_documents_allow_any_origin_without_credentials(path: str) -> None:
    """The JWKS and the metadata answer ``*`` and never allow credentials."""
    async with client() as http:
        response = await http.get(path, headers={"Origin": OTHER_ORIGIN})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


async def test_a_public_document_carries_allow_origin_even_without_origin() -> None:
    """A copy fetched without ``Origin`` and kept by a shared cache still lets a page
    read it, since the answer does not depend on the request's origin."""
    async with client() as http:
        response = await http.get("/.well-known/jwks.json")
    assert response.headers["access-control-allow-origin"] == "*"


async def test_a_public_documents_preflight_allows_a_conditional_get() -> None:
    """A page may revalidate the JWKS with ``If-None-Match``; the preflight allows
    it, for any origin, without credentials."""
    async with client() as http:
        response = await http.options("/.well-known/jwks.json", headers=preflight(
            OTHER_ORIGIN, method="GET", headers="if-none-match"))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


async def test_an_error_answer_to_an_allowed_origin_carries_cors_headers() -> None:
    """A page must be able to read why it was refused: a 405 from a user endpoint
    still names the allowed origin."""
    async with client() as http:
        response = await http.get("/v1/login", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 405
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
