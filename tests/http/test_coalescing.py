"""The response head waits for the body: one socket write per small response.

The transport under test wraps a recording transport (a stand-in for the socket, not
for any storage); the real server runs on this protocol (``authd serve``) in every
end-to-end test, which is where its answers are checked.
"""

from __future__ import annotations

import asyncio

from service.http.coalescing import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def test_a_head_and_its_body_go_out_in_one_write() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(HEAD)
    assert inner.writes == []
    transport.write(b"{}")
    assert inner.writes == [HEAD + b"{}"]


async def test_a_head_without_a_body_goes_out_at_the_end_of_the_turn() -> None:
    """A 304 or a HEAD answer: nothing follows the head, which is not held longer."""
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert inner.writes == [HEAD]


async def test_closing_sends_a_held_head_first_and_other_writes_pass_at_once() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    transport.write(b"0\r\n\r\n")  # not a head: written as it comes
    transport.write(HEAD)
    transport.close()
    assert inner.writes == [b"0\r\n\r\n", HEAD]
    assert inner.closed
    await asyncio.sleep(0)
    assert inner.writes == [b"0\r\n\r\n", HEAD]  # the end of the turn has nothing left


async def test_everything_else_is_the_wrapped_transports() -> None:
    inner = Recording()
    transport = CoalescingTransport(inner, asyncio.get_running_loop())
    assert transport.get_extra_info("peername") == ("127.0.0.1", 1)
