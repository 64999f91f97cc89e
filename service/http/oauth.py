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
§5.2 JSON with ``Cache-Control: no-store`` (storage failures included, as
``temporarily_unavailable``), logged like every other error (``http.errors.log_failure``);
``/v1/token`` reuses the same helpers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import Counter
from starlette.types import Receive, Scope, Send

from service.errors import (
    AuthdError,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedGrantType,
)
from service.http.errors import log_failure, storage_conflict, storage_unavailable
from service.http.requests import parse_form
from service.observability.metrics import (
    TALLY,
    TOKEN_REQUESTS_FAILED,
    TOKENS_ISSUED,
    LabelledChildren,
)
from service.store import IntegrityViolation, StorageUnavailable

if TYPE_CHECKING:
    from service.runtime import Runtime

FORM = b"application/x-www-form-urlencoded"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path
# A token request body is a few hundred bytes; this bound applies before the
# deployment's AUTHD_MAX_BODY_BYTES, whichever is smaller.
MAX_BODY = 16384
JSON_TYPE = b"application/json"

_TOKEN_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
]


@dataclass(slots=True)  # built per request: frozen costs ~2 µs of object.__setattr__
class TokenRequest:
    """What a grant handler sees of a token request."""

    runtime: Runtime
    form: Mapping[str, str]
    authorization: str | None
    ip: str
    # RFC 9449: the thumbprint of a valid DPoP proof's key, to bind what is issued.
    dpop_jkt: str | None = None


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


async def send_token(send: Send, body: bytes) -> None:
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [*_TOKEN_HEADERS, (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


# What a token endpoint answers as an RFC 6749 error rather than letting it escape.
ANSWERABLE = (AuthdError, StorageUnavailable, IntegrityViolation)


def token_error(exc: AuthdError | StorageUnavailable | IntegrityViolation) -> AuthdError:
    """The typed error a token endpoint answers with (a storage failure becomes RFC
    6749 ``temporarily_unavailable``, not the problem+json of the other routes)."""
    if isinstance(exc, StorageUnavailable):
        return storage_unavailable(exc)
    if isinstance(exc, IntegrityViolation):
        return storage_conflict(exc)
    return exc


async def send_error(send: Send, exc: AuthdError) -> None:
    """RFC 6749 §5.2 (status and challenge from the error class), logged as every
    answered error is."""
    log_failure(exc)
    body = json.dumps(
        {"error": exc.code, "error_description": exc.description}, separators=(",", ":")
    ).encode()
    headers = [*_TOKEN_HEADERS, (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TokenEndpoint:
    """The ASGI app of ``POST /oauth/token``."""

    _WANTED = frozenset({b"authorization", b"dpop"})

    def __init__(self) -> None:
        self._grants: dict[str, GrantHandler] = {}
        # Keyed by grant_type: only registered grants get past the dispatch below.
        self._issued: LabelledChildren[str, Counter] = LabelledChildren(TOKENS_ISSUED.labels)

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
                raise InvalidRequest("the Authorization or DPoP header appears more than once")
            if request.content_type != FORM:
                raise InvalidRequest("the body must be application/x-www-form-urlencoded")
            form = parse_form(request.body)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise InvalidRequest("grant_type is required")
            handler = self._grants.get(grant_type)
            if handler is None:
                raise UnsupportedGrantType(f"grant_type {grant_type[:40]!r} is not supported")
            grant_label = scope["state"]["grant"] = grant_type  # the trace's authd.grant
            runtime = scope["state"]["runtime"]
            proof = request.headers.get(b"dpop")
            body = await handler(TokenRequest(
                runtime=runtime, form=form,
                authorization=request.headers.get(b"authorization"), ip=request.ip,
                dpop_jkt=None if proof is None else await runtime.dpop.bind(
                    proof, method="POST", path=TOKEN_PATH),
            ))
        except ANSWERABLE as failure:
            exc = token_error(failure)
            TOKEN_REQUESTS_FAILED.labels(grant_label, exc.code).inc()
            await send_error(send, exc)
            return
        TALLY.inc(self._issued[grant_label])
        await send_token(send, body)


token_endpoint = TokenEndpoint()


def register_grant(grant_type: str, handler: GrantHandler) -> None:
    """Let a domain answer ``grant_type`` at ``/oauth/token`` (call from wiring)."""
    token_endpoint.register(grant_type, handler)
