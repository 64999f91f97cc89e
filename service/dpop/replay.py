"""The ``jti`` replay cache of DPoP proofs (RFC 9449 §11.1).

With Redis, one ``SET key 1 NX PX window`` per proof, shared by every replica, so a
proof accepted by one replica is refused by all. Without Redis (the embedded
default, single process), or while Redis does not answer, the in-process cache of
the verifier library stands in: a proof then stays single-use on this replica, and
the ``iat`` window still bounds its life (docs/service-to-service.md).
"""

from __future__ import annotations

import time

import structlog
from authd_verifier.dpop import MemoryReplayCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("authd.dpop.replay")
REDIS_RETRY_AFTER = 5.0


class ProofReplayCache:
    def __init__(self, redis: Redis | None, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix + "dpop:"
        self._local = MemoryReplayCache()
        self._redis_down_until = 0.0

    async def first_use(self, key: str, ttl: float) -> bool:
        """True the first time ``key`` (a digest, never the proof) is seen within ``ttl``."""
        # The local cache also remembers Redis-checked proofs: a Redis outage that
        # starts right after a use must not make that proof usable again here.
        local = self._local.first_use(key, ttl)
        if self._redis is None or time.monotonic() < self._redis_down_until:
            return local
        try:
            stored = await self._redis.set(self._prefix + key, b"1", nx=True,
                                           px=int(ttl * 1000))
        except (RedisError, OSError) as exc:
            self._redis_down_until = time.monotonic() + REDIS_RETRY_AFTER
            log.warning("dpop.replay_cache_local", error=type(exc).__name__)
            return local
        return bool(stored) and local
