"""Every replica's set of existing keys (service/apikeys/known.py), which lets an
address over its failed-attempt budget still reach the store with a real key."""

from __future__ import annotations

import asyncio

from service.apikeys.known import KnownKeys, digest_prefix
from service.store import StorageUnavailable

OLD = b"\x01" * 32
NEW = b"\x02" * 32


async def test_a_key_added_while_a_reload_reads_survives_the_reload() -> None:
    """A key announced while the reload's read is in flight is not lost when the
    reload installs its (older) snapshot."""
    release = asyncio.Event()

    async def load() -> list[bytes]:
        await release.wait()
        return [OLD]

    known = KnownKeys(load)
    reload = asyncio.create_task(known.reload())
    await asyncio.sleep(0)
    known.add(digest_prefix(NEW))
    release.set()
    await reload
    assert OLD in known and NEW in known


async def test_a_failed_reload_keeps_what_was_known() -> None:
    """An outage during the reload keeps the previous set instead of emptying it."""
    answers: list[list[bytes] | None] = [[OLD], None]

    async def load() -> list[bytes]:
        answer = answers.pop(0)
        if answer is None:
            raise StorageUnavailable("down")
        return answer

    known = KnownKeys(load)
    await known.reload()
    await known.reload()
    assert OLD in known and len(known) == 1
