"""Every ``authd_`` metric, defined once.

Labels carry only bounded values (route templates, grant types, error codes,
states); never a key, token, client secret, raw path or IP. When several uvicorn
workers run, ``authd serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder
before any worker starts, and ``/metrics`` aggregates every worker's files.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.registry import Collector


class TurnTally:
    """What every request adds to the metrics that move on every request, added to
    their series once per turn of the event loop.

    Four counters and a histogram move on every token (requests answered, the worker's
    share, tokens issued, keys verified; the request's duration), and prometheus_client
    takes a lock and checks its input on each ``inc`` or ``observe``: a fifth of what
    authd added to a token outside the signature (issue 15). Here a request adds one
    to a dict entry or appends its duration, and at the end of the turn each counter
    gets the turn's total in one ``inc`` and each histogram bucket its count. Whatever
    reads the metrics reads them after a flush: ``render`` (``/metrics``) and every
    collection of the default registry (its first collector flushes), so no reader
    sees a count that a finished request has not added yet. Metrics of rare events
    keep their own ``inc``.
    """

    def __init__(self) -> None:
        self._counts: dict[Counter, int] = {}
        self._observed: dict[Histogram, list[float]] = {}

    def _schedule(self) -> bool:
        """Schedule the flush at the end of this turn (for the turn's first addition);
        False without an event loop, where nothing would flush later."""
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:
            return False
        return True

    def inc(self, counter: Counter) -> None:
        counts = self._counts
        if counts or self._observed or self._schedule():
            counts[counter] = counts.get(counter, 0) + 1
        else:
            counter.inc()

    def observe(self, histogram: Histogram, value: float) -> None:
        observed = self._observed
        if observed or self._counts or self._schedule():
            values = observed.get(histogram)
            if values is None:
                observed[histogram] = [value]
            else:
                values.append(value)
        else:
            histogram.observe(value)

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        observed, self._observed = self._observed, {}
        for counter, count in counts.items():
            counter.inc(count)
        for histogram, values in observed.items():
            observe_all(histogram, values)


def observe_all(histogram: Histogram, values: list[float]) -> None:
    """``histogram.observe(value)`` for each value, in one addition to the sum and one
    per bucket. A value falls in the first bucket whose bound it does not exceed, as
    ``observe`` places it (the bounds end with +Inf). Reaches into the child's
    ``_sum`` and ``_buckets``, prometheus_client's own per-series values (pinned in the
    lock file; ``tests/observability/test_metrics.py`` holds this to ``observe``)."""
    bounds = histogram._upper_bounds
    per_bucket = [0] * len(bounds)
    for value in values:
        per_bucket[bisect_left(bounds, value)] += 1
    histogram._sum.inc(sum(values))
    for bucket, count in zip(histogram._buckets, per_bucket, strict=True):
        if count:
            bucket.inc(count)


TALLY = TurnTally()


class _FlushTally(Collector):
    """Registered before every metric below: a collection of the default registry
    runs it first."""

    def collect(self) -> list[Any]:
        TALLY.flush()
        return []


REGISTRY.register(_FlushTally())

HTTP_REQUESTS = Counter(
    "authd_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "authd_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

REQUESTS_SHED = Counter(
    "authd_requests_shed_total",
    "Requests answered 503 at once because the worker had AUTHD_MAX_IN_FLIGHT in flight.",
)
WORKER_REQUESTS = Counter(
    "authd_worker_requests_total",
    "Requests answered, by worker process index (0..AUTHD_WORKERS-1; a restarted "
    "worker keeps its index): each worker's share of the load.",
    ["worker"],
)

SIGNING_KEYS = Gauge(
    "authd_signing_keys",
    "Signing keys by lifecycle state.",
    ["state"],
    multiprocess_mode="livemax",
)
KEY_ROTATIONS = Counter(
    "authd_key_rotations_total", "Signing-key rotations, by trigger.", ["trigger"]
)
ACTIVE_KEY_AGE = Gauge(
    "authd_signing_key_active_age_seconds",
    "Seconds since the active signing key started signing.",
    multiprocess_mode="livemax",
)

TOKENS_ISSUED = Counter("authd_tokens_issued_total", "Access tokens issued, by grant.", ["grant"])
DPOP_PROOFS = Counter(
    "authd_dpop_proofs_total",
    "DPoP proofs at the token endpoints, by outcome (valid, invalid, replayed, nonce).",
    ["outcome"],
)
TOKEN_EXCHANGES = Counter(
    "authd_token_exchanges_total",
    "RFC 8693 token exchanges, by outcome (issued or the error code).",
    ["outcome"],
)
TOKEN_REQUESTS_FAILED = Counter(
    "authd_token_requests_failed_total",
    "Token requests refused, by grant and error code.",
    ["grant", "error"],
)
API_KEY_VERIFICATIONS = Counter(
    "authd_api_key_verifications_total", "API-key checks, by result.", ["result"]
)
RATE_LIMITED = Counter("authd_rate_limited_total", "Requests refused by a rate limit.", ["limit"])
RATE_LIMIT_FALLBACK = Counter(
    "authd_rate_limit_fallback_total",
    "Rate-limit decisions taken in-process because Redis failed.",
)

LOGIN_ATTEMPTS = Counter("authd_login_attempts_total", "Password logins, by result.", ["result"])
REFRESHES = Counter("authd_refresh_total", "Refresh-token uses, by result.", ["result"])
REFRESH_REUSE = Counter(
    "authd_refresh_reuse_detected_total", "Reuse of a spent refresh token (family revoked)."
)
REVOCATIONS = Counter("authd_revocations_total", "Revocations recorded, by kind.", ["kind"])
DENYLIST_FALLBACK = Counter(
    "authd_denylist_fallback_total",
    "Denylist checks answered from the database because Redis failed.",
)
AUTH_ANOMALIES = Counter(
    "authd_auth_anomalies_total",
    "Unusual logins or API-key uses, by kind (login, apikey) and reason.",
    ["kind", "reason"],
)
AUDIT_DROPPED = Counter(
    "authd_audit_write_failures_total", "Audit or last-use batches that failed to write."
)
OUTAGE_DROPPED = Counter(
    "authd_outage_buffer_dropped_total",
    "Audit events or last-use records dropped because their in-memory buffer was full"
    " while storage was unreachable, by buffer (audit, last_use).",
    ["buffer"],
)
API_KEY_STALE_SERVED = Counter(
    "authd_api_key_stale_served_total",
    "API-key verifications answered from a record kept through a storage outage"
    " (AUTHD_API_KEY_STALE_IF_ERROR).",
)
CHANGE_FEED_DELIVERED = Counter(
    "authd_change_feed_delivered_total",
    "Invalidations this replica learned from the database's change cursor rather than"
    " from Redis pub/sub.",
)

_K = TypeVar("_K", bound=Hashable)
_C = TypeVar("_C")


class LabelledChildren(dict[_K, _C]):
    """The labelled children of a metric, each looked up once: ``children[key]``.

    ``Metric.labels(...)`` takes a lock, builds a tuple of strings and looks it up on
    every call, a cost the hot path would pay on every request; here a known key is one
    dict subscription, and ``labelled(key)`` runs only the first time the key is seen.
    For a metric of one label pass its ``labels``; otherwise a function of the key (for
    series always taken together, returning all of them, so that they cost one lookup
    between them).

    Nothing is ever evicted, so the keys must come from a bounded set: label values of
    authd's own making (route templates, grant types, statuses, the HTTP parser's
    methods), never a value a client chooses freely.
    """

    def __init__(self, labelled: Callable[[_K], _C]) -> None:
        super().__init__()
        self._labelled = labelled

    def __missing__(self, key: _K) -> _C:
        child = self[key] = self._labelled(key)
        return child


def render() -> tuple[bytes, str]:
    """The exposition for this process, or for all workers in multiprocess mode."""
    TALLY.flush()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
