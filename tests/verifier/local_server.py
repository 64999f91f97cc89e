"""A real HTTP server on 127.0.0.1 standing in for authd in the verifier's tests.

It speaks real HTTP over a real socket, so the code under test runs its actual
httpx client; nothing is mocked. Routes are plain functions, and every request
is recorded so tests can assert what was (or was not) fetched.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class Reply:
    """What a route answers."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Sent:
    """How much of a reply's body went out before the client finished or hung up."""

    path: str
    body_bytes: int
    complete: bool


Route = Callable[[Request], Reply]

_WRITE_CHUNK = 64 * 1024


class LocalServer:
    """A threaded HTTP server with programmable routes and a request log."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        #: One entry per reply, appended once its body was written or the client left.
        self.sent: list[Sent] = []
        self.delay = 0.0
        self._lock = threading.Lock()
        self._replied = threading.Condition(self._lock)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                request = Request(
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={name.lower(): value for name, value in self.headers.items()},
                )
                with server._lock:
                    server.requests.append(request)
                if server.delay:
                    time.sleep(server.delay)
                route = server.routes.get(parts.path)
                reply = route(request) if route is not None else Reply(404)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                written = 0
                try:
                    while written < len(reply.body):
                        written += self.wfile.write(
                            reply.body[written : written + _WRITE_CHUNK]
                        )
                except (BrokenPipeError, ConnectionResetError):
                    pass
                with server._replied:
                    server.sent.append(Sent(parts.path, written, written == len(reply.body)))
                    server._replied.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port (later connections are refused)."""
        self._server.shutdown()
        self._server.server_close()

    def count(self, path: str) -> int:
        """How many requests hit ``path``."""
        with self._lock:
            return sum(1 for request in self.requests if request.path == path)

    def wait_for_reply(self, path: str, timeout: float = 10.0) -> Sent:
        """The first reply sent to ``path``, waiting until its body was written or abandoned."""
        with self._replied:
            self._replied.wait_for(
                lambda: any(sent.path == path for sent in self.sent), timeout
            )
            return next(sent for sent in self.sent if sent.path == path)

    def requests_to(self, path: str) -> list[Request]:
        """The recorded requests to ``path``."""
        with self._lock:
            return [request for request in self.requests if request.path == path]


JWKS_PATH = "/.well-known/jwks.json"


class JWKSRoute:
    """Serves a JWKS like authd: ``Cache-Control: max-age``, ``ETag``, 304 on a match."""

    def __init__(self, jwks: dict[str, Any], max_age: int | None = 300) -> None:
        self.jwks = jwks
        self.max_age = max_age
        self.status = 200

    def __call__(self, request: Request) -> Reply:
        if self.status != 200:
            return Reply(self.status, {}, b"unavailable")
        body = json.dumps(self.jwks).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        headers = {"ETag": etag, "Content-Type": "application/jwk-set+json"}
        if self.max_age is not None:
            headers["Cache-Control"] = f"public, max-age={self.max_age}"
        if request.headers.get("if-none-match") == etag:
            return Reply(304, headers)
        return Reply(200, headers, body)


class ManualClock:
    """A clock the test moves by hand, injected where the code takes ``clock=``."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds
