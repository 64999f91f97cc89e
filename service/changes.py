"""The change cursor: every bus invalidation, also written to the database.

Redis is an accelerator, never a correctness dependency (DESIGN §2). Each message
published on the bus ("drop what you cached about X") is first appended to the
``changes`` table; every replica polls ``id > cursor`` on its primary key every
``POLL_INTERVAL`` seconds, always (one indexed probe that usually returns nothing),
and delivers what Redis pub/sub did not already bring. So an API key revoked, a client
disabled or a signing-key set changed reaches every replica within a second whether
Redis is up, stopped or frozen, and a message pub/sub lost is still delivered.

Ids are drawn from a sequence when the insert runs, so on PostgreSQL a later id can
commit before an earlier one. The cursor only advances over ids it has read from the
table; a hole (a missing id below one read) is waited for (an insert still committing)
and passed only by a poll that succeeded and started at least ``GAP_WAIT`` seconds after
the poll that first saw the hole (a rolled-back insert leaves a hole forever). Ids that
Redis or this replica's own publish delivered are remembered only so as not to deliver
them twice: they neither move the cursor nor start or end a hole's wait, and a failed
poll proves nothing, so an outage of the table never lets the clock pass a hole.

A replica starts ``START_MARGIN`` seconds before its own start instant, by the
publishers' ``created_at`` stamps: a publisher whose clock runs behind ours would
otherwise stamp a change made after our start as older and it would be skipped.
Re-delivering a minute of invalidations at start-up only drops caches that are empty.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from service.observability.metrics import CHANGE_FEED_DELIVERED
from service.store import Database

log = structlog.get_logger("authd.changes")

POLL_INTERVAL = 0.5
GAP_WAIT = 5.0
# Replicas' clocks must agree within this (NTP keeps them within milliseconds).
START_MARGIN = 60.0
BATCH = 500
KEEP = 3600.0
PURGE_EVERY = 60.0

INSERT = "INSERT INTO changes (topic, payload, created_at) VALUES ($1, $2, $3) RETURNING id"
SINCE = "SELECT id, topic, payload FROM changes WHERE id > $1 ORDER BY id LIMIT $2"
# Where a replica starts: after every change made before it started (nothing it
# caches can predate its start), so a change made while it was coming up is delivered.
START = "SELECT COALESCE(MAX(id), 0) AS id FROM changes WHERE created_at < $1"
PURGE = "DELETE FROM changes WHERE created_at < $1"


@dataclass(frozen=True, slots=True)
class Change:
    id: int
    topic: str
    payload: str


class ChangeStore(Protocol):
    async def append(self, topic: str, payload: str, at: float) -> int: ...

    async def since(self, position: int, limit: int) -> list[Change]: ...

    async def start_position(self, before: float) -> int: ...

    async def purge(self, before: float) -> int: ...


class SqlChangeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, topic: str, payload: str, at: float) -> int:
        return int(await self._db.fetchval(INSERT, topic, payload, at))

    async def since(self, position: int, limit: int) -> list[Change]:
        rows = await self._db.fetch(SINCE, position, limit)
        return [Change(int(r["id"]), r["topic"], r["payload"]) for r in rows]

    async def start_position(self, before: float) -> int:
        return int(await self._db.fetchval(START, before))

    async def purge(self, before: float) -> int:
        return await self._db.execute(PURGE, before)


Deliver = Callable[[str, str], Awaitable[None]]


class ChangeFeed:
    """One replica's cursor over the ``changes`` table.

    ``claim(id)`` is how the other paths (Redis pub/sub, this replica's own publish)
    say "delivered": it answers whether the change is new, so each change is handed
    to the handlers once whichever path brings it first. Only ``poll`` reads the table,
    so only ``poll`` moves the cursor.
    """

    def __init__(
        self, store: ChangeStore, deliver: Deliver, *, started_at: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._deliver = deliver
        self._started_at = time.time() if started_at is None else started_at
        self._clock = clock
        self.position: int | None = None
        # Ids above the cursor: handed to the handlers (by any path) ...
        self._delivered: set[int] = set()
        # ... read from the table by a poll ...
        self._read: set[int] = set()
        # ... and holes below the highest id read: when the poll that first saw each began.
        self._holes: dict[int, float] = {}
        self._purged_at = clock()

    def claim(self, change_id: int) -> bool:
        """Record ``change_id`` as delivered; False when it already was."""
        if self.position is not None and change_id <= self.position:
            return False
        if change_id in self._delivered:
            return False
        self._delivered.add(change_id)
        return True

    async def append(self, topic: str, payload: str) -> int | None:
        """Write a change; its id (already claimed), or None when storage is down."""
        try:
            change_id = await self._store.append(topic, payload, time.time())
        except Exception as exc:
            # The caller's own change is already committed: never fail it for this.
            # Without the row, other replicas learn of it from Redis or the cache TTL.
            log.warning("changes.append_failed", topic=topic, error=type(exc).__name__)
            return None
        self.claim(change_id)
        return change_id

    async def poll(self) -> int:
        """Deliver the changes no other path brought; return how many.

        Reads every row above the cursor, a page at a time, each page after the last
        id of the one before: behind an open hole the cursor stays put, and re-reading
        only its first page would never reach the rows past it. A poll that fails
        part-way leaves the cursor and the holes' waits as they were.
        """
        if self.position is None:
            self.position = await self._store.start_position(self._started_at - START_MARGIN)
            self._delivered = {i for i in self._delivered if i > self.position}
        started = self._clock()
        delivered = 0
        after = self.position
        while True:
            batch = await self._store.since(after, BATCH)
            for change in batch:
                self._read.add(change.id)
                self._holes.pop(change.id, None)
                if self.claim(change.id):
                    delivered += 1
                    CHANGE_FEED_DELIVERED.inc()
                    await self._deliver(change.topic, change.payload)
            if len(batch) < BATCH:
                break
            after = batch[-1].id
        self._advance(started)
        await self._purge()
        return delivered

    def _advance(self, poll_started: float) -> None:
        """Move the cursor over every contiguous id read, and over each hole that a
        poll starting ``GAP_WAIT`` after the hole was first seen still found open."""
        if self.position is None:
            return
        top = max(self._read, default=self.position)
        for hole in range(self.position + 1, top):
            if hole not in self._read:
                self._holes.setdefault(hole, poll_started)
        while True:
            following = self.position + 1
            seen_open_since = self._holes.get(following)
            if following in self._read:
                self._read.discard(following)
            elif seen_open_since is not None and poll_started - seen_open_since >= GAP_WAIT:
                del self._holes[following]
                log.info("changes.hole_passed", id=following)
            else:
                break
            self.position = following
            self._delivered.discard(following)

    async def _purge(self) -> None:
        if self._clock() - self._purged_at < PURGE_EVERY:
            return
        self._purged_at = self._clock()
        await self._store.purge(time.time() - KEEP)
