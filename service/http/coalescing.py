"""One socket write per response: the response head waits for the body.

uvicorn writes a response's head (status line and headers) when the application sends
``http.response.start`` and the body when it sends ``http.response.body``: two
``send`` system calls for every answer, although a token or a JWKS is one small
message. On the token path that second system call was a larger share of a request's
CPU than anything of authd's own after the signature (py-spy, over HTTP). The
protocol below gives uvicorn a transport that holds a write that is a response head
and sends it with the next write, in one call; a head that no write follows within
the same turn of the event loop (a 204, a 304, a ``HEAD`` answer, a body that is still
being produced) is sent at the end of that turn, and closing or aborting the
connection sends or drops it first. One callback a turn does the end-of-turn sends of
every connection of the loop, scheduled by the first head held in the turn; scheduling
and cancelling one per response cost more than the callback's walk over heads that
bodies took already. Nothing else about uvicorn's HTTP handling changes: parsing,
keep-alive, flow control and pipelining are its own.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD_START = b"HTTP/1.1 "
_HEAD_END = b"\r\n\r\n"


class EndOfTurn:
    """The heads held in the current turn of one event loop, sent at its end if no
    body took them first."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._scheduled = False
        # The transports still holding a head; a body taking its head leaves.
        self.holding: set[CoalescingTransport] = set()

    def hold(self, transport: CoalescingTransport) -> None:
        self.holding.add(transport)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._send)

    def _send(self) -> None:
        self._scheduled = False
        holding = list(self.holding)
        self.holding.clear()
        for transport in holding:
            transport.flush()


_END_OF_TURN: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EndOfTurn] = (
    weakref.WeakKeyDictionary())


def end_of_turn(loop: asyncio.AbstractEventLoop) -> EndOfTurn:
    """The one ``EndOfTurn`` of ``loop``."""
    found = _END_OF_TURN.get(loop)
    if found is None:
        found = _END_OF_TURN[loop] = EndOfTurn(loop)
    return found


class CoalescingTransport:
    """An ``asyncio.Transport`` that sends a response head with the write after it."""

    def __init__(self, transport: asyncio.Transport, turn: EndOfTurn) -> None:
        self._transport = transport
        self._turn = turn
        self._holding = turn.holding
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._holding.discard(self)
            self._transport.write(held + bytes(data))
        elif data[:9] == _HEAD_START and data[-4:] == _HEAD_END:
            self._held = bytes(data)
            self._turn.hold(self)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send a held head now, unless the connection is already closing."""
        held = self._held
        if held is not None:
            self._held = None
            self._holding.discard(self)
            if not self._transport.is_closing():
                self._transport.write(held)

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._holding.discard(self)
        self._transport.abort()

    def is_closing(self) -> bool:  # asked once a response (uvicorn's keep-alive)
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport`; given to
    ``uvicorn.Config(http=...)`` by ``authd serve``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing: Any = CoalescingTransport(transport, end_of_turn(self.loop))
        super().connection_made(coalescing)
