"""The shedding bound counts the backlog a worker has, not only what awaits I/O.

uvicorn starts every request parsed in one turn of the event loop in the next turn,
one after another; a token request with a cached key then runs to its end without
waiting, so these tests use such an application: the bound must still see the n-th
request of a batch as n-th in line. (The real-server checks are in
``tests/e2e/test_shedding.py``.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Message

from service.http.shedding import InFlightLimit


def scope(path: str = "/v1/token") -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "headers": []}


async def receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class Answers:
    def __init__(self) -> None:
        self.statuses: list[int] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.statuses.append(message["status"])


async def at_once(scope: Any, receive: Any, send: Any) -> None:
    """An application that answers without awaiting anything (a cached token request)."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def one_turn(limit: InFlightLimit, answers: Answers, count: int,
                   path: str = "/v1/token") -> None:
    """``count`` requests started in the same turn of the loop, as uvicorn starts them."""
    await asyncio.gather(*(limit(scope(path), receive, answers) for _ in range(count)))


async def test_requests_started_in_one_turn_past_the_bound_are_shed() -> None:
    limit, answers = InFlightLimit(at_once, max_in_flight=3), Answers()
    await one_turn(limit, answers, 7)
    assert answers.statuses == [200, 200, 200, 503, 503, 503, 503]


async def test_the_count_starts_again_at_the_next_turn() -> None:
    limit, answers = InFlightLimit(at_once, max_in_flight=3), Answers()
    await one_turn(limit, answers, 3)
    await asyncio.sleep(0)  # the next turn of the loop
    await one_turn(limit, answers, 4)
    assert answers.statuses == [200] * 3 + [200, 200, 200, 503]


def waiting_for(release: asyncio.Event) -> ASGIApp:
    """An application that answers once ``release`` is set (a request waiting on I/O)."""

    async def waits(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await at_once(scope, receive, send)

    return waits


async def test_a_request_waiting_on_io_holds_its_place_across_turns() -> None:
    release = asyncio.Event()
    limit, answers = InFlightLimit(waiting_for(release), max_in_flight=2), Answers()
    held = [asyncio.ensure_future(limit(scope(), receive, answers)) for _ in range(2)]
    for _ in range(3):
        await asyncio.sleep(0)
    await one_turn(limit, answers, 1)
    assert answers.statuses == [503]
    release.set()
    await asyncio.gather(*held)
    assert answers.statuses == [503, 200, 200]


async def test_jwks_is_never_shed() -> None:
    limit, answers = InFlightLimit(at_once, max_in_flight=1), Answers()
    await one_turn(limit, answers, 3, path="/.well-known/jwks.json")
    assert answers.statuses == [200, 200, 200]


async def test_a_slow_request_answered_frees_its_place_for_the_next_turn() -> None:
    """The answer of a request admitted turns ago counts in its own turn only."""
    release = asyncio.Event()
    limit, answers = InFlightLimit(waiting_for(release), max_in_flight=1), Answers()
    held = asyncio.ensure_future(limit(scope(), receive, answers))
    for _ in range(3):
        await asyncio.sleep(0)
    release.set()
    await held
    await asyncio.sleep(0)
    limit.app = at_once
    await one_turn(limit, answers, 1)
    assert answers.statuses == [200, 200]
