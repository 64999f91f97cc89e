"""Load shedding: a bound on the requests one worker has in flight (DESIGN §7).

Past the bound (``AUTHD_MAX_IN_FLIGHT``, per worker process) a request is answered
503 with ``Retry-After`` at once, before any work is done for it, instead of joining
a queue whose wait grows without limit: a client (or its load balancer) learns in
microseconds that it should go elsewhere or come back, and the requests already
admitted keep their latency. ``/.well-known/jwks.json``, ``/healthz``, ``/readyz``
and ``/metrics`` are never shed: verifiers, orchestrators and Prometheus need them
most when the service is saturated, and they cost no signature or storage.

What counts against the bound is the work ahead of a request in this worker: the
requests in flight (started, not answered: waiting on storage, say) plus those answered
earlier in the same turn of the event loop. The second part is what makes the bound
see a backlog: a token request never waits on I/O once its key is cached, so each one
runs to its end before the next starts and the in-flight count alone never passes 1,
while the backlog waits unseen in the loop's ready queue (512 connections meant 512
requests queued behind one another, p50 0.6 s, measured). Every request parsed in one
turn of the loop is started in the next one, one after another; the n-th of them waits
for the n-1 before it, so the count of those answered before it in the turn is its
queue position, and past the bound it is answered 503 at once. A callback scheduled
for the next turn (once a turn, by the first request answered in it) starts the count
again. An earlier version yielded to the loop once per admitted request so that the
whole batch was counted before any of it ran; that cost a task step (~15 µs) on every
token request, this costs one ``call_soon`` per turn.

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
        # Requests answered so far in this turn of the event loop, and whether the
        # callback that resets it at the next turn is scheduled.
        self.answered_this_turn = 0
        self._turn_pending = False
        self._oauth_answer = _prepared("/oauth/token")
        self._problem_answer = _prepared("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in NEVER_SHED:
            await self.app(scope, receive, send)
            return
        if self.in_flight + self.answered_this_turn >= self.max_in_flight:
            REQUESTS_SHED.inc()
            start, body = (self._oauth_answer if is_oauth_path(scope["path"])
                           else self._problem_answer)
            await send({**start, "headers": list(start["headers"])})  # a copy to mutate
            await send(body)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.answered_this_turn += 1
            if not self._turn_pending:
                self._turn_pending = True
                asyncio.get_running_loop().call_soon(self._next_turn)

    def _next_turn(self) -> None:
        self.answered_this_turn = 0
        self._turn_pending = False
