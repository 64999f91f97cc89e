"""RFC 9449 §7.2 in every Bearer integration of authd-verifier: a DPoP-bound token
(``cnf.jkt``) presented as ``Authorization: Bearer`` is refused as invalid_token,
while an unbound token still passes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

import httpx
from authd_verifier import Claims
from authd_verifier.fastapi import BearerAuth
from authd_verifier.middleware import BearerAuthMiddleware
from authd_verifier.testing import TokenMinter
from authd_verifier.wsgi import BearerAuthMiddleware as WsgiBearerAuthMiddleware
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

BOUND_TO = {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def asgi_status(minter: TokenMinter, token: str) -> int:
    app = Starlette(routes=[Route("/", ok)])
    app.add_middleware(BearerAuthMiddleware, verifier=minter.async_verifier())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://orders.test") as client:
        return (await client.get("/", headers={"Authorization": f"Bearer {token}"})).status_code


async def fastapi_status(minter: TokenMinter, token: str) -> int:
    auth = BearerAuth(minter.async_verifier())
    app = FastAPI()
    auth.install(app)

    dependency = auth.require_token()

    @app.get("/")
    async def route(claims: Claims = Depends(dependency)) -> dict[str, str]:  # noqa: B008
        return {"sub": claims.subject}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://orders.test") as client:
        return (await client.get("/", headers={"Authorization": f"Bearer {token}"})).status_code


def wsgi_status(minter: TokenMinter, token: str) -> int:
    def app(environ: MutableMapping[str, Any], start_response: Callable[..., Any]
            ) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    seen: list[str] = []
    middleware = WsgiBearerAuthMiddleware(app, minter.verifier())
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "HTTP_AUTHORIZATION": f"Bearer {token}"}
    b"".join(middleware(environ, lambda status, headers, *rest: seen.append(status)))
    return int(seen[0].split()[0])


async def test_the_asgi_middleware_refuses_a_bound_token_as_bearer(minter: TokenMinter) -> None:
    """BearerAuthMiddleware: bound → 401, unbound → 200."""
    assert await asgi_status(minter, minter.mint(cnf=BOUND_TO)) == 401
    assert await asgi_status(minter, minter.mint()) == 200


async def test_the_fastapi_dependency_refuses_a_bound_token_as_bearer(
    minter: TokenMinter,
) -> None:
    """BearerAuth.require_token: bound → 401, unbound → 200."""
    assert await fastapi_status(minter, minter.mint(cnf=BOUND_TO)) == 401
    assert await fastapi_status(minter, minter.mint()) == 200


def test_the_wsgi_middleware_refuses_a_bound_token_as_bearer(minter: TokenMinter) -> None:
    """The WSGI BearerAuthMiddleware: bound → 401, unbound → 200."""
    assert wsgi_status(minter, minter.mint(cnf=BOUND_TO)) == 401
    assert wsgi_status(minter, minter.mint()) == 200
