"""The in-process cache of verified keys that keeps storage off the exchange path.

An entry is fresh for ``api_key_cache_ttl`` seconds. Revoking a key or disabling a
client publishes an invalidation on the bus, which drops the entries on every replica
at once (Redis pub/sub, or the database's change cursor while Redis is down: see
``service/changes.py``); without the message the TTL bounds how long a stale entry can
answer. Expiry is checked on every use against the cached ``expires_at``, so an
expiring key stops at its instant.

Stale-if-error (``AUTHD_API_KEY_STALE_IF_ERROR``, RFC 5861's idea for a cache of
records): an entry past its freshness is kept until that many seconds after its last
successful verification. When the store cannot be reached, ``serve_stale`` answers with
it, counted in ``authd_api_key_stale_served_total``, and holds it fresh for another
TTL so that an outage costs one failed lookup per key and TTL, not one per request.
An invalidation drops the entry entirely, stale window and all.

A lookup that started before an invalidation must not re-insert what it read: every
invalidation bumps ``epoch`` and ``put`` refuses a read begun in an older epoch.

Refresh ahead: a record used in the second half of its freshness asks its owner (the
``refresh`` callback) to read it again in the background, once, while it keeps
answering. A key in steady use therefore never expires under its requests: without
this, every request in flight when a busy key's entry expired missed at once and
queued on the store, the multi-second stall measured at saturation (issue 15). The
staleness bound with a ``refresh`` owner is ``2 * ttl``: past its TTL an entry answers
for another TTL while it is re-read, so that requests never queue behind the store while
a record is at hand; past that they wait for the read. Revocations wait for neither:
they drop the entry at once through the bus (or the change cursor).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from service.apikeys.models import VerifiedKey
from service.observability.metrics import API_KEY_STALE_SERVED

MAX_ENTRIES = 100_000
# While the store is down, a stale entry is re-tried at most this often per key.
MIN_RETRY = 1.0
# The part of an entry's freshness, at its end, in which a use triggers a re-read:
# half, so that a re-read slowed by a saturated loop still lands before expiry.
REFRESH_AHEAD = 0.5


@dataclass(slots=True)
class _Entry:
    fresh_until: float
    stale_until: float
    verified: VerifiedKey
    refresh_from: float
    stale: bool = False
    refreshing: bool = False


class KeyCache:
    def __init__(
        self, ttl: float, *, stale_if_error: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        refresh: Callable[[bytes], None] | None = None,
    ) -> None:
        self._ttl = ttl
        self._refresh = refresh
        self._stale_if_error = stale_if_error
        self._clock = clock
        self._entries: dict[bytes, _Entry] = {}
        self.epoch = 0

    def get(self, digest: bytes) -> VerifiedKey | None:
        """The fresh record, or None (a record past its freshness stays for
        ``serve_stale`` until its stale window ends)."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        now = self._clock()
        if entry.fresh_until <= now:
            # An entry already served stale (the store is down) never outlives its
            # stale-if-error window this way.
            if (self._refresh is not None and now < entry.fresh_until + self._ttl
                    and (not entry.stale or now < entry.stale_until)):
                # Past its TTL by less than another TTL: answer and have it re-read, rather
                # than queue every request behind the store (a saturated loop makes each
                # read slow, so a re-read asked for in time may still be on its way).
                if not entry.refreshing and now >= entry.refresh_from:
                    entry.refreshing = True
                    self._refresh(digest)
                return entry.verified
            if entry.stale_until <= now:
                del self._entries[digest]
            return None
        if entry.stale:
            API_KEY_STALE_SERVED.inc()
        if now >= entry.refresh_from and not entry.refreshing and self._refresh is not None:
            entry.refreshing = True
            self._refresh(digest)
        return entry.verified

    def put(self, digest: bytes, verified: VerifiedKey, epoch: int) -> None:
        """Keep a record just read from the store (its stale window starts now)."""
        if (self._ttl <= 0 and self._stale_if_error <= 0) or epoch != self.epoch:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        now = self._clock()
        fresh_until = now + self._ttl
        self._entries[digest] = _Entry(
            fresh_until, max(fresh_until, now + self._stale_if_error), verified,
            fresh_until - self._ttl * REFRESH_AHEAD,
        )

    def refresh_failed(self, digest: bytes) -> None:
        """A background re-read failed: the entry answers on until its freshness ends
        (then the ordinary miss, or ``serve_stale``, decides) and asks again no sooner
        than MIN_RETRY, so a store outage costs one failed read per key and second."""
        entry = self._entries.get(digest)
        if entry is not None:
            entry.refreshing = False
            entry.refresh_from = self._clock() + MIN_RETRY

    def serve_stale(self, digest: bytes) -> VerifiedKey | None:
        """The store failed: the kept record if it was verified within the stale
        window, held fresh (and counted as stale) for another TTL; else None."""
        entry = self._entries.get(digest)
        if entry is None or self._stale_if_error <= 0:
            return None
        now = self._clock()
        if entry.stale_until <= now:
            del self._entries[digest]
            return None
        entry.fresh_until = min(now + max(self._ttl, MIN_RETRY), entry.stale_until)
        entry.refresh_from = entry.fresh_until - self._ttl * REFRESH_AHEAD
        entry.stale = True
        API_KEY_STALE_SERVED.inc()
        return entry.verified

    def drop(self, digest: bytes) -> None:
        """The store no longer has this key: nothing to serve through an outage."""
        self._entries.pop(digest, None)

    def drop_key(self, key_id: str) -> None:
        self.epoch += 1
        for digest, entry in list(self._entries.items()):
            if entry.verified.key.id == key_id:
                del self._entries[digest]

    def drop_client(self, client_id: str) -> None:
        self.epoch += 1
        for digest, entry in list(self._entries.items()):
            if entry.verified.client.id == client_id:
                del self._entries[digest]

    def clear(self) -> None:
        self.epoch += 1
        self._entries.clear()
