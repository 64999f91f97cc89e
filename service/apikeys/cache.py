"""The in-process cache of verified keys that keeps storage off the exchange path.

An entry lives for ``api_key_cache_ttl`` seconds at most. Revoking a key or disabling
a client publishes an invalidation on the bus, which drops the entries on every
replica at once (Redis pub/sub); without the bus message (no Redis, or a missed
message) the TTL bounds how long a stale entry can answer. Expiry is checked on every
use against the cached ``expires_at``, so an expiring key stops at its instant.

A lookup that started before an invalidation must not re-insert what it read: every
invalidation bumps ``epoch`` and ``put`` refuses a read begun in an older epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from service.apikeys.models import VerifiedKey

MAX_ENTRIES = 100_000


class KeyCache:
    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[bytes, tuple[float, VerifiedKey]] = {}
        self.epoch = 0

    def get(self, digest: bytes) -> VerifiedKey | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[digest]
            return None
        return entry[1]

    def put(self, digest: bytes, verified: VerifiedKey, epoch: int) -> None:
        if self._ttl <= 0 or epoch != self.epoch:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = (self._clock() + self._ttl, verified)

    def drop_key(self, key_id: str) -> None:
        self.epoch += 1
        for digest, (_, verified) in list(self._entries.items()):
            if verified.key.id == key_id:
                del self._entries[digest]

    def drop_client(self, client_id: str) -> None:
        self.epoch += 1
        for digest, (_, verified) in list(self._entries.items()):
            if verified.client.id == client_id:
                del self._entries[digest]

    def clear(self) -> None:
        self.epoch += 1
        self._entries.clear()
