"""Real HTTP servers in a thread of the test process, for the framework integrations.

``UvicornThread`` serves an ASGI app (FastAPI) with uvicorn, ``WSGIThread`` a WSGI
app with the standard library's ``wsgiref``; both on 127.0.0.1 and a free port,
so the tests speak real HTTP to real framework code.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any, Self
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import uvicorn

from tests.support.servers import free_port


class UvicornThread:
    """An ASGI app served by uvicorn from a daemon thread while the ``with`` block runs."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class WSGIThread:
    """A WSGI app served by ``wsgiref`` from a daemon thread while the ``with`` block runs."""

    def __init__(self, app: Any) -> None:
        self._server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=30)
