"""Accept every waiting connection at each turn of the event loop.

Since libuv 1.45 (libuv#3696), which uvloop embeds, a listening socket that is ready
yields one ``accept()`` per turn of the loop; the next connection waits for the next
turn. On a saturated worker a turn runs every request that is ready, about 20 ms at 64
busy connections, so a burst of new connections (a load balancer opening its pool,
clients reconnecting after a deploy, wrk starting) was admitted one per turn: the 64th
connection's first request waited some 60 turns, 0.4 to 0.7 s, while its neighbours
were served in 20 ms. That staircase was the whole of the c=64 tail in ``make bench``
(packet captures and per-connection timestamps, issue 15).

:class:`AcceptingLoop` is uvloop's loop with one change: a server made on a socket
(uvicorn's path whenever it is given sockets, which ``authd serve`` always does) is
served by :class:`Listener`, which accepts until the kernel's queue is empty (at most
``backlog`` per turn), as asyncio's own loops do, and hands each connection to uvloop's
transport through ``connect_accepted_socket``. Reading, writing, TLS and flow control
stay uvloop's. With ``SO_REUSEPORT`` each worker owns its listener, so taking the whole
queue takes nothing from a sibling.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl as ssl_module
from collections.abc import Callable
from typing import Any

import structlog
import uvloop

log = structlog.get_logger("authd.http")

# Out of descriptors or memory: stop accepting for a moment rather than spin on a
# listener that stays readable (asyncio waits the same second).
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
RETRY_AFTER_RESOURCE_ERROR_S = 1.0


class Listener:
    """One listening socket, drained at every readiness event. It offers what uvicorn
    uses of an ``asyncio.Server``: ``close``, ``wait_closed``, ``sockets``,
    ``is_serving``."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        *,
        backlog: int,
        tls: dict[str, Any],
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._protocol_factory = protocol_factory
        self._backlog = max(1, backlog)
        self._tls = tls
        self._serving = False
        self._retry: asyncio.TimerHandle | None = None
        self._handshakes: set[asyncio.Task[Any]] = set()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self._sock,) if self._sock.fileno() != -1 else ()

    def is_serving(self) -> bool:
        return self._serving

    def start_serving(self) -> None:
        if self._serving:
            return
        self._sock.listen(self._backlog)
        self._sock.setblocking(False)
        self._loop.add_reader(self._sock.fileno(), self._accept)
        self._serving = True

    def _accept(self) -> None:
        for _ in range(self._backlog):
            try:
                conn, _address = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRORS:
                    log.error("listener.accept_paused", error=exc.strerror,
                              retry_in_s=RETRY_AFTER_RESOURCE_ERROR_S)
                    self._loop.remove_reader(self._sock.fileno())
                    self._retry = self._loop.call_later(RETRY_AFTER_RESOURCE_ERROR_S,
                                                        self._resume)
                    return
                continue  # ECONNABORTED and the like: that connection is already gone
            task = self._loop.create_task(self._connect(conn))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    def _resume(self) -> None:
        self._retry = None
        if self._serving:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, conn, **self._tls)
        except (TimeoutError, OSError, ssl_module.SSLError):
            # The client left or failed the TLS handshake: what uvloop's own server
            # does with such a connection, silently, is close it.
            conn.close()
        except Exception as exc:  # one connection's failure must not end the listener
            log.error("listener.connection_failed", error=type(exc).__name__)
            conn.close()

    def close(self) -> None:
        """Stop accepting; connections still in their TLS handshake are dropped (an
        established connection is uvicorn's to finish)."""
        for task in self._handshakes:
            task.cancel()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._serving:
            self._serving = False
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    async def wait_closed(self) -> None:
        """Nothing to wait for: uvicorn waits for its connections itself."""


class AcceptingLoop(uvloop.Loop):
    """uvloop's event loop, whose servers on a given socket accept a whole queue per turn."""

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: Any = None,
        port: Any = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: ssl_module.SSLContext | None = None,
        ssl_handshake_timeout: float | None = None,
        ssl_shutdown_timeout: float | None = None,
        start_serving: bool = True,
        **options: Any,
    ) -> Any:
        if sock is None or host is not None or port is not None or options:
            return await super().create_server(
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout, start_serving=start_serving,
                **options)
        tls: dict[str, Any] = {}
        if ssl is not None:
            tls = {"ssl": ssl, "ssl_handshake_timeout": ssl_handshake_timeout,
                   "ssl_shutdown_timeout": ssl_shutdown_timeout}
        listener = Listener(self, sock, protocol_factory, backlog=backlog, tls=tls)
        if start_serving:
            listener.start_serving()
        return listener


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop factory ``authd serve`` gives uvicorn (``Config(loop=...)``)."""
    return AcceptingLoop()
