"""The Redis mirror of the denylist: the fast path of every revocation check.

Every entry is a key ``<prefix>rv:<kind>:<value>`` that expires with the entry; a
``sub`` key holds its ``not_before``. A sentinel key ``<prefix>rv:loaded`` says the
mirror is complete: Redis restarted empty has no sentinel, and a check that finds
none answers from the database until the mirror is reloaded. The mirror is never
trusted to say "allowed" when it may be missing entries.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.revocation.store import Revocation

# Keep the larger not_before and the longer lifetime: replays of older entries (the
# mirror loop re-sends what the writer already sent) can never shorten a revocation.
_SET_MAX = """
local cur = redis.call('GET', KEYS[1])
local nb = tonumber(ARGV[1])
local px = tonumber(ARGV[2])
if cur then
  local c = tonumber(cur)
  if c and c > nb then nb = c end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > px then px = ttl end
end
redis.call('SET', KEYS[1], tostring(nb), 'PX', px)
return 1
"""

MirrorError = (RedisError, OSError, TimeoutError)


class MirrorIncomplete(Exception):
    """The Redis mirror lacks its sentinel: it cannot be trusted to say "allowed"."""


class RedisDenylist:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix + "rv:"
        self._sentinel = self._prefix + "loaded"
        self._set_max = redis.register_script(_SET_MAX)

    def key(self, kind: str, value: str) -> str:
        return f"{self._prefix}{kind}:{value}"

    async def is_revoked(
        self, jti: str | None, sid: str | None, sub: str | None, iat: float
    ) -> bool:
        """One round trip; raises MirrorIncomplete or a Redis error when unsure."""
        keys = [self._sentinel]
        keys.append(self.key("jti", jti) if jti else self._sentinel)
        keys.append(self.key("sid", sid) if sid else self._sentinel)
        keys.append(self.key("sub", sub) if sub else self._sentinel)
        loaded, by_jti, by_sid, by_sub = await self._redis.mget(keys)
        if loaded is None:
            raise MirrorIncomplete
        if jti and by_jti is not None:
            return True
        if sid and by_sid is not None:
            return True
        return bool(sub and by_sub is not None and iat < float(by_sub))

    async def put(self, entries: Iterable[Revocation]) -> None:
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            count = 0
            for entry in entries:
                ttl_ms = int((entry.expires_at - now) * 1000) + 1
                if ttl_ms <= 0:
                    continue
                await self._set_max(
                    keys=[self.key(entry.kind, entry.value)],
                    args=[entry.not_before or 0, ttl_ms],
                    client=pipe,
                )
                count += 1
            if count:
                await pipe.execute()

    async def is_complete(self) -> bool:
        return bool(await self._redis.exists(self._sentinel))

    async def mark_complete(self) -> None:
        await self._redis.set(self._sentinel, b"1")
