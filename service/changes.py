"""The change cursor: every bus invalidation, also written to the database.

Redis is an accelerator, never a correctness dependency (DESIGN §2). Each message
published on the bus ("drop what you cached about X") is first appended to the
``changes`` table; every replica polls ``id > cursor`` on its primary key every
``POLL_INTERVAL`` seconds, always (one indexed probe that usually returns nothing),
and delivers what Redis pub/sub did not already bring. So an API key revoked, a client
disabled or a signing-key set changed reaches every replica within a second whether
Redis is up, stopped or frozen, and a message pub/sub lost is still delivered.

Ids are drawn from a sequence when the insert runs, so on PostgreSQL a later id can
commit before an earlier one. The cursor only advances over ids it has seen; a hole is
waited for ``GAP_WAIT`` seconds (an insert still committing) and then passed (a rolled
back insert leaves a hole forever).
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
    to the handlers once whichever path brings it first.
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
        self._seen: set[int] = set()
        self._gap_since: float | None = None
        self._purged_at = clock()

    def claim(self, change_id: int) -> bool:
        """Record ``change_id`` as delivered; False when it already was."""
        if self.position is not None and change_id <= self.position:
            return False
        if change_id in self._seen:
            return False
        self._seen.add(change_id)
        self._advance()
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
        """Deliver the changes no other path brought; return how many."""
        if self.position is None:
            self.position = await self._store.start_position(self._started_at)
            self._seen = {i for i in self._seen if i > self.position}
        delivered = 0
        while True:
            before = self.position
            batch = await self._store.since(self.position, BATCH)
            for change in batch:
                if self.claim(change.id):
                    delivered += 1
                    CHANGE_FEED_DELIVERED.inc()
                    await self._deliver(change.topic, change.payload)
            self._advance()
            if len(batch) < BATCH or self.position == before:
                break
        await self._purge()
        return delivered

    def _advance(self) -> None:
        """Move the cursor over every contiguous id seen; pass a hole that stayed
        open for GAP_WAIT seconds."""
        if self.position is None:
            return
        start = self.position
        while self.position + 1 in self._seen:
            self.position += 1
            self._seen.discard(self.position)
        if not self._seen:
            self._gap_since = None
            return
        now = self._clock()
        if self._gap_since is None or self.position != start:
            self._gap_since = now
        elif now - self._gap_since >= GAP_WAIT:
            self.position = min(self._seen) - 1
            self._gap_since = None
            self._advance()

    async def _purge(self) -> None:
        if self._clock() - self._purged_at < PURGE_EVERY:
            return
        self._purged_at = self._clock()
        await self._store.purge(time.time() - KEEP)
