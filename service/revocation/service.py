"""RevocationService: record revocations, answer "is this token revoked?", feed them.

The database is the truth; the Redis mirror answers checks in one round trip. When
Redis fails, or its mirror may be incomplete (restarted empty, or writes were lost
while it was unreachable), checks answer from the database — slower, counted in
``authd_denylist_fallback_total``, never a 500 and never "allowed because unknown".
A background loop on every replica copies new database entries into Redis (which
also repairs a write lost to a short Redis outage on another replica within about a
second) and purges expired ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from service.background import Periodic
from service.observability.metrics import DENYLIST_FALLBACK, REVOCATIONS
from service.revocation.errors import BadCursor, InvalidSubject
from service.revocation.mirror import MirrorError, MirrorIncomplete, RedisDenylist
from service.revocation.store import Kind, Revocation, RevocationStore
from service.store import Connection, Database

if TYPE_CHECKING:
    from service.audit.log import AuditLog

log = structlog.get_logger("authd.revocation")

FEED_LIMIT = 1000
MIRROR_INTERVAL = 1.0
PURGE_INTERVAL = 60.0
# An entry outlives the tokens it covers by this much: verifiers accept tokens with a
# small clock leeway after ``exp``.
EXPIRY_MARGIN = 60.0
NO_IAT = -1e18
MAX_SUBJECT_CHARS = 256


@dataclass(frozen=True, slots=True)
class Feed:
    entries: list[Revocation]
    cursor: str

    def as_dict(self) -> dict[str, Any]:
        return {"entries": [e.as_feed_entry() for e in self.entries], "cursor": self.cursor}


def parse_cursor(unverified: str | None) -> int:
    if unverified is None or unverified == "":
        return 0
    if not unverified.isascii() or not unverified.isdigit() or len(unverified) > 18:
        raise BadCursor("since must be a cursor returned by this feed")
    return int(unverified)


class RevocationService:
    def __init__(
        self,
        db: Database,
        store: RevocationStore,
        mirror: RedisDenylist | None,
        *,
        subject_lifetime: float,
        audit: AuditLog | None = None,
    ) -> None:
        """``subject_lifetime``: how long after the instant a subject revocation must
        stay listed — the longest any token of that subject (refresh families too)
        can live. ``audit`` records the operator's subject revocations (only a service
        that never makes one, as in some tests, goes without)."""
        self._db = db
        self._audit = audit
        self._store = store
        self._mirror = mirror
        self._subject_lifetime = subject_lifetime
        # True while this replica cannot trust Redis: every check goes to the database
        # until the mirror loop has caught up again.
        self._degraded = mirror is not None
        self._cursor = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._purger = Periodic("authd-denylist-purge", PURGE_INTERVAL, self.purge_expired)

    # --- checks -------------------------------------------------------------------

    async def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether a token with these (verified) claims is on the denylist by ``jti``,
        by ``sid`` or by ``sub`` issued before a subject revocation."""
        jti = _text(claims.get("jti"))
        sid = _text(claims.get("sid"))
        sub = _text(claims.get("sub"))
        raw_iat = claims.get("iat")
        # A token without a usable iat is treated as issued at the dawn of time, so any
        # subject revocation covers it.
        iat = float(raw_iat) if isinstance(raw_iat, int | float) else NO_IAT
        if self._mirror is not None and not self._degraded:
            try:
                return await self._mirror.is_revoked(jti, sid, sub, iat)
            except MirrorIncomplete:
                log.warning("denylist.mirror_incomplete")
                self._degraded = True
            except MirrorError as exc:
                log.warning("denylist.redis_failed", error=type(exc).__name__)
                self._degraded = True
        if self._mirror is not None:
            DENYLIST_FALLBACK.inc()
        return await self._store.matches(jti, sid, sub, iat, time.time())

    # --- recording ----------------------------------------------------------------

    async def record(
        self, conn: Connection, kind: Kind, value: str, *,
        expires_at: float, not_before: float | None = None,
    ) -> Revocation:
        """Insert an entry inside the caller's transaction; call ``announce`` with it
        after the commit. (If the process dies in between, the mirror loop copies it.)"""
        now = time.time()
        return await self._store.add(
            conn, kind, value, not_before, now, max(expires_at + EXPIRY_MARGIN, now + 1)
        )

    async def announce(self, entries: Iterable[Revocation]) -> None:
        """Count committed entries and copy them into Redis at once."""
        batch = list(entries)
        for entry in batch:
            REVOCATIONS.labels(entry.kind).inc()
        if self._mirror is None or not batch:
            return
        try:
            await self._mirror.put(batch)
        except MirrorError as exc:
            log.warning("denylist.mirror_write_failed", error=type(exc).__name__)
            self._degraded = True

    async def _revoke(
        self, kind: Kind, value: str, expires_at: float, not_before: float | None = None
    ) -> Revocation:
        async with self._db.transaction() as tx:
            entry = await self.record(
                tx, kind, value, expires_at=expires_at, not_before=not_before
            )
        await self.announce([entry])
        return entry

    async def revoke_token(self, jti: str, expires_at: float) -> Revocation:
        """Deny one access token until it expires."""
        return await self._revoke("jti", jti, expires_at)

    async def revoke_session(self, sid: str, expires_at: float) -> Revocation:
        """Deny every token of a session (refresh family) until ``expires_at``, the
        expiry of the last access token the session can have issued."""
        return await self._revoke("sid", sid, expires_at)

    async def revoke_subject(self, sub: str, before: float) -> Revocation:
        """Deny every token of ``sub`` issued before ``before``.

        ``iat`` has whole-second precision, so the instant is rounded up: a token
        issued in the same second as the revocation is revoked too (erring towards
        revoked, never towards allowed)."""
        not_before = float(math.ceil(before))
        return await self._revoke("sub", sub, before + self._subject_lifetime, not_before)

    async def revoke_subject_for_operator(
        self, sub: str, *, actor: str | None, ip: str | None = None
    ) -> Revocation:
        """The operator's "employee left" (HTTP admin API and CLI alike): check the
        subject, revoke everything of it issued before now, and audit who did it."""
        if not sub or len(sub) > MAX_SUBJECT_CHARS or not sub.isprintable():
            raise InvalidSubject(f"the subject must be 1-{MAX_SUBJECT_CHARS} printable characters")
        if self._audit is None:
            raise RuntimeError("an operator revocation needs the audit log")
        entry = await self.revoke_subject(sub, time.time())
        await self._audit.write("subject.revoke", "ok", actor=actor, subject=sub, ip=ip)
        return entry

    # --- feed ---------------------------------------------------------------------

    async def feed(self, unverified_since: str | None, limit: int = FEED_LIMIT) -> Feed:
        """Entries added after the cursor, oldest first, with the cursor to send next."""
        since = parse_cursor(unverified_since)
        entries = await self._store.since(since, time.time(), max(1, min(limit, FEED_LIMIT)))
        cursor = entries[-1].seq if entries else since
        return Feed(entries, str(cursor))

    # --- background work ----------------------------------------------------------

    async def start(self) -> None:
        if self._mirror is not None:
            self._tasks.append(asyncio.create_task(self._mirror_loop(), name="authd-denylist"))
        self._purger.start()

    async def close(self) -> None:
        await self._purger.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def sync_mirror(self) -> None:
        """Copy database entries this replica has not mirrored yet into Redis; reload
        everything when the mirror lost its sentinel. Clears the degraded state."""
        if self._mirror is None:
            return
        if not await self._mirror.is_complete():
            self._cursor = 0
            await self._copy_since_cursor()
            await self._mirror.mark_complete()
            log.info("denylist.mirror_reloaded", last_seq=self._cursor)
        else:
            await self._copy_since_cursor()
        if self._degraded:
            log.info("denylist.mirror_recovered")
        self._degraded = False

    async def _copy_since_cursor(self) -> None:
        if self._mirror is None:
            return
        while True:
            batch = await self._store.since(self._cursor, time.time(), FEED_LIMIT)
            if batch:
                await self._mirror.put(batch)
                self._cursor = batch[-1].seq
            if len(batch) < FEED_LIMIT:
                return

    async def _mirror_loop(self) -> None:
        while True:
            try:
                await self.sync_mirror()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._degraded:
                    log.warning("denylist.mirror_sync_failed", error=type(exc).__name__)
                self._degraded = True
            await asyncio.sleep(MIRROR_INTERVAL if not self._degraded else MIRROR_INTERVAL / 4)

    async def purge_expired(self) -> int:
        """Delete entries whose every covered token has expired."""
        return await self._store.purge(time.time())


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
