"""Fixed-window rate limits shared across replicas through Redis.

Algorithm: one counter per (limit, subject, window) where window = floor(now / length).
In Redis the counter is ``<prefix>rl:<limit>:<subject>:<window>``, raised with
``INCRBY`` and given its ``EXPIRE`` in the same ``MULTI``/``EXEC`` transaction, so a
counter never outlives its window and concurrent replicas never lose an increment.
A fixed window may let up to twice the rate through around a window boundary; that
is the documented price of one atomic counter per decision (a sliding log would
cost a sorted set per subject).

Cost on the hot path: a replica keeps the count it last learnt from Redis (``known``)
plus its own hits not yet pushed (``pending``) and decides locally. While a subject is
far from its limit, pending hits are pushed in one pipeline every ``sync_interval``
(100 ms); once the remaining budget falls under 10 % of the rate (at least 10 hits)
every hit is pushed synchronously and the answer from Redis decides. So a busy key
costs no Redis round trip per request, and the overshoot across replicas is bounded
by what they admit in one sync interval while still far from the limit.

Without Redis (the embedded default) the counters are purely in-process. When Redis
fails mid-flight the limiter decides on its local counts, counts each such decision
in ``authd_rate_limit_fallback_total``, and retries Redis after a second; the hits it
admitted meanwhile stay pending and the sync pushes them once Redis answers.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.background import Periodic
from service.config import Rate
from service.observability.metrics import RATE_LIMIT_FALLBACK, RATE_LIMITED

log = structlog.get_logger("authd.ratelimit")

SYNC_INTERVAL = 0.1
REDIS_RETRY_AFTER = 1.0
MIN_SYNC_MARGIN = 10

# The failed-attempt budgets per client address (DESIGN §2). They bound guessing and
# wasted store lookups, never valid clients, and are never shared: a user mistyping a
# password must not block the services behind the same address, nor a broken cron job
# with a revoked API key the users.
#   failed_login   — wrong passwords and MFA steps (AUTHD_FAILED_LOGIN_RATE); a correct
#                    password from an address over it is still refused, or 429-vs-200
#                    would tell a guesser which password was right.
#   failed_api_key — API-key attempts that fail (AUTHD_FAILED_API_KEY_RATE); an address
#                    over it is refused only the store lookups of keys this replica does
#                    not know, so a valid key is served whatever the budget says
#                    (service/apikeys/exchange.py).
FAILED_LOGIN_LIMIT = "failed_login"
FAILED_API_KEY_LIMIT = "failed_api_key"


@dataclass(slots=True, eq=False)
class _Counter:
    key: str
    window: int
    ends_at: float
    known: int = 0
    pending: int = 0
    inflight: int = 0  # taken out of ``pending`` by a push still waiting on Redis

    def local_total(self) -> int:
        return self.known + self.inflight + self.pending


class RateLimiter:
    """``await hit(limit, subject, rate)`` counts one event and returns None when it
    is allowed, or the seconds until the window resets when it is not."""

    def __init__(
        self, redis: Redis | None, prefix: str, *, sync_interval: float = SYNC_INTERVAL
    ) -> None:
        self._redis = redis
        self._prefix = prefix + "rl:"
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._dirty: set[_Counter] = set()
        self._redis_down_until = 0.0
        self._loop = Periodic("authd-ratelimit", sync_interval, self.flush)

    def over(self, limit: str, subject: str, rate: Rate) -> float | None:
        """Without counting anything: the seconds until the window resets when
        ``subject`` has spent its budget, else None."""
        now = time.time()
        counter = self._counters.get((limit, subject))
        if counter is None or counter.ends_at <= now:
            return None
        if counter.local_total() >= rate.count:
            return counter.ends_at - now
        return None

    def blocked(self, limit: str, subject: str, rate: Rate) -> float | None:
        """``over``, counting a refusal in ``authd_rate_limited_total{limit}``."""
        wait = self.over(limit, subject, rate)
        if wait is not None:
            RATE_LIMITED.labels(limit).inc()
        return wait

    async def hit(self, limit: str, subject: str, rate: Rate) -> float | None:
        now = time.time()
        counter = self._counter(limit, subject, rate, now)
        if counter.local_total() >= rate.count:
            RATE_LIMITED.labels(limit).inc()
            return counter.ends_at - now
        counter.pending += 1
        if self._redis is None:
            return None
        if now < self._redis_down_until:
            # Decided locally; the hit stays pending and the sync pushes it once Redis is back.
            self._dirty.add(counter)
            RATE_LIMIT_FALLBACK.inc()
            return None
        margin = max(MIN_SYNC_MARGIN, rate.count // 10)
        if rate.count - counter.local_total() > margin:
            self._dirty.add(counter)
            return None
        total = await self._push([counter])
        if total is None:
            RATE_LIMIT_FALLBACK.inc()
            return None
        if total[0] > rate.count:
            RATE_LIMITED.labels(limit).inc()
            return counter.ends_at - now
        return None

    def _counter(self, limit: str, subject: str, rate: Rate, now: float) -> _Counter:
        window = int(now // rate.window)
        counter = self._counters.get((limit, subject))
        if counter is None or counter.window != window:
            if counter is not None:
                self._dirty.discard(counter)
            counter = _Counter(
                key=f"{self._prefix}{limit}:{subject}:{window}",
                window=window,
                ends_at=(window + 1) * rate.window,
            )
            self._counters[(limit, subject)] = counter
        return counter

    async def _push(self, counters: list[_Counter]) -> list[int] | None:
        """Add each counter's pending hits in Redis; learn the totals. None on failure.

        The pending hits are taken (moved to ``inflight``) before the await, so a hit or
        flush running meanwhile pushes only hits that came after: each hit reaches Redis
        exactly once. On failure they go back to ``pending`` and the counter is marked
        dirty again, so the sync pushes them once Redis answers.
        """
        if self._redis is None:
            return None
        batch = [(c, c.pending) for c in counters if c.pending]
        if not batch:
            return [c.local_total() for c in counters]
        for counter, count in batch:
            counter.pending -= count
            counter.inflight += count
        now = time.time()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                for counter, count in batch:
                    pipe.incrby(counter.key, count)
                    pipe.expireat(counter.key, int(counter.ends_at) + 1)
                results = await pipe.execute()
        except (RedisError, OSError) as exc:
            for counter, count in batch:
                counter.inflight -= count
                counter.pending += count
                self._dirty.add(counter)
            self._redis_down_until = now + REDIS_RETRY_AFTER
            log.warning("ratelimit.redis_failed", error=type(exc).__name__)
            return None
        totals: list[int] = []
        for (counter, count), total in zip(batch, results[::2], strict=True):
            counter.inflight -= count
            # Concurrent pushes may finish out of order; Redis totals only grow.
            counter.known = max(counter.known, int(total))
            totals.append(int(total))
        return totals

    async def flush(self) -> None:
        """Push every counter with pending hits (the background sync, and on close)."""
        now = time.time()
        for key, counter in list(self._counters.items()):
            if counter.ends_at <= now:
                del self._counters[key]
        if self._redis is None or now < self._redis_down_until:
            return
        dirty = [c for c in self._dirty if c.ends_at > now]
        self._dirty.clear()
        if not dirty:
            return
        if await self._push(dirty) is None:
            RATE_LIMIT_FALLBACK.inc()

    async def start(self) -> None:
        """Always: besides the Redis sync, the loop drops counters whose window ended,
        without which an in-process limiter keeps one counter per IP or key ever seen."""
        self._loop.start()

    async def close(self) -> None:
        await self._loop.stop()
        with contextlib.suppress(Exception):
            await self.flush()
