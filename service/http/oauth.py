"""``POST /oauth/token`` (RFC 6749 §3.2): one endpoint, dispatched on ``grant_type``.

Each domain registers the grants it implements into ``token_endpoint`` from its
wiring block (``register_grant("client_credentials", fn)``, ``("refresh_token", fn)``);
an unregistered grant is ``unsupported_grant_type``. A grant handler receives the
parsed request and returns the JSON body of the 200 answer (RFC 6749 §5.1); it raises
an AuthdError for anything else.

The endpoint is a plain ASGI callable rather than a Starlette view because it is the
hot path of the service (DESIGN §7): it reads the headers it needs from the raw ASGI
scope once, parses the form body itself (strictly: one content type, UTF-8, no
repeated parameter — §3.2), and answers with prepared header lists. Errors are RFC 6749
§5.2 JSON with ``Cache-Control: no-store``; ``/v1/token`` reuses the same helpers.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import (
    AuthdError,
    InvalidRequest,
    PayloadTooLarge,
    TemporarilyUnavailable,
    UnsupportedGrantType,
)
from service.observability.metrics import (
    HTTP_DURATION,
    HTTP_REQUESTS,
    TOKEN_REQUESTS_FAILED,
    TOKENS_ISSUED,
)
from service.store import StorageUnavailable

if TYPE_CHECKING:
    from service.runtime import Runtime

FORM = b"application/x-www-form-urlencoded"
# A token request body is a few hundred bytes; this bound applies before the
# deployment's AUTHD_MAX_BODY_BYTES, whichever is smaller.
MAX_BODY = 16384
JSON_TYPE = b"application/json"
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]+")
_log = structlog.get_logger("authd.access")

_TOKEN_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
]


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What a grant handler sees of a token request."""

    runtime: Runtime
    form: Mapping[str, str]
    authorization: str | None
    ip: str


GrantHandler = Callable[[TokenRequest], Awaitable[bytes]]


@dataclass(slots=True)
class RawRequest:
    """The parts of an ASGI request the token endpoints read, gathered in one pass."""

    headers: dict[bytes, str]
    duplicated: bool
    content_type: bytes
    body: bytes
    ip: str


async def read_request(
    scope: Scope, receive: Receive, wanted: frozenset[bytes], max_body: int = MAX_BODY
) -> RawRequest:
    headers: dict[bytes, str] = {}
    duplicated = False
    content_type = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.split(b";", 1)[0].strip().lower()
        elif name in wanted:
            if name in headers:
                duplicated = True
            # latin-1 maps every byte to one character: non-ASCII input survives to
            # be refused by the checks that follow, never to crash a decoder here.
            headers[name] = value.decode("latin-1")
    chunks = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise PayloadTooLarge(f"the body exceeds {max_body} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    client = scope.get("client")
    return RawRequest(headers, duplicated, content_type, b"".join(chunks),
                      client[0] if client else "unknown")


def parse_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, strictly (RFC 6749 §3.2)."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the form body is not valid UTF-8 url-encoding") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        if key in form:
            raise InvalidRequest(f"parameter {key} appears more than once")
        form[key] = value
    return form


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    return data


async def send_token(send: Send, body: bytes) -> None:
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [*_TOKEN_HEADERS, (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, exc: AuthdError) -> None:
    """RFC 6749 §5.2 (status and challenge from the error class)."""
    body = json.dumps(
        {"error": exc.code, "error_description": exc.description}, separators=(",", ":")
    ).encode()
    headers = [*_TOKEN_HEADERS, (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TokenEndpoint:
    """The ASGI app of ``POST /oauth/token``."""

    _WANTED = frozenset({b"authorization"})

    def __init__(self) -> None:
        self._grants: dict[str, GrantHandler] = {}

    def register(self, grant_type: str, handler: GrantHandler) -> None:
        self._grants[grant_type] = handler

    @property
    def grant_types(self) -> list[str]:
        return sorted(self._grants)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        grant_label = "unknown"
        try:
            request = await read_request(scope, receive, self._WANTED)
            if request.duplicated:
                raise InvalidRequest("the Authorization header appears more than once")
            if request.content_type != FORM:
                raise InvalidRequest("the body must be application/x-www-form-urlencoded")
            form = parse_form(request.body)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise InvalidRequest("grant_type is required")
            handler = self._grants.get(grant_type)
            if handler is None:
                raise UnsupportedGrantType(f"grant_type {grant_type[:40]!r} is not supported")
            grant_label = grant_type
            body = await handler(TokenRequest(
                runtime=scope["state"]["runtime"], form=form,
                authorization=request.headers.get(b"authorization"), ip=request.ip,
            ))
        except AuthdError as exc:
            TOKEN_REQUESTS_FAILED.labels(grant_label, exc.code).inc()
            await send_error(send, exc)
            return
        TOKENS_ISSUED.labels(grant_label).inc()
        await send_token(send, body)


token_endpoint = TokenEndpoint()


def register_grant(grant_type: str, handler: GrantHandler) -> None:
    """Let a domain answer ``grant_type`` at ``/oauth/token`` (call from wiring)."""
    token_endpoint.register(grant_type, handler)


class TokenFastPath:
    """An ASGI wrapper that sends ``POST`` to the token endpoints straight to them,
    around Starlette's routing and the generic request middleware.

    Why: on the exchange path the RSA signature should be nearly all the CPU a token
    costs (DESIGN §7), and the generic stack (routing, per-request structlog access
    line, uuid request id, middleware layers) costs about half a signature. This
    wrapper keeps what an operator needs from that stack at a fraction of the cost:
    the body limit, an ``X-Request-Id`` (echoed when valid, else a random one),
    ``authd_http_requests_total`` and the duration histogram under the route
    template, an access line for every refused request (successes are counted and
    audited in aggregate by the domain), and 503/500 answers that name nothing
    internal. Every other request passes through untouched.
    """

    def __init__(self, app: ASGIApp, endpoints: Mapping[str, ASGIApp], *, max_body: int) -> None:
        self.app = app
        self._endpoints = dict(endpoints)
        self._max_body = min(max_body, MAX_BODY)
        self._requests: dict[tuple[str, int], Any] = {}
        self._durations = {path: HTTP_DURATION.labels(path, "POST") for path in endpoints}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = None
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self._endpoints.get(scope["path"])
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        request_id = _request_id(scope)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message["headers"], (b"x-request-id", request_id)]
            await send(message)

        try:
            if _content_length(scope) > self._max_body:
                await send_error(send_with_id, PayloadTooLarge(
                    f"the body exceeds {self._max_body} bytes"))
            else:
                await endpoint(scope, receive, send_with_id)
        except StorageUnavailable:
            await send_error(send_with_id, TemporarilyUnavailable("storage is unavailable"))
        except Exception:
            _log.exception("request.crashed", route=path)
            await send_error(send_with_id, _ServerError())
        finally:
            counter = self._requests.get((path, status))
            if counter is None:
                counter = self._requests[(path, status)] = HTTP_REQUESTS.labels(
                    path, "POST", str(status))
            counter.inc()
            elapsed = time.perf_counter() - started
            self._durations[path].observe(elapsed)
            if status != 200:
                _log.info("request", method="POST", route=path, status=status,
                          duration_ms=round(elapsed * 1000, 2),
                          request_id=request_id.decode())


class _ServerError(AuthdError):
    status = 500
    code = "server_error"
    title = "internal error"


def _request_id(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if 0 < len(value) <= 128 and _REQUEST_ID.fullmatch(value):
                return bytes(value)
            break
    return os.urandom(12).hex().encode()


def _content_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def fast_token_paths(app: ASGIApp, max_body: int) -> TokenFastPath:
    """Wrap ``app`` so the token endpoints take the short way (see TokenFastPath)."""
    from service.apikeys.handlers import ApiKeyTokenEndpoint

    return TokenFastPath(
        app, {"/oauth/token": token_endpoint, "/v1/token": ApiKeyTokenEndpoint()},
        max_body=max_body,
    )


def create_app_from_env() -> ASGIApp:
    """``service.app.create_app_from_env`` with the token fast path in front: the
    uvicorn factory the lead may adopt in ``service/app.py`` (one line); until then
    the token endpoints run as ordinary routes under the generic middleware."""
    from service.app import create_app_from_env as create_service_app
    from service.config import Settings

    return fast_token_paths(
        create_service_app(), Settings.from_env(os.environ).max_body_bytes
    )
