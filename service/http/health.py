"""Liveness, readiness and the metrics exposition."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.http.context import runtime_of
from service.observability.metrics import render

# /readyz answers within a second whatever its dependencies do (DESIGN §2): a check
# still running after this long counts as down, so a frozen database reads as 503.
READY_TIMEOUT = 0.8
RETRY_AFTER = "1"


class _Probes:
    """The checks in flight, one per dependency. A check that hangs past the timeout
    keeps running (until its own bounded wait ends) and the next probe waits on that
    same task instead of starting another: probes never pile up on a frozen server."""

    def __init__(self) -> None:
        self.running: dict[str, asyncio.Task[None]] = {}

    def task(self, name: str, check: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        task = self.running.get(name)
        if task is None or task.done():
            task = asyncio.ensure_future(check())
            task.add_done_callback(_observed)
            self.running[name] = task
        return task


def _observed(task: asyncio.Task[None]) -> None:
    """Read a finished check's outcome, so that a failure nobody waited for is not
    reported as a never-retrieved exception."""
    if not task.cancelled():
        task.exception()


def _probes(request: Request) -> _Probes:
    state = request.app.state
    if not hasattr(state, "readiness_probes"):
        state.readiness_probes = _Probes()
    probes: _Probes = state.readiness_probes
    return probes


async def healthz(request: Request) -> Response:
    """The process is alive and its event loop answers; nothing else is checked."""
    return Response(b'{"status":"ok"}', media_type="application/json",
                    headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    """Ready when every dependency answers: storage, Redis if configured, and what
    the domains register (an active signing key). The checks run concurrently, each
    bounded by READY_TIMEOUT; a 503 names what is down and carries Retry-After."""
    runtime = runtime_of(request)
    probes = _probes(request)
    tasks = {name: probes.task(name, check) for name, check in runtime.readiness.items()}
    if tasks:
        await asyncio.wait(tasks.values(), timeout=READY_TIMEOUT)
    down = [name for name, task in tasks.items()
            if not task.done() or task.cancelled() or task.exception() is not None]
    headers = {"Cache-Control": "no-store"}
    if not down:
        body = {"status": "ready", "checks": {name: "ok" for name in tasks}}
        return Response(json.dumps(body).encode(), 200, headers, "application/json")
    problem = {
        "type": "urn:authd:problem:not_ready",
        "title": "Not ready",
        "status": 503,
        "detail": "unavailable: " + ", ".join(down),
        "checks": {name: ("down" if name in down else "ok") for name in tasks},
    }
    return Response(json.dumps(problem).encode(), 503, {**headers, "Retry-After": RETRY_AFTER},
                     "application/problem+json")


async def metrics(request: Request) -> Response:
    body, content_type = render()
    return Response(body, media_type=content_type.split(";")[0],
                    headers={"Content-Type": content_type})


routes: list[BaseRoute] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
