"""Liveness, readiness and the metrics exposition."""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.http.context import runtime_of
from service.observability.metrics import render

READY_TIMEOUT = 2.0


async def healthz(request: Request) -> Response:
    """The process is alive and its event loop answers; nothing else is checked."""
    return Response(b'{"status":"ok"}', media_type="application/json",
                    headers={"Cache-Control": "no-store"})


async def readyz(request: Request) -> Response:
    """Ready when every dependency answers: storage, Redis if configured, and what
    the domains register (an active signing key). A 503 names what is down."""
    runtime = runtime_of(request)
    names = list(runtime.readiness)
    results = await asyncio.gather(
        *(asyncio.wait_for(runtime.readiness[n](), READY_TIMEOUT) for n in names),
        return_exceptions=True,
    )
    down = [name for name, result in zip(names, results, strict=True)
            if isinstance(result, BaseException)]
    headers = {"Cache-Control": "no-store"}
    if not down:
        body = {"status": "ready", "checks": {name: "ok" for name in names}}
        return Response(json.dumps(body).encode(), 200, headers, "application/json")
    problem = {
        "type": "urn:authd:problem:not_ready",
        "title": "Not ready",
        "status": 503,
        "detail": "unavailable: " + ", ".join(down),
        "checks": {name: ("down" if name in down else "ok") for name in names},
    }
    return Response(json.dumps(problem).encode(), 503, headers, "application/problem+json")


async def metrics(request: Request) -> Response:
    body, content_type = render()
    return Response(body, media_type=content_type.split(";")[0],
                    headers={"Content-Type": content_type})


routes: list[BaseRoute] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
