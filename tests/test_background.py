"""Periodic: a stop while a pass runs lets the pass finish (a flush cancelled between
its write and what follows lost its batch: CI caught an ``apikey.anomaly`` missing
after a clean stop); a stop while it waits, or past the grace, cancels."""

from __future__ import annotations

import asyncio

from service.background import Periodic


class Pass:
    """Work that blocks until released, noting how each pass ended."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.ended: list[str] = []

    async def __call__(self) -> None:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.ended.append("cancelled")
            raise
        self.ended.append("finished")


async def test_a_stop_during_a_pass_lets_it_finish() -> None:
    work = Pass()
    loop = Periodic("test", 0.01, work)
    loop.start()
    await asyncio.wait_for(work.started.wait(), 5)
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done() and work.ended == []
    work.release.set()
    await asyncio.wait_for(stopping, 5)
    assert work.ended == ["finished"]


async def test_a_stop_while_waiting_runs_no_further_pass() -> None:
    calls: list[int] = []

    async def work() -> None:
        calls.append(1)

    loop = Periodic("test", 60, work)
    loop.start()
    await asyncio.sleep(0)
    await asyncio.wait_for(loop.stop(), 1)
    assert calls == []


async def test_a_pass_stuck_past_the_grace_is_cancelled() -> None:
    work = Pass()
    loop = Periodic("test", 0.01, work, stop_grace=0.1)
    loop.start()
    await asyncio.wait_for(work.started.wait(), 5)
    await asyncio.wait_for(loop.stop(), 5)
    assert work.ended == ["cancelled"]


async def test_a_failing_pass_does_not_stop_the_loop() -> None:
    calls: list[int] = []
    third = asyncio.Event()

    async def work() -> None:
        calls.append(1)
        if len(calls) == 3:
            third.set()
        raise RuntimeError("store down")

    loop = Periodic("test", 0.01, work)
    loop.start()
    await asyncio.wait_for(third.wait(), 5)
    await loop.stop()
    assert len(calls) >= 3


async def test_a_stopped_loop_can_start_again() -> None:
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()

    loop = Periodic("test", 0.01, work)
    loop.start()
    await loop.stop()
    ran.clear()
    loop.start()
    await asyncio.wait_for(ran.wait(), 5)
    await loop.stop()
