"""A tiny in-process app assembled exactly like the service's (same middleware, same
exception table), with a few routes that exercise the shared HTTP plumbing."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import InvalidClient
from service.http.direct import direct_routes
from service.http.errors import EXCEPTION_HANDLERS
from service.http.middleware import RequestContextMiddleware
from service.http.requests import read_form, read_json
from service.store import StorageUnavailable, UniqueViolation

MAX_BODY = 2048


async def echo_json(request: Request) -> Response:
    return JSONResponse(await read_json(request))


async def echo_form(request: Request) -> Response:
    return JSONResponse(await read_form(request))


async def item(request: Request) -> Response:
    return JSONResponse({"id": next(iter(request.path_params.values()))})


async def crash(request: Request) -> Response:
    raise RuntimeError("internal detail /srv/secret/path")


async def storage_down(request: Request) -> Response:
    raise StorageUnavailable("PostgreSQL is unreachable")


async def constraint(request: Request) -> Response:
    raise UniqueViolation("clients", ("name",))


async def bad_client(request: Request) -> Response:
    raise InvalidClient("unknown client")


class CrashingEndpoint:
    """A raw ASGI endpoint, dispatched past the router as the hot paths are."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("internal detail /srv/secret/path")


DIRECT = frozenset({"/oauth/direct-crash"})


def build_app() -> ASGIApp:
    """Composed as service/app.py composes the service's layers."""
    admin = [Route("/clients/{client_id}", item, methods=["GET"])]
    routes = [
        Route("/json", echo_json, methods=["POST"]),
        Route("/form", echo_form, methods=["POST"]),
        Route("/oauth/form", echo_form, methods=["POST"]),
        Route("/items/{item_id}", item, methods=["GET"]),
        Route("/crash", crash, methods=["GET"]),
        Route("/oauth/crash", crash, methods=["GET"]),
        Route("/storage", storage_down, methods=["GET"]),
        Route("/constraint", constraint, methods=["POST"]),
        Route("/oauth/client", bad_client, methods=["POST"]),
        Mount("/admin", routes=admin),
        Route("/oauth/direct-crash", CrashingEndpoint(), methods=["POST"]),
    ]
    routed = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)
    return RequestContextMiddleware(direct_routes(routed, routes=routes, paths=DIRECT),
                                    max_body_bytes=MAX_BODY)


def client(**kw: Any) -> httpx.AsyncClient:
    """An HTTP client speaking to ``build_app()`` in-process; server errors come back
    as responses, as they would from uvicorn, rather than being raised."""
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://authd.test", **kw)
