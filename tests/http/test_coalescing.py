"""The response head waits for the body: one socket write per small response.

The transport under test wraps a recording transport (a stand-in for the socket, not
for any storage) and schedules on the running loop through ``Scheduling``, which only
keeps the handles it returns; the real server runs on this protocol (``authd serve``)
in every end-to-end test, which is where its answers are checked, and
``test_e2e_one_send.py`` watches its system calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from service.http.coalescing import CoalescingTransport, EndOfTurn
from tests.support.transports import Recording

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Scheduling:
    """The running loop, keeping the handle of every callback scheduled on it."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.handles: list[asyncio.Handle] = []

    def call_soon(self, callback: Callable[..., object], *args: Any) -> asyncio.Handle:
        handle = self.loop.call_soon(callback, *args)
        self.handles.append(handle)
        return handle


def coalescing(inner: Recording, scheduling: Scheduling | None = None) -> CoalescingTransport:
    loop = scheduling or asyncio.get_running_loop()
    return CoalescingTransport(inner, EndOfTurn(cast(asyncio.AbstractEventLoop, loop)))


async def test_a_head_and_its_body_go_out_in_one_write() -> None:
    inner = Recording()
    transport = coalescing(inner)
    transport.write(HEAD)
    assert inner.writes == []
    transport.write(b"{}")
    assert inner.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)
    assert inner.writes == [HEAD + b"{}"]  # the end of the turn sends nothing more


async def test_one_callback_a_turn_serves_every_connection_of_the_loop() -> None:
    """Heads held on several connections in one turn schedule one end-of-turn send,
    which sends only the head no body took."""
    scheduling = Scheduling()
    turn = EndOfTurn(cast(asyncio.AbstractEventLoop, scheduling))
    answered, waiting = Recording(), Recording()
    first, second = CoalescingTransport(answered, turn), CoalescingTransport(waiting, turn)
    for body in (b"{}", b"[]"):  # keep-alive: two responses on one connection
        first.write(HEAD)
        first.write(body)
    second.write(HEAD)
    assert len(scheduling.handles) == 1
    assert answered.writes == [HEAD + b"{}", HEAD + b"[]"]
    assert waiting.writes == []
    await asyncio.sleep(0)
    assert answered.writes == [HEAD + b"{}", HEAD + b"[]"]
    assert waiting.writes == [HEAD]
    first.write(HEAD)  # a new turn schedules its own send
    assert len(scheduling.handles) == 2


async def test_a_head_without_a_body_goes_out_at_the_end_of_the_turn() -> None:
    """A 304 or a HEAD answer: nothing follows the head, which is not held longer."""
    inner = Recording()
    transport = coalescing(inner)
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert inner.writes == [HEAD]


async def test_a_head_sent_at_the_end_of_the_turn_is_not_held_for_the_next_write() -> None:
    """After the end-of-turn send, a body that comes later goes out on its own."""
    inner = Recording()
    transport = coalescing(inner)
    transport.write(HEAD)
    await asyncio.sleep(0)
    transport.write(b"{}")
    assert inner.writes == [HEAD, b"{}"]


async def test_closing_sends_a_held_head_first_and_other_writes_pass_at_once() -> None:
    inner = Recording()
    transport = coalescing(inner)
    transport.write(b"0\r\n\r\n")  # not a head: written as it comes
    transport.write(HEAD)
    transport.close()
    assert inner.writes == [b"0\r\n\r\n", HEAD]
    assert inner.closed
    await asyncio.sleep(0)
    assert inner.writes == [b"0\r\n\r\n", HEAD]  # the end of the turn has nothing left


async def test_aborting_drops_the_held_head_now_and_at_the_end_of_the_turn() -> None:
    inner = Recording()
    transport = coalescing(inner)
    transport.write(HEAD)
    transport.abort()
    await asyncio.sleep(0)
    assert inner.writes == []


async def test_everything_else_is_the_wrapped_transports() -> None:
    inner = Recording()
    transport = coalescing(inner)
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
