"""The change cursor (service/changes.py): its store on PostgreSQL and SQLite alike,
and the per-replica cursor that delivers each change once, in order, through holes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from asyncpg.transaction import Transaction

from service.changes import BATCH, GAP_WAIT, INSERT, Change, ChangeFeed, SqlChangeStore
from service.store import Database, open_database
from tests.support.forwarder import Forwarder


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


class OpenInsert:
    """A change row inserted on PostgreSQL in a transaction still open: its id is
    drawn, later ids can commit, and the row is invisible until ``commit``."""

    def __init__(
        self, connection: asyncpg.Connection, transaction: Transaction, change_id: int,
    ) -> None:
        self._connection = connection
        self._transaction = transaction
        self.id = change_id

    @classmethod
    async def begin(cls, url: str, payload: str) -> OpenInsert:
        connection = await asyncpg.connect(url)
        transaction = connection.transaction()
        await transaction.start()
        change_id = await connection.fetchval(INSERT, "t", payload, time.time())
        return cls(connection, transaction, int(change_id))

    async def commit(self) -> None:
        await self._transaction.commit()
        await self._connection.close()

    async def close(self) -> None:
        if not self._connection.is_closed():
            await self._connection.close()


@pytest.fixture
async def pg(pg_template_url: str) -> AsyncIterator[Database]:
    db = await open_database(pg_template_url)
    try:
        yield db
    finally:
        await db.close()


async def started_feed(db: Database, clock: Clock) -> tuple[ChangeFeed, Received]:
    """A feed past every change already in the table, with nothing received yet."""
    received = Received()
    feed = ChangeFeed(SqlChangeStore(db), received, clock=clock)
    await feed.poll()
    received.messages.clear()
    return feed, received


async def test_a_hole_is_not_passed_by_the_clock_while_polls_fail(
    pg_template_url: str, pg_forwarder: Forwarder,
) -> None:
    """Ids claimed over Redis while the table cannot be read do not pass a hole, however
    long it stays open: the insert that commits meanwhile is delivered by the next poll."""
    clock = Clock()
    db = await open_database(pg_forwarder.url_through(pg_template_url))
    try:
        feed, received = await started_feed(db, clock)
        pending = await OpenInsert.begin(pg_template_url, "committed late")
        try:
            after = await SqlChangeStore(db).append("t", "after", time.time())
            await feed.poll()
            pg_forwarder.stop()
            clock.now += 3 * GAP_WAIT
            with pytest.raises(Exception):  # noqa: B017 (whatever the outage raises)
                await feed.poll()
            assert feed.claim(after + 1)
            await pending.commit()
        finally:
            await pending.close()
        pg_forwarder.start()
        await feed.poll()
        assert ("t", "committed late") in received.messages
    finally:
        await db.close()


async def test_a_hole_seen_first_over_redis_is_waited_for_from_the_poll_that_sees_it(
    pg: Database, pg_template_url: str,
) -> None:
    """A later id claimed over Redis does not start a hole's wait: only the table does."""
    clock = Clock()
    feed, received = await started_feed(pg, clock)
    pending = await OpenInsert.begin(pg_template_url, "committed late")
    try:
        after = await SqlChangeStore(pg).append("t", "after", time.time())
        assert feed.claim(after)
        clock.now += GAP_WAIT
        await feed.poll()
        await pending.commit()
    finally:
        await pending.close()
    await feed.poll()
    assert received.messages == [("t", "committed late")]


async def test_a_poll_behind_an_open_hole_reaches_every_page(
    pg: Database, pg_template_url: str,
) -> None:
    """More than a page of changes behind a hole still committing are all delivered."""
    clock = Clock()
    feed, received = await started_feed(pg, clock)
    pending = await OpenInsert.begin(pg_template_url, "committed late")
    try:
        await pg.execute(
            "INSERT INTO changes (topic, payload, created_at)"
            " SELECT 't', 'page', $1 FROM generate_series(1, $2)",
            time.time(), BATCH + 100,
        )
        await feed.poll()
        await feed.poll()
        assert len(received.messages) == BATCH + 100
        await pending.commit()
    finally:
        await pending.close()
    await feed.poll()
    assert received.messages[-1] == ("t", "committed late")
    assert len(received.messages) == BATCH + 101


async def test_a_change_stamped_by_a_clock_running_behind_is_delivered(pg: Database) -> None:
    """A change made after a replica started, by a publisher whose clock is 30 s slow,
    is not taken for one made before the replica started."""
    received = Received()
    feed = ChangeFeed(SqlChangeStore(pg), received, started_at=time.time())
    await SqlChangeStore(pg).append("t", "slow clock", time.time() - 30)
    await feed.poll()
    assert ("t", "slow clock") in received.messages
