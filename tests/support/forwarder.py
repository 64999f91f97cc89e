"""A TCP forwarder on 127.0.0.1 that a test can cut and restore.

Placed between the server under test and the real PostgreSQL or Redis, it stands in
for a network outage without touching the shared servers: ``stop()`` closes the
listening socket and every forwarded connection (the dependency is "down"),
``start()`` listens again on the same port (it is "back"). ``freeze()`` keeps every
connection open but forwards nothing more, and accepts new connections without
answering — a server stopped with SIGSTOP, as seen from its clients — until
``thaw()``. ``delay`` slows every forwarded chunk, so that a request depending on it
stays in flight for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")

CHUNK = 65536


class Forwarder:
    """Forward 127.0.0.1:``port`` to ``target_host``:``target_port``.

    It runs its own event loop in a thread, so that synchronous tests (which drive a
    server process with blocking HTTP calls) and async tests can both use it.
    """

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = port
        self.delay = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    @classmethod
    def for_url(cls, url: str) -> Forwarder:
        parts = urlsplit(url)
        default = 5432 if parts.scheme.startswith("postgres") else 6379
        return cls(parts.hostname or "127.0.0.1", parts.port or default)

    def url_through(self, url: str) -> str:
        """``url`` rewritten to reach its server through this forwarder."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Forwarder:
        self._call(self._start())
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection, as an outage would."""
        self._call(self._stop())

    def freeze(self) -> None:
        """Forward nothing, close nothing: the dependency hangs."""
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def thaw(self) -> None:
        """Forward again what waited and what comes."""
        self._loop.call_soon_threadsafe(self._flowing.set)

    def close(self) -> None:
        self.stop()
        # Connections still waiting in a freeze see the stop and end, before the loop
        # stops: a task left pending would be destroyed with the loop (and reported as
        # an unraisable exception when the test session ends).
        self._call(self._finish())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _finish(self) -> None:
        self._flowing.set()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        if pending:
            _, late = await asyncio.wait(pending, timeout=5)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout=10)

    async def _start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._flowing.wait()
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        if self._server is None or writer.transport.is_closing():
            self._writers.discard(writer)
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.target_host, self.target_port
            )
        except OSError:
            self._writers.discard(writer)
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._tasks.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
                self._tasks.discard(task)
            for end in (writer, up_writer):
                self._writers.discard(end)
                end.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(CHUNK):
                await self._flowing.wait()
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(chunk)
                await writer.drain()
