"""Reaching the process's Runtime, and the caller's address, from a request."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from starlette.requests import Request

if TYPE_CHECKING:
    from service.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    return cast("Runtime", request.state.runtime)


def client_ip(request: Request) -> str:
    """The peer address (proxy headers are honoured by uvicorn only from
    AUTHD_TRUSTED_PROXIES, so this cannot be spoofed by an untrusted peer)."""
    return request.client.host if request.client else "unknown"
