"""Requests that reach the loop in one turn start in the order their connections were
last served, least recently first.

uvloop (libuv) polls its sockets with level-triggered epoll. epoll reports ready
sockets in the order of its ready list, and a socket it reported last time stays
at the head of that list, ahead of sockets that became ready since. A keep-alive
client whose answer was the last of a turn sends its next request just after the
loop polled; that request waits out the whole next turn behind requests that
arrived after it, is answered last again, and so on: the same connection is
served at a lower rate than the others for as long as the load lasts. At c=8 on
one saturated worker, two or three connections took 28-57 % of their requests at
twice the median latency, and the bare stack's p99 / p50 read 2.2 for that alone
(docs/saturation.md, ``tests/bench/per_connection.py``).

So the protocol below does not parse what it receives at once: the data of one
turn is collected, and at the start of the next turn (one callback a turn) it is
handed to uvicorn's parser connection by connection, the one served longest ago
first. A connection that has waited a turn goes first; the order within one
connection's data is kept. Losing the connection or its end of input first hands
every collected piece over, so uvicorn sees what it always saw, in the same order
for each connection. The cost is an append per ``data_received``, one sort and one
more loop iteration a turn: +0.6 % instructions a token in-process, level with
uvicorn's own protocol per server CPU-second over HTTP; p99 / p50 at c=8 went from
2.2-2.4 to 1.45-1.6.
"""

from __future__ import annotations

import asyncio
import weakref
from operator import itemgetter

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.http.coalescing import CoalescingHttpToolsProtocol

_SERVED = itemgetter(0)


class Arrivals:
    """The data that reached one event loop's connections in the current turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        #: (when the connection was last served, its protocol, the data), in arrival order.
        self.pending: list[tuple[int, FairHttpToolsProtocol, bytes]] = []
        self._served = 0

    def schedule(self) -> None:
        self._loop.call_soon(self.dispatch)

    def dispatch(self) -> None:
        """Hand the turn's data to the parsers, least recently served connection first."""
        pending = self.pending
        if not pending:
            return
        batch = sorted(pending, key=_SERVED)  # stable: one connection's pieces keep their order
        pending.clear()
        served = self._served
        for _, protocol, data in batch:
            served += 1
            protocol.last_served = served
            try:
                protocol.parse(data)
            except Exception as exc:  # what uvloop does when data_received raises
                self._loop.call_exception_handler(
                    {"message": "data_received raised", "exception": exc, "protocol": protocol}
                )
                protocol.transport.abort()
        self._served = served


_ARRIVALS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Arrivals] = (
    weakref.WeakKeyDictionary()
)


def arrivals(loop: asyncio.AbstractEventLoop) -> Arrivals:
    """The one ``Arrivals`` of ``loop``."""
    found = _ARRIVALS.get(loop)
    if found is None:
        found = _ARRIVALS[loop] = Arrivals(loop)
    return found


class FairHttpToolsProtocol(CoalescingHttpToolsProtocol):
    """uvicorn's httptools protocol, one socket write per response
    (:class:`CoalescingHttpToolsProtocol`), requests of a turn started least recently
    served connection first; given to ``uvicorn.Config(http=...)`` by ``authd serve``."""

    # Slots, not instance attributes: uvicorn's protocol holds 28 in its __dict__
    # once it has served a request, and CPython 3.11 shares a class's attribute
    # layout (and specialises attribute access on it) for at most 30; four more made
    # every attribute access of uvicorn's parsing and response code a plain dict
    # lookup, ~4k instructions a request.
    __slots__ = ("_arrivals", "_pending", "_schedule", "last_served")

    #: uvicorn's own ``data_received``: parse, and start the request.
    parse = HttpToolsProtocol.data_received

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        #: When this connection's data was last handed to the parser (0: never).
        self.last_served = 0
        self._arrivals = found = arrivals(self.loop)
        self._pending = found.pending
        self._schedule = found.schedule
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        # The keep-alive timer stops now, as it would have: the turn's timers run
        # before its data is dispatched.
        if self.timeout_keep_alive_task is not None:
            self._unset_keepalive_if_required()
        pending = self._pending
        if not pending:
            self._schedule()
        pending.append((self.last_served, self, data))

    def eof_received(self) -> None:
        self._arrivals.dispatch()
        super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._arrivals.dispatch()
        super().connection_lost(exc)
