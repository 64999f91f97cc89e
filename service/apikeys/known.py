"""The keys this deployment has issued, as every replica knows them without I/O.

Why: an address over its failed-attempt budget must still be served with a valid key
(DESIGN §2: the budget bounds store lookups and audit noise for unknown keys, never a
valid client behind a shared NAT or proxy). A key in the exchange cache needs no
lookup; for one that is not, this set tells a key that exists from a random one, so
the random one is refused without touching storage while the existing one is looked
up and served.

Only the first 8 bytes of each SHA-256 digest are kept (one int per key): a random
key lands on a known prefix with probability n / 2^64, and then only costs the lookup
it would have cost anyway. Revoked keys stay in the set until the next reload; they
too only cost a lookup, which answers the revocation.

Freshness: the whole set is reloaded every ``RELOAD_INTERVAL``; the replica that
creates a key adds it at once and the others learn it on the bus (``add``). A key
created elsewhere while the bus is down, presented from an address over its budget
before the next reload, gets 429 with Retry-After, like an unknown key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import structlog

from service.background import Periodic
from service.store import StorageUnavailable

log = structlog.get_logger("authd.apikeys")

RELOAD_INTERVAL = 30.0
PREFIX_BYTES = 8


def digest_prefix(digest: bytes) -> int:
    return int.from_bytes(digest[:PREFIX_BYTES], "big")


class KnownKeys:
    def __init__(self, load: Callable[[], Awaitable[Iterable[bytes]]]) -> None:
        self._load = load
        self._prefixes: set[int] = set()
        # Prefixes added while a reload's read is in flight: its snapshot may predate them.
        self._added_during_reload: set[int] | None = None
        self._loop = Periodic("authd-known-keys", RELOAD_INTERVAL, self.reload)

    def __contains__(self, digest: bytes) -> bool:
        return digest_prefix(digest) in self._prefixes

    def __len__(self) -> int:
        return len(self._prefixes)

    def add(self, prefix: int) -> None:
        self._prefixes.add(prefix)
        if self._added_during_reload is not None:
            self._added_during_reload.add(prefix)

    async def reload(self) -> None:
        self._added_during_reload = set()
        try:
            digests = await self._load()
        except StorageUnavailable as exc:
            # Keep what we had: over-budget addresses keep reaching the keys we know.
            log.warning("apikeys.known_reload_failed", error=str(exc))
            return
        finally:
            added, self._added_during_reload = self._added_during_reload, None
        self._prefixes = {digest_prefix(bytes(d)) for d in digests} | added

    async def start(self) -> None:
        await self.reload()
        self._loop.start()

    async def close(self) -> None:
        await self._loop.stop()
