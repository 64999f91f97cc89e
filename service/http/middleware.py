"""The one pure-ASGI middleware every request passes: request id, body limit,
access log line, HTTP metrics.

Pure ASGI rather than BaseHTTPMiddleware because it sits on the token hot path and
must see the route template the router resolves (``scope["route"]``), which is only
known after the inner app ran.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Awaitable, Sequence

from prometheus_client import Counter, Histogram
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge
from service.http.errors import crashed, error_response
from service.observability.logging import REQUEST_ID, write_access_line
from service.observability.metrics import (
    HTTP_DURATION,
    HTTP_REQUESTS,
    TALLY,
    WORKER_REQUESTS,
    LabelledChildren,
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _RequestIds:
    """Fresh request ids: unique, not secret. A random prefix per process (drawn again
    after a fork) and a counter, 32 hex characters like the 16 random bytes they
    replace, without a ``getrandom`` system call on every request."""

    def __init__(self) -> None:
        self.restart()
        os.register_at_fork(after_in_child=self.restart)

    def restart(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._next = itertools.count()

    def new(self) -> str:
        return "%s%016x" % (self._prefix, next(self._next))  # noqa: UP031 - faster here


_request_ids = _RequestIds()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, worker: str = "0") -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self._worker_requests = WORKER_REQUESTS.labels(worker)
        # Bounded: templates and statuses are, and httptools knows a fixed set of methods.
        self._series: LabelledChildren[tuple[str, str, int], tuple[Counter, Histogram]] = (
            LabelledChildren(_http_series))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        incoming_id, declared = _read_headers(scope)
        request_id = incoming_id or _request_ids.new()
        scope.setdefault("state", {})["request_id"] = request_id
        header_id = request_id.encode()
        status = 500
        response_started = False

        # A plain function handing back the server's own awaitable: a coroutine of ours
        # around it would cost a frame per message on every response.
        def send_wrapper(message: Message) -> Awaitable[None]:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", header_id)]
            return send(message)

        REQUEST_ID.set(request_id)
        try:
            if declared is not None and declared > self.max_body_bytes:
                await self._too_large(scope, send_wrapper)
            else:
                try:
                    await self.app(scope, receive if declared is not None else
                                   self._limited(receive), send_wrapper)
                except Exception as exc:
                    # The routes behind the router got their 500 from Starlette's error
                    # middleware; the ones dispatched directly (direct.py) get it here.
                    if response_started:
                        raise
                    await crashed(exc, path)(scope, _no_body, send_wrapper)
                    raise
        finally:
            template = route_template(scope, path)
            elapsed = time.perf_counter() - started
            method = scope["method"]
            requests, duration = self._series[template, method, status]
            TALLY.inc(requests)
            TALLY.observe(duration, elapsed)
            TALLY.inc(self._worker_requests)
            # Milliseconds to two places, half up (``round`` costs twice as much).
            write_access_line(method, template, status, int(elapsed * 100_000 + 0.5) / 100)
            # The request id stays set: a crash that escapes (uvicorn logs it after
            # this block) must carry the id too. The next request sets its own.

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` counting the body as it arrives. With a declared length the
        server reads exactly that many bytes as the body (more would be the next
        request), so only a body without one (chunked) needs it."""
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # A typed error, answered by whoever reads the body: the exception
                    # table behind the router, a raw endpoint's own RFC 6749 answer.
                    raise PayloadTooLarge(f"the body exceeds {self.max_body_bytes} bytes",
                                          headers={"Connection": "close"})
            return message

        return receive_limited

    async def _too_large(self, scope: Scope, send: Send) -> None:
        """Answer 413 without reading the rest of the body (the server then closes)."""
        response = error_response(
            PayloadTooLarge(f"the body exceeds {self.max_body_bytes} bytes"), scope["path"]
        )
        response.headers["Connection"] = "close"
        await response(scope, _no_body, send)


def _http_series(labels: tuple[str, str, int]) -> tuple[Counter, Histogram]:
    """Both HTTP series of (route template, method, status); ``labels()`` writes the
    status as its string."""
    return HTTP_REQUESTS.labels(*labels), HTTP_DURATION.labels(*labels)


UNMATCHED = "<unmatched>"
# Top-level routes live as long as the app: their template is found once. Keyed by
# id (a Route is unhashable) with the route itself kept beside its template, so an id
# is never reused by another route while its entry exists (apps built in tests).
_TOP_LEVEL: dict[int, tuple[BaseRoute, str]] = {}


def remember_top_level(route: BaseRoute) -> None:
    """Record ``route`` as top-level: its own ``path`` is its template (for routes
    dispatched without the router, ``service/http/direct.py``)."""
    _TOP_LEVEL[id(route)] = (route, str(getattr(route, "path", UNMATCHED)))


def route_template(scope: Scope, path: str) -> str:
    """The template of the route that answered (``/admin/clients/{id}``), never the
    raw path, so metric labels and log fields stay bounded and hold no identifier.

    A top-level route's own ``path`` is its template. Under a ``Mount`` the router
    records only the innermost route, whose ``path`` is relative to the mount, so the
    chain is matched again from the top to put the prefixes back in front.
    """
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    known = _TOP_LEVEL.get(id(route))
    if known is not None:
        return known[1]
    router = scope.get("router")
    top = getattr(router, "routes", ())
    if any(candidate is route for candidate in top):
        remember_top_level(route)
        return str(getattr(route, "path", UNMATCHED))
    original = {**scope, "path": path, "root_path": scope.get("app_root_path", ""),
                "path_params": {}}
    found = _template_under(top, original)
    return found or UNMATCHED


def _template_under(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    partial: str | None = None
    for candidate in routes:
        match, child = candidate.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(candidate, Mount):
            inner = _template_under(candidate.routes, {**scope, **child})
            found = None if inner is None else candidate.path + inner
        else:
            found = str(getattr(candidate, "path", "")) or None
        if match is Match.FULL and found is not None:
            return found
        partial = partial or found
    return partial


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def _read_headers(scope: Scope) -> tuple[str | None, int | None]:
    """The incoming request id (when well formed) and the declared body length (None
    when absent or not a number), in one pass over the headers."""
    request_id: str | None = None
    declared: int | None = None
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            request_id = text if _REQUEST_ID.match(text) else None
        elif name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                declared = None
    return request_id, declared
