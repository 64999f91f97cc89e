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
connection sends or drops it first. The end-of-turn send is scheduled with every head
and cancelled when the body takes the head, so the common case runs no callback for
it. Nothing else about uvicorn's HTTP handling changes: parsing, keep-alive, flow
control and pipelining are its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_HEAD_START = b"HTTP/1.1 "
_HEAD_END = b"\r\n\r\n"


class CoalescingTransport:
    """An ``asyncio.Transport`` that sends a response head with the write after it."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        # The held head's send at the end of the turn. A body written in the same turn
        # (nearly every response) takes the head first and calls this off: cancelling
        # a handle costs less than letting the loop run a callback with nothing to do.
        self._end_of_turn: asyncio.Handle | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._release()
            self._transport.write(held + bytes(data))
        elif data[:9] == _HEAD_START and data[-4:] == _HEAD_END:
            self._held = bytes(data)
            self._end_of_turn = self._loop.call_soon(self._send_at_end_of_turn)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send a held head now, unless the connection is already closing."""
        held = self._held
        if held is not None:
            self._release()
            if not self._transport.is_closing():
                self._transport.write(held)

    def _send_at_end_of_turn(self) -> None:
        self._end_of_turn = None  # running now: nothing left to call off
        self.flush()

    def _release(self) -> None:
        """Hold nothing and call off the end-of-turn send of what was held."""
        self._held = None
        end_of_turn = self._end_of_turn
        if end_of_turn is not None:
            self._end_of_turn = None
            end_of_turn.cancel()

    def writelines(self, lines: Any) -> None:
        self.write(b"".join(lines))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._release()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`CoalescingTransport`; given to
    ``uvicorn.Config(http=...)`` by ``authd serve``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing: Any = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)
