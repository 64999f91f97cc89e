"""The application factory: Starlette routes behind the layers every request passes."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from service.config import Settings
from service.http import health
from service.http.cors import browser_cors
from service.http.direct import direct_routes
from service.http.errors import EXCEPTION_HANDLERS
from service.http.hsts import strict_transport_security
from service.http.listeners import split_listeners
from service.http.middleware import RequestContextMiddleware
from service.http.pages import PageHeaders
from service.http.shedding import InFlightLimit
from service.observability.logging import configure
from service.observability.tracing import Tracing, request_spans
from service.runtime import open_runtime
from service.workers import WORKER_INDEX_VARIABLE

# The hot paths (DESIGN §7) skip the router (service/http/direct.py); Starlette tries
# routes in order, and they come first there too, for the methods not sent directly.
HOT_PATHS = ("/oauth/token", "/v1/token", "/.well-known/jwks.json")


def all_routes() -> list[BaseRoute]:
    from service.wiring import domain_routes

    routes = [*health.routes, *domain_routes()]
    routes.sort(key=lambda route: _hot_rank(getattr(route, "path", "")))
    return routes


YOUNG_GC_THRESHOLD = 10_000


def _hot_rank(path: str) -> int:
    return HOT_PATHS.index(path) if path in HOT_PATHS else len(HOT_PATHS)


def create_app(settings: Settings, *, worker: str = "0", freeze_heap: bool = False) -> ASGIApp:
    """The application one worker process serves; ``worker`` is its index under
    ``authd serve --workers N`` (service/workers.py), a label of its request count.

    ``freeze_heap`` (``authd serve``): once started, everything alive (modules, routes,
    the runtime and its caches) leaves the garbage collector's view (``gc.freeze``).
    Each full collection otherwise walked that whole heap again, some 40 ms with every
    other request waiting, every few thousand requests (issue 15). And the youngest
    generation is collected every ``YOUNG_GC_THRESHOLD`` allocations rather than 700:
    a request's objects are freed by reference counting, and those collections, one
    every ~100 requests, found about one cyclic object in a hundred requests while
    walking every request in flight (~1 % of a token's instructions outside the
    signature). Not for an app built and dropped many times in one process (tests):
    what it freezes is never freed."""

    routes = all_routes()
    # Made here, in the process that serves (each worker's own, after it started).
    tracing = Tracing.start(settings.tracing)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        try:
            tracer = None if tracing is None else tracing.tracer
            async with open_runtime(settings, serving=True, tracer=tracer) as runtime:
                if freeze_heap:
                    gc.collect()
                    gc.freeze()
                    gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])
                yield {"runtime": runtime}
        finally:
            if tracing is not None:
                tracing.shutdown()  # flushes the spans of the last requests

    routed = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS,
                       lifespan=lifespan)
    # The layers every request passes, innermost first. They are composed here rather
    # than as Starlette middleware so that the hot paths (direct.py) leave Starlette
    # out entirely; every layer passes the lifespan through to it.
    app: ASGIApp = direct_routes(routed, routes=routes, paths=HOT_PATHS)
    # Inside the request context, so a preflight gets a request id and an access line
    # too; nothing at all when AUTHD_CORS_ORIGINS is unset.
    app = browser_cors(app, routes=routes, origins=settings.cors_origins)
    app = RequestContextMiddleware(app, max_body_bytes=settings.max_body_bytes,
                                   worker=worker)
    app = split_listeners(app, admin_port=None if settings.admin_listen is None
                          else settings.admin_listen[1])
    # Outside the request context: a shed answer costs no access line, request id or
    # histogram sample, so that shedding stays cheap under a flood; sheds are counted
    # in authd_requests_shed_total instead.
    app = InFlightLimit(app, max_in_flight=settings.max_in_flight)
    app = PageHeaders(app)
    app = strict_transport_security(app, issuer=settings.issuer)
    # Outermost: the span covers every answer, shed ones too; nothing at all when
    # tracing is off (service/observability/tracing.py).
    return request_spans(app, tracing=tracing)


def create_app_from_env() -> ASGIApp:
    """Entry point for uvicorn workers: settings were validated by ``authd serve``."""
    settings = Settings.from_env(os.environ)
    configure(settings.log_format, settings.log_level)
    return create_app(settings, worker=os.environ.get(WORKER_INDEX_VARIABLE, "0"),
                      freeze_heap=True)
