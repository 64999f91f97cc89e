"""Load shedding: a bound on the requests one worker has in flight (DESIGN §7).

Past the bound (``AUTHD_MAX_IN_FLIGHT``, per worker process) a request is answered
503 with ``Retry-After`` at once, before any work is done for it, instead of joining
a queue whose wait grows without limit: a client (or its load balancer) learns in
microseconds that it should go elsewhere or come back, and the requests already
admitted keep their latency. ``/.well-known/jwks.json``, ``/healthz``, ``/readyz``
and ``/metrics`` are never shed: verifiers, orchestrators and Prometheus need them
most when the service is saturated, and they cost no signature or storage.

A request is in flight from the moment its task first runs until its answer is sent.
An admitted request yields to the event loop once before it does any work: a token
request never waits on I/O once its key is cached, so without the yield each one ran to
its end before the next was even counted, the count never passed 1, and the backlog
grew unseen in the loop's ready queue (512 connections meant 512 requests queued behind
one another, p50 0.6 s, measured). With the yield, every request parsed in one turn of
the loop is counted before any of them signs, so those past the bound are answered in
that same turn, at once. It costs one extra task step per request.

uvicorn's own ``limit_concurrency`` is not used: it counts open connections as well as
requests (idle keep-alive connections would trigger it), exempts no path and sends no
``Retry-After``.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import Overloaded
from service.http.errors import error_response, is_oauth_path
from service.observability.metrics import REQUESTS_SHED

# Verifiers find the JWKS through the metadata document (RFC 8414): both stay reachable.
NEVER_SHED = frozenset({"/.well-known/jwks.json", "/.well-known/oauth-authorization-server",
                        "/healthz", "/readyz", "/metrics"})


def _prepared(path: str) -> tuple[Message, Message]:
    """The shed answer for ``path``'s kind (RFC 6749 on /oauth/*, a problem elsewhere),
    built once: the body names no path, so one answer of each kind serves them all."""
    response = error_response(Overloaded(), path)
    return ({"type": "http.response.start", "status": response.status_code,
             "headers": response.raw_headers},
            {"type": "http.response.body", "body": response.body})


class InFlightLimit:
    def __init__(self, app: ASGIApp, *, max_in_flight: int) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._oauth_answer = _prepared("/oauth/token")
        self._problem_answer = _prepared("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in NEVER_SHED:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            REQUESTS_SHED.inc()
            start, body = (self._oauth_answer if is_oauth_path(scope["path"])
                           else self._problem_answer)
            await send({**start, "headers": list(start["headers"])})  # a copy to mutate
            await send(body)
            return
        self.in_flight += 1
        try:
            await asyncio.sleep(0)
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
