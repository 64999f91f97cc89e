"""The requests of one turn start least recently served connection first.

uvicorn's real protocol and parser on recording transports (stand-ins for sockets, not
for any storage), a real uvloop loop and an ASGI app that records the order in which
requests reach it; every end-to-end test runs the real server on this protocol
(``authd serve``), which is where its answers are checked.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.http.fair_order import Arrivals, FairHttpToolsProtocol
from tests.support.transports import Recording


def request(path: str, body: bytes = b"") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


class Server:
    """Connections of one loop on the fair protocol, and the order requests started."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.bodies: dict[str, bytes] = {}
        self.disconnected: list[str] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                return
            self.started.append(scope["path"])
            message = await receive()
            self.bodies[scope["path"]] = message.get("body", b"")
            if message["type"] == "http.disconnect":
                self.disconnected.append(scope["path"])
                return
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        self.config = Config(app=app, lifespan="off", access_log=False, log_config=None)
        self.config.load()
        self.state = ServerState()
        self.loop = asyncio.get_running_loop()

    def connect(self) -> tuple[FairHttpToolsProtocol, Recording]:
        protocol = FairHttpToolsProtocol(
            config=self.config, server_state=self.state, app_state={}, _loop=self.loop
        )
        transport = Recording()
        protocol.connection_made(transport)
        return protocol, transport


async def turns(count: int = 4) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def one_turn(*arrivals: tuple[FairHttpToolsProtocol, str]) -> None:
    """A request on each connection, arriving in the order given, and the turns to serve them."""
    for protocol, path in arrivals:
        protocol.data_received(request(path))
    await turns()


async def test_a_turn_starts_the_connection_served_longest_ago_first() -> None:
    server = Server()
    (a, _), (b, _), (c, _) = server.connect(), server.connect(), server.connect()
    await one_turn((a, "/a1"), (b, "/b1"), (c, "/c1"))
    # Never served before: the order they arrived in.
    assert server.started == ["/a1", "/b1", "/c1"]
    server.started.clear()
    # The next turn's data arrives in the opposite order (as epoll may report it):
    # a was served longest ago, so it starts first.
    for protocol, name in ((c, "/c2"), (b, "/b2"), (a, "/a2")):
        protocol.data_received(request(name))
    assert server.started == []  # nothing is parsed before the turn's data is in
    await turns()
    assert server.started == ["/a2", "/b2", "/c2"]


async def test_a_connection_that_waited_a_turn_goes_before_those_served_in_it() -> None:
    server = Server()
    (a, _), (b, _), (c, _) = server.connect(), server.connect(), server.connect()
    await one_turn((a, "/a1"), (b, "/b1"), (c, "/c1"))
    await one_turn((a, "/a2"), (b, "/b2"))
    server.started.clear()
    # c was last served two turns ago; its request arrives after a's and b's.
    await one_turn((a, "/a3"), (b, "/b3"), (c, "/c3"))
    assert server.started == ["/c3", "/a3", "/b3"]


async def test_one_connections_pieces_keep_their_order_within_a_turn() -> None:
    server = Server()
    (a, transport), (b, _) = server.connect(), server.connect()
    whole = request("/split", b"0123456789")
    b.data_received(request("/other"))
    a.data_received(whole[:20])
    a.data_received(whole[20:-4])
    a.data_received(whole[-4:])
    await turns()
    assert server.bodies["/split"] == b"0123456789"
    assert transport.writes and b"\r\nok\r\n" in transport.writes[-1]


async def test_data_is_parsed_before_its_connection_is_lost() -> None:
    server = Server()
    a, transport = server.connect()
    a.data_received(request("/last-words"))
    transport.closed = True
    a.connection_lost(None)
    await turns()
    # uvicorn saw the request, then the loss, as when it parsed on arrival.
    assert server.started == ["/last-words"]
    assert server.disconnected == ["/last-words"]


async def test_end_of_input_hands_over_the_turns_data_first() -> None:
    server = Server()
    a, _ = server.connect()
    a.data_received(request("/then-eof"))
    a.eof_received()
    await turns()
    assert server.started == ["/then-eof"]


async def test_a_parser_that_raises_costs_its_own_connection_only() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        server = Server()
        (a, a_transport), (b, _) = server.connect(), server.connect()

        def broken(_data: bytes) -> None:
            raise RuntimeError("boom")

        a.parse = broken  # type: ignore[method-assign, assignment]
        a.data_received(b"anything")
        b.data_received(request("/still-served"))
        await turns()
        assert server.started == ["/still-served"]
        assert a_transport.aborted
        assert [type(context["exception"]) for context in reported] == [RuntimeError]
    finally:
        loop.set_exception_handler(None)


async def test_one_arrivals_per_loop_and_one_dispatch_a_turn() -> None:
    server = Server()
    a, _ = server.connect()
    b, _ = server.connect()
    assert a._arrivals is b._arrivals
    assert isinstance(a._arrivals, Arrivals)
    scheduled: list[object] = []
    real_call_soon = server.loop.call_soon

    def counting(callback: Any, *args: Any) -> asyncio.Handle:
        if callback == a._arrivals.dispatch:
            scheduled.append(callback)
        return real_call_soon(callback, *args)

    server.loop.call_soon = counting  # type: ignore[method-assign, assignment]
    try:
        a.data_received(request("/x"))
        b.data_received(request("/y"))
        a.data_received(b"")
    finally:
        del server.loop.call_soon
    await turns()
    assert len(scheduled) == 1
    assert server.started == ["/x", "/y"]


async def test_the_protocol_adds_nothing_to_uvicorns_instance_dict() -> None:
    """uvicorn's protocol keeps 28 attributes in its ``__dict__`` once it has served a
    request; CPython 3.11 shares and specialises an attribute layout of at most 30. The fair protocol's own state
    lives in slots, so a served connection's ``__dict__`` has exactly uvicorn's keys."""
    server = Server()
    fair, _ = server.connect()
    plain = HttpToolsProtocol(
        config=server.config, server_state=server.state, app_state={}, _loop=server.loop
    )
    plain.connection_made(Recording())
    fair.data_received(request("/fair"))
    plain.data_received(request("/plain"))
    await turns()
    assert server.started == ["/plain", "/fair"]
    assert sorted(vars(fair)) == sorted(vars(plain))
