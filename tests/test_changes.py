"""The change cursor (service/changes.py): its store on PostgreSQL and SQLite alike,
and the per-replica cursor that delivers each change once, in order, through holes."""

from __future__ import annotations

import time

from service.changes import GAP_WAIT, Change, ChangeFeed, SqlChangeStore
from service.store import Database


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Received:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []

    async def __call__(self, topic: str, payload: str) -> None:
        self.messages.append((topic, payload))


class ListStore:
    """Rows as a test arranges them, to show the cursor's handling of holes (an id
    drawn by an insert that commits later, or never)."""

    def __init__(self) -> None:
        self.rows: list[Change] = []

    async def append(self, topic: str, payload: str, at: float) -> int:
        change_id = max((c.id for c in self.rows), default=0) + 1
        self.rows.append(Change(change_id, topic, payload))
        return change_id

    async def since(self, position: int, limit: int) -> list[Change]:
        return sorted((c for c in self.rows if c.id > position), key=lambda c: c.id)[:limit]

    async def start_position(self, before: float) -> int:
        return 0

    async def purge(self, before: float) -> int:
        return 0


async def test_appended_changes_are_read_back_in_order(database: Database) -> None:
    """since() returns the changes after a position, oldest first."""
    store = SqlChangeStore(database)
    first = await store.append("apikeys.invalidate", "key:a", time.time())
    second = await store.append("signing.keys", "", time.time())
    assert second > first
    changes = await store.since(first - 1, 10)
    assert [(c.topic, c.payload) for c in changes] == [
        ("apikeys.invalidate", "key:a"), ("signing.keys", ""),
    ]


async def test_a_replica_starts_after_the_changes_made_before_it_started(
    database: Database,
) -> None:
    """start_position covers every change older than the instant given."""
    store = SqlChangeStore(database)
    old = await store.append("t", "old", time.time() - 60)
    position = await store.start_position(time.time() - 30)
    assert position >= old
    new = await store.append("t", "new", time.time())
    assert [c.id for c in await store.since(position, 10)] == [new]


async def test_purge_removes_old_changes_only(database: Database) -> None:
    """Rows older than the cut are deleted; newer ones stay."""
    store = SqlChangeStore(database)
    old = await store.append("t", "old", time.time() - 7200)
    new = await store.append("t", "new", time.time())
    assert await store.purge(time.time() - 3600) >= 1
    assert [c.id for c in await store.since(old - 1, 10)] == [new]


async def test_polling_delivers_changes_published_elsewhere(database: Database) -> None:
    """A feed delivers what another process appended after its start."""
    received = Received()
    feed = ChangeFeed(SqlChangeStore(database), received, started_at=time.time())
    await feed.poll()
    received.messages.clear()
    await SqlChangeStore(database).append("apikeys.invalidate", "key:x", time.time())
    assert await feed.poll() == 1
    assert received.messages == [("apikeys.invalidate", "key:x")]


async def test_a_change_is_delivered_once_whichever_path_brings_it_first() -> None:
    """A change claimed by pub/sub (or published here) is not delivered again by the poll."""
    store, received = ListStore(), Received()
    feed = ChangeFeed(store, received)
    await feed.poll()
    change_id = await store.append("t", "p", 0)
    assert feed.claim(change_id)
    assert await feed.poll() == 0
    assert not feed.claim(change_id)
    assert received.messages == []


async def test_a_hole_is_waited_for_then_its_change_delivered() -> None:
    """A change that commits after a later one is still delivered while the hole is young."""
    store, received, clock = ListStore(), Received(), Clock()
    feed = ChangeFeed(store, received, clock=clock)
    await feed.poll()
    store.rows.append(Change(2, "t", "second"))
    await feed.poll()
    store.rows.append(Change(1, "t", "first"))
    clock.now += GAP_WAIT / 2
    await feed.poll()
    assert received.messages == [("t", "second"), ("t", "first")]
    assert feed.position == 2


async def test_a_hole_that_never_fills_is_passed_after_the_wait() -> None:
    """A rolled-back insert's id does not hold the cursor forever."""
    store, received, clock = ListStore(), Received(), Clock()
    feed = ChangeFeed(store, received, clock=clock)
    await feed.poll()
    store.rows.append(Change(2, "t", "second"))
    await feed.poll()
    clock.now += GAP_WAIT
    await feed.poll()
    assert feed.position == 2
    store.rows.append(Change(3, "t", "third"))
    await feed.poll()
    assert received.messages == [("t", "second"), ("t", "third")]
