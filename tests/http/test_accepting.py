"""The accepting loop takes every waiting connection in one turn of the event loop.

Real sockets on loopback and real loops (uvloop's and authd's). A turn is counted by a
callback that schedules itself again: each run of it is one turn of the loop. The
connections are made before the loop runs, so they all wait in the kernel's queue
when the listener first becomes readable, which is what a burst of clients looks like
to a busy worker.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import uvloop

from service.http.accepting import AcceptingLoop, Listener
from tests.deploy.tls import self_signed

BURST = 24
_T = TypeVar("_T")
OPEN: list[asyncio.Transport] = []  # closed before each test's loop closes


class Turns:
    """Counts turns of the loop it runs on."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.count = 0
        self.handle = loop.call_soon(self.tick)

    def tick(self) -> None:
        self.count += 1
        self.handle = self.loop.call_soon(self.tick)

    def stop(self) -> None:
        self.handle.cancel()


class Echo(asyncio.Protocol):
    """Records the turn of ``connection_made`` and echoes what it reads."""

    def __init__(self, turns: Turns, made: list[int]) -> None:
        self.turns = turns
        self.made = made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass it
        self.made.append(self.turns.count)
        OPEN.append(self.transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def close_open(loop: asyncio.AbstractEventLoop) -> None:
    while OPEN:
        OPEN.pop().close()
    loop.run_until_complete(asyncio.sleep(0.01))


def turns_to_accept(loop_factory: Callable[[], asyncio.AbstractEventLoop],
                    burst: int = BURST) -> list[int]:
    """The turn at which each of ``burst`` waiting connections was made."""
    loop = loop_factory()
    clients: list[socket.socket] = []
    try:
        sock = listening_socket()
        turns = Turns(loop)
        made: list[int] = []
        server = loop.run_until_complete(
            loop.create_server(lambda: Echo(turns, made), sock=sock, backlog=128))
        port = sock.getsockname()[1]
        for _ in range(burst):  # the kernel completes these handshakes on its own
            clients.append(socket.create_connection(("127.0.0.1", port)))

        async def until_all_made() -> None:
            while len(made) < burst:  # noqa: ASYNC110 - one look per turn, on purpose
                await asyncio.sleep(0)

        loop.run_until_complete(asyncio.wait_for(until_all_made(), 10))
        turns.stop()
        close_open(loop)
        server.close()
        loop.run_until_complete(server.wait_closed())
        return made
    finally:
        for client in clients:
            client.close()
        loop.close()


@dataclass
class Bench:
    """An accepting loop with a bound, not yet listening socket, counting its turns."""

    loop: AcceptingLoop
    sock: socket.socket
    turns: Turns
    made: list[int]
    port: int = 0

    def __post_init__(self) -> None:
        self.port = int(self.sock.getsockname()[1])  # kept: closing the listener closes it

    async def serve(self, **options: Any) -> Listener:
        server = await self.loop.create_server(lambda: Echo(self.turns, self.made),
                                               sock=self.sock, backlog=16, **options)
        assert isinstance(server, Listener)
        return server

    def run(self, scenario: Coroutine[Any, Any, _T]) -> _T:
        return self.loop.run_until_complete(asyncio.wait_for(scenario, 10))


@contextmanager
def accepting_loop() -> Iterator[Bench]:
    loop = AcceptingLoop()
    try:
        bench = Bench(loop, listening_socket(), Turns(loop), [])
        yield bench
        bench.turns.stop()
        close_open(loop)
    finally:
        loop.close()


def tls_server_context(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for a self-signed certificate, and the certificate's path."""
    certificate = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    return context, certificate.cert


def test_every_waiting_connection_is_accepted_within_the_same_few_turns() -> None:
    made = turns_to_accept(AcceptingLoop)
    assert len(made) == BURST
    # Accepted in one turn; each handshake task and connection_made take a turn more.
    assert max(made) - min(made) <= 3, made


def test_uvloop_alone_admits_one_connection_per_turn() -> None:
    """Why the accepting loop exists (libuv#3696). Should uvloop ever drain its queue
    again, this fails, and service/http/accepting.py can go."""
    made = turns_to_accept(uvloop.new_event_loop)
    assert max(made) - min(made) >= BURST - 1, made


def test_connections_are_served_and_closing_stops_accepting() -> None:
    with accepting_loop() as bench:

        async def scenario() -> None:
            server = await bench.serve()
            assert server.is_serving()
            reader, writer = await asyncio.open_connection("127.0.0.1", bench.port)
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            writer.close()
            server.close()
            await server.wait_closed()
            assert not server.is_serving() and server.sockets == ()
            try:
                await asyncio.open_connection("127.0.0.1", bench.port)
            except ConnectionRefusedError:
                return
            raise AssertionError("a closed listener still accepted a connection")

        bench.run(scenario())


def test_tls_connections_are_served_and_a_failed_handshake_harms_no_other(
    tmp_path: Path,
) -> None:
    server_context, cert = tls_server_context(tmp_path)
    client_context = ssl.create_default_context(cafile=str(cert))
    with accepting_loop() as bench:

        async def scenario() -> None:
            server = await bench.serve(ssl=server_context, ssl_handshake_timeout=5)
            # A client that speaks plain text to the TLS listener, then leaves.
            reader, writer = await asyncio.open_connection("127.0.0.1", bench.port)
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
            await reader.read()  # the listener closes it
            writer.close()
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", bench.port, ssl=client_context, server_hostname="localhost")
            writer.write(b"over tls")
            assert await reader.readexactly(8) == b"over tls"
            writer.close()
            server.close()

        bench.run(scenario())
    assert len(bench.made) == 1  # only the TLS client reached the protocol


def test_closing_drops_a_connection_still_in_its_tls_handshake(tmp_path: Path) -> None:
    """A client that connects to the TLS listener and says nothing is mid-handshake
    when the listener closes: it is dropped then, not left to the handshake timeout."""
    server_context, _ = tls_server_context(tmp_path)
    with accepting_loop() as bench:

        async def scenario() -> bytes:
            server = await bench.serve(ssl=server_context, ssl_handshake_timeout=60)
            reader, writer = await asyncio.open_connection("127.0.0.1", bench.port)
            for _ in range(5):  # the listener accepts and starts the handshake
                await asyncio.sleep(0)
            server.close()
            try:
                return await asyncio.wait_for(reader.read(), 5)
            finally:
                writer.close()

        assert bench.run(scenario()) == b""  # end of stream, promptly
    assert bench.made == []


def test_out_of_descriptors_the_listener_pauses_then_resumes(tmp_path: Path) -> None:
    """EMFILE for real: a child process whose descriptor limit is reached. The
    listener says so once, stops polling the socket, and accepts the waiting
    connection once descriptors are free again."""
    script = tmp_path / "emfile.py"
    script.write_text(textwrap.dedent("""
        import asyncio, os, resource, socket, sys
        import service.http.accepting as accepting
        from service.http.accepting import AcceptingLoop
        accepting.RETRY_AFTER_RESOURCE_ERROR_S = 0.2

        loop = AcceptingLoop()
        sock = socket.socket(); sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        made = []

        class Proto(asyncio.Protocol):
            def connection_made(self, transport):
                made.append(transport)

        async def main():
            await loop.create_server(Proto, sock=sock, backlog=8)
            client = socket.create_connection(("127.0.0.1", port))
            # Use up every descriptor the limit allows, then let the loop try.
            hog = []
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
            try:
                while True:
                    hog.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                pass
            await asyncio.sleep(0.3)
            assert made == [], "accepted without a free descriptor"
            for fd in hog[-8:]:
                os.close(fd)
            for _ in range(100):
                if made:
                    break
                await asyncio.sleep(0.05)
            print("accepted" if made else "never accepted", flush=True)

        loop.run_until_complete(main())
    """))
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "accepted"
    assert lines[:-1] and all("listener.accept_paused" in line for line in lines[:-1]), lines

