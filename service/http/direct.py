"""The hot paths dispatched straight to their endpoints (DESIGN §7).

Starlette's router finds a route by trying each in turn, a regular expression apiece,
and its exception middleware wraps every call; for the endpoints that carry a
deployment's load — the two token endpoints and the JWKS — that is a measurable part
of the few tens of microseconds a request may spend outside the signature. These
endpoints are raw ASGI callables that answer every typed error themselves
(``service/http/oauth.py``), so nothing is lost by calling them from an exact
``(method, path)`` lookup, the last middleware before the router. The route is
recorded in the scope as the router records it, so the access line and the metrics
name it the same way. Every other request, and these paths with another method (the
router's 405 with its ``Allow`` header, ``HEAD``), goes through the router as before;
an unexpected exception still reaches Starlette's outermost error middleware.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.http.middleware import remember_top_level


def direct_routes(app: ASGIApp, *, routes: Iterable[BaseRoute],
                  paths: Collection[str]) -> ASGIApp:
    """``app`` with the raw-ASGI routes of ``paths`` called without the router."""
    table: dict[tuple[str, str], tuple[Route, ASGIApp]] = {}
    for route in routes:
        if not (isinstance(route, Route) and route.path in paths and route.methods):
            continue
        if route.endpoint is not route.app:  # a Starlette view, not a raw ASGI endpoint
            continue
        remember_top_level(route)
        for method in route.methods - {"HEAD"}:
            table[(method, route.path)] = (route, route.app)
    return _DirectRoutes(app, table) if table else app


class _DirectRoutes:
    def __init__(self, app: ASGIApp,
                 table: dict[tuple[str, str], tuple[Route, ASGIApp]]) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.table.get((scope.get("method", ""), scope.get("path", "")))
        if found is None:
            await self.app(scope, receive, send)
            return
        route, endpoint = found
        scope["route"] = route
        scope["endpoint"] = endpoint
        scope["path_params"] = {}
        await endpoint(scope, receive, send)
