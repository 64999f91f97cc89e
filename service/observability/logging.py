"""structlog set-up with a redaction step that every log line passes through.

Redaction works twice over: by key (anything named like a credential is replaced
whatever its value) and by shape (an API key, refresh token, JWT or PEM block found
inside any string is cut out), so a secret that slips into an unexpected field or an
exception message still never reaches the log. Uvicorn's own records go through the
same processors.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import re
import sys
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"

_SECRET_KEYS = re.compile(
    r"pass(word|wd)?|secret|token|api[_-]?key|authorization|cookie|kek|private|credential|"
    r"recovery|totp|otp_code|otpauth|ticket|^code$",
    re.IGNORECASE,
)
# Keys that look secret by name but carry safe values.
_SAFE_KEYS = frozenset({"token_type", "token_type_hint", "grant_type", "tokens_issued"})
# structlog's own bookkeeping on stdlib records, dropped before rendering.
_META_KEYS = frozenset({"_record", "_from_structlog"})

# A credential starts where no letter or digit runs into it, or right after a
# percent-escape (``%3Dak_live_...`` in a logged query string). ``\b`` does not do:
# it counts ``_`` as part of a word, so ``key_ak_live_...`` or ``ak_live_..._x`` hid.
_START = r"(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{2}))"
_END = r"(?![A-Za-z0-9])"
_SECRET_SHAPES = re.compile(
    rf"(?:{_START}[a-z][a-z0-9]{{1,7}}_[a-z0-9]{{2,8}}_[A-Za-z0-9]{{20,}}{_END})"  # API keys
    rf"|(?:{_START}(?:rt|mt)_[A-Za-z0-9_-]{{20,}})"  # refresh tokens, MFA tickets (43)
    rf"|(?:{_START}eyJ[A-Za-z0-9_-]{{5,}}\.[A-Za-z0-9_-]{{5,}}\.[A-Za-z0-9_-]*)"  # JWTs
    r"|(?:-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$))"
    r"|(?:\b(?:Basic|Bearer|ApiKey)\s+[A-Za-z0-9._~+/=-]{8,})"
    r"|(?:otpauth://\S+)"  # a TOTP secret in its enrolment URI
    rf"|(?:{_START}(?i:[a-z2-7]{{4}}(?:-[a-z2-7]{{4}}){{3}}){_END})",  # recovery codes
)
# ``user:password@`` in a database or Redis URL keeps the user, loses the password.
_URL_PASSWORD = re.compile(r"(://[^:/?#@\s]*:)[^/?#\s]*@")


# Every secret shape above contains one of these, a recovery code three dashes; a
# string with none of them (most values: routes, ids, timestamps, numbers as text)
# skips the regular expressions entirely.
_SHAPE_MARKERS = ("_", "eyJ", "-----BEGIN", "Basic", "Bearer", "ApiKey", "://")
_ANY_MARKER = re.compile("|".join(re.escape(marker) for marker in _SHAPE_MARKERS))
_SHORTEST_SHAPE = 14
# Values a renderer prints as they are; anything else is printed through its repr,
# which is scrubbed instead (bytes, sets, exceptions, arbitrary objects).
_PLAIN = (int, float, bool, type(None))


def scrub(value: Any) -> Any:
    """Cut secret-shaped substrings out of strings, recursively.

    A value that is neither plain nor a container becomes the text a renderer would
    print for it, ``repr``, so a key inside ``b"..."`` or ``ValueError(...)`` is cut
    out too."""
    if isinstance(value, str):
        if len(value) < _SHORTEST_SHAPE or not (
            _ANY_MARKER.search(value) or value.count("-") >= 3
        ):
            return value
        if "://" in value:
            value = mask_url_password(value)
        return _SECRET_SHAPES.sub(REDACTED, value)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {k: _redact_item(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return scrub(repr(value))


def mask_url_password(text: str) -> str:
    """``postgresql://app:s3cret@db/authd`` -> ``postgresql://app:****@db/authd``."""
    return _URL_PASSWORD.sub(r"\1****@", text)


@lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    return key not in _SAFE_KEYS and _SECRET_KEYS.search(key) is not None


def _redact_item(key: Any, value: Any) -> Any:
    if isinstance(key, str) and _secret_key(key):
        return REDACTED if value not in (None, "") else value
    return scrub(value)


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key not in _META_KEYS:
            event_dict[key] = _redact_item(key, event_dict[key])
    return event_dict


class _NamedWriteLogger(structlog.WriteLogger):
    """structlog's plain writer, carrying the name given to ``get_logger(name)``."""

    def __init__(self, file: TextIO, name: str | None) -> None:
        super().__init__(file)
        self.name = name or "authd"


# The request's context in every line written while it is served: its id, and nothing
# else. One variable of our own, set once per request, rather than structlog's
# contextvars, whose bind, clear and merge each walk the whole context: that walk was
# a tenth of what authd adds to a token (issue 15). Under uvicorn each request runs in
# a task of its own, so the value goes with the request; the request middleware sets
# it first thing, so a request in-process never shows its predecessor's id either.
REQUEST_ID: ContextVar[str | None] = ContextVar("authd_request_id", default=None)


def add_request_id(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    return event_dict


def _add_logger_name(
    logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    record = event_dict.get("_record")
    event_dict["logger"] = record.name if record is not None else getattr(logger, "name", "")
    return event_dict


def configure(log_format: str = "console", level: str = "info") -> None:
    """Our lines and stdlib ones (uvicorn, asyncpg) through the same processors.

    Our own lines take structlog's direct writer rather than the stdlib logging
    machinery: on the token hot path the access line is written for every request,
    and skipping LogRecord/Formatter halves its cost. Lines below the level are
    dropped before any processor runs.
    """
    shared: list[Any] = [
        add_request_id,
        structlog.processors.add_log_level,
        _add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    stream = sys.stderr
    global _access_line
    if _access_line is not None:
        _access_line.flush()
        atexit.unregister(_access_line.flush)
    processors = [*shared, renderer]
    _access_line = (
        _JSONAccessLine(stream, processors)
        if log_format == "json" and logging.getLevelNamesMapping()[level.upper()] <= logging.INFO
        else None
    )
    structlog.configure(
        processors=processors,
        logger_factory=lambda *args: _NamedWriteLogger(stream, args[0] if args else None),
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "asyncio"):
        named = logging.getLogger(name)
        named.handlers[:] = []
        named.propagate = True
    # authd writes its own access line. uvicorn asks ``hasHandlers()`` of its access
    # logger once per connection and, when true, formats the client address and the
    # quoted path of every request before ``info`` drops them: a logger with no
    # handler that does not propagate answers false, and uvicorn skips the work.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    uvicorn_access.disabled = True


# ---- the access line ---------------------------------------------------------------

ACCESS_LOGGER = "authd.access"


def write_access_line(method: str, route: str, status: int, duration_ms: float) -> None:
    """The one line every request writes (``event: request``), with the request's
    bound context (its id) like every other line of the request.

    It is the only line on the token hot path, written for every request, and the
    processor chain costs about a tenth of a token's CPU (DESIGN §7): in JSON, the
    format production runs, it is rendered here in one step instead — the same
    members, the same redaction, the same JSON (``tests/observability`` checks the
    two renderings against each other). Console output and a level above ``info``
    keep the processor chain (or drop the line), as nothing is gained there.
    """
    line = _access_line
    # Only while structlog runs the chain configured with it (not after a reset, nor
    # under structlog.testing.capture_logs).
    if line is not None and structlog.get_config()["processors"] is line.processors:
        line.write(method, route, status, duration_ms)
    else:
        # A logger got now, not kept: a kept one caches the configuration of its
        # first use and would miss a later one (structlog.testing.capture_logs).
        structlog.get_logger(ACCESS_LOGGER).info(
            "request", method=method, route=route, status=status, duration_ms=duration_ms)


class _JSONAccessLine:
    """Access lines are written once per turn of the event loop, all the lines of the
    requests answered in that turn in one write: a system call per line was a tenth of
    the line's cost. A line is never held longer than the turn (or, outside an event
    loop, at all), and what is pending at exit is written then."""

    def __init__(self, stream: TextIO, processors: list[Any]) -> None:
        self.processors = processors
        self._stream = stream
        self._second = -1
        self._stamp = ""
        self._pending: list[str] = []
        # Bounded like the metric labels: methods, route templates and statuses are.
        self._heads: dict[tuple[str, str, int], str] = {}
        atexit.register(self.flush)

    def write(self, method: str, route: str, status: int, duration_ms: float) -> None:
        # What JSONRenderer prints for the same members in the same order:
        # ``json.dumps`` of each value, ", " and ": " between them, built in one
        # string. The method (one of the HTTP parser's fixed set) and the route (a
        # template of our own routes) need no scrubbing, and their part of the line is
        # made once; the request id (a client may send its own) is redacted like any
        # other value, unless it is plain ASCII letters and digits (every id authd
        # makes), a string that holds none of the secret shapes' markers.
        head = self._heads.get((method, route, status))
        if head is None:
            head = self._heads[(method, route, status)] = (
                f'{{"method": {_json_string(method)}, "route": {_json_string(route)}, '
                f'"status": {int(status)}, "duration_ms": ')
        request_id = REQUEST_ID.get()
        if request_id is None:
            member = ""
        elif request_id.isascii() and request_id.isalnum():
            member = f', "request_id": "{request_id}"'
        else:
            member = f', "request_id": {_json_string(_redact_item("request_id", request_id))}'
        # ISO 8601 UTC with microseconds, as structlog's ``TimeStamper(fmt="iso",
        # utc=True)`` writes it; the date and time of day are formatted once a second.
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        pending = self._pending
        pending.append(
            f'{head}{float(duration_ms)!r}, "event": "request"{member}, "level": "info", '
            f'"logger": "{ACCESS_LOGGER}", "timestamp": '
            f'"{self._stamp}.{int((now - second) * 1_000_000):06d}Z"}}\n')
        if len(pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop: nothing would write it later
                self.flush()

    def flush(self) -> None:
        lines, self._pending = self._pending, []
        if lines:
            self._stream.write("".join(lines))
            self._stream.flush()


_json_string = json.encoder.encode_basestring_ascii  # json.dumps' own, for one string
_access_line: _JSONAccessLine | None = None
