"""HSTS (RFC 6797) goes on every response exactly when the issuer is https."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from service.http.hsts import strict_transport_security


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello", headers={"X-Kept": "yes"})


def app() -> Starlette:
    return Starlette(routes=[Route("/", hello)])


async def get(asgi: ASGIApp, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=asgi)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        return await client.get(path)


async def test_https_issuer_adds_hsts_and_keeps_other_headers() -> None:
    """The wrapped app's responses keep their headers and gain Strict-Transport-Security."""
    wrapped = strict_transport_security(app(), issuer="https://auth.example.com")
    response = await get(wrapped, "/")
    assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert response.headers["x-kept"] == "yes"
    assert response.text == "hello"


async def test_https_issuer_adds_hsts_to_error_responses() -> None:
    """A 404 from the router carries HSTS too."""
    wrapped = strict_transport_security(app(), issuer="https://auth.example.com")
    response = await get(wrapped, "/missing")
    assert response.status_code == 404
    assert "strict-transport-security" in response.headers


def test_http_issuer_leaves_the_app_unwrapped() -> None:
    """An http:// issuer returns the very same app: no header, no per-request cost."""
    inner = app()
    assert strict_transport_security(inner, issuer="http://127.0.0.1:8000") is inner
