"""The one place typed errors become HTTP responses.

``/oauth/*`` answers RFC 6749 §5.2 JSON; everything else answers RFC 9457
``application/problem+json``. Unexpected exceptions are logged with their traceback
and answered with a generic 500 body that names nothing internal.
"""

from __future__ import annotations

import html
import json

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from service.errors import (
    AuthdError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    StorageConflict,
    TemporarilyUnavailable,
)
from service.http.pages import PAGE_HEADERS, is_page_path
from service.http.responses import NO_STORE
from service.store import IntegrityViolation, StorageUnavailable

log = structlog.get_logger("authd.http")

PROBLEM_TYPE = "urn:authd:problem:"


def is_oauth_path(path: str) -> bool:
    return path.startswith("/oauth/")


def error_response(exc: AuthdError, path: str) -> Response:
    headers = {**NO_STORE, **exc.headers}
    if is_page_path(path):
        return _page(exc.status, exc.title, exc.description, headers)
    if is_oauth_path(path):
        body: dict[str, object] = {"error": exc.code, "error_description": exc.description}
        media_type = "application/json"
    else:
        body = {
            "type": PROBLEM_TYPE + exc.code,
            "title": exc.title,
            "status": exc.status,
            "detail": exc.description,
        }
        media_type = "application/problem+json"
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status_code=exc.status,
        headers=headers,
        media_type=media_type,
    )


def _page(status: int, title: str, detail: str, headers: dict[str, str]) -> Response:
    """The console's errors as a page a person reads (same status as for a program)."""
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} · authd console</title>"
        '<link rel="stylesheet" href="/console/static/console.css"></head>'
        f'<body><main class="narrow"><h1>{html.escape(title)}</h1>'
        f'<p class="error" role="alert">{html.escape(detail)}</p>'
        '<p><a href="/console">Back to the console</a></p></main></body></html>'
    )
    return Response(body.encode(), status_code=status, headers={**headers, **PAGE_HEADERS},
                    media_type="text/html; charset=utf-8")


def log_failure(exc: AuthdError) -> None:
    """The one ``request.failed`` line, for every answered error that the operator
    must see: a 5xx, or one carrying a ``log_detail`` the client is not told. Both
    the Starlette handlers and the raw ASGI token endpoints call it."""
    if exc.status >= 500 or exc.log_detail:
        log.warning("request.failed", error=exc.code, detail=exc.log_detail or exc.description)


def storage_unavailable(exc: StorageUnavailable) -> TemporarilyUnavailable:
    """What a client is told when storage fails; the cause is for the log only."""
    log.error("storage.unavailable", error=str(exc))
    return TemporarilyUnavailable("storage is unavailable")


def storage_conflict(exc: IntegrityViolation) -> StorageConflict:
    """What a client is told when a constraint refused a write no domain answered:
    409; the constraint (never the row's values) is for the log only."""
    return StorageConflict(log_detail=str(exc))


async def handle_authd_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, AuthdError):
        raise exc
    log_failure(exc)
    return error_response(exc, request.url.path)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    mapped: AuthdError
    if status == 404:
        mapped = NotFound("no such resource")
    elif status == 405:
        mapped = MethodNotAllowed("method not allowed on this resource")
    elif status == 413:
        mapped = PayloadTooLarge()
    else:
        mapped = InvalidRequest()
        mapped.status = status
    # Starlette's own headers carry meaning: a 405 lists the methods in ``Allow``
    # (RFC 9110 §15.5.6), which a client needs to correct itself.
    if isinstance(exc, HTTPException) and exc.headers:
        mapped.headers.update(exc.headers)
    return error_response(mapped, request.url.path)


async def handle_storage_unavailable(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StorageUnavailable):
        raise exc
    return await handle_authd_error(request, storage_unavailable(exc))


async def handle_integrity_violation(request: Request, exc: Exception) -> Response:
    """A constraint violation no domain store answered itself: 409, never a 500."""
    if not isinstance(exc, IntegrityViolation):
        raise exc
    return await handle_authd_error(request, storage_conflict(exc))


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    return crashed(exc, request.url.path)


def crashed(exc: Exception, path: str) -> Response:
    """The one ``request.crashed`` line (with the traceback, in the log only) and the
    generic 500: Starlette's error middleware and the request context's answer for the
    endpoints dispatched past the router both come here."""
    log.exception("request.crashed", error_type=type(exc).__name__)
    return unexpected_response(path)


def unexpected_response(path: str) -> Response:
    """The generic 500: names nothing internal (the traceback is in the log only)."""
    body = {
        "type": PROBLEM_TYPE + "server_error",
        "title": "Internal error",
        "status": 500,
        "detail": "the request could not be completed",
    }
    if is_page_path(path):
        return _page(500, "Internal error", "the request could not be completed", NO_STORE)
    if is_oauth_path(path):
        oauth = {"error": "server_error", "error_description": "internal error"}
        return Response(json.dumps(oauth).encode(), 500, NO_STORE, "application/json")
    return Response(json.dumps(body).encode(), 500, NO_STORE, "application/problem+json")


EXCEPTION_HANDLERS = {
    AuthdError: handle_authd_error,
    HTTPException: handle_http_exception,
    StorageUnavailable: handle_storage_unavailable,
    IntegrityViolation: handle_integrity_violation,
    Exception: handle_unexpected,
}
