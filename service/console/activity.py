"""Token issuance and failures over the last hour, for the overview's charts.

Read from this process's own Prometheus counters (``authd_tokens_issued_total`` by
grant, ``authd_token_requests_failed_total`` by grant and error), sampled once a
minute into a ring of 61 samples. So the charts show what *this worker* served since
it started (at most the last hour): with several workers or replicas, Prometheus
(``sum(increase(...[1h]))``) has the whole picture; the console says so under the
chart. The audit log is not used: successful exchanges are not audited per request
(they are the hot path, DESIGN §7).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from prometheus_client import Counter

from service.observability.metrics import TOKEN_REQUESTS_FAILED, TOKENS_ISSUED

SAMPLE_INTERVAL = 60.0
WINDOW = 3600.0
Sample = dict[tuple[str, ...], float]


def _read(counter: Counter) -> Sample:
    values: Sample = {}
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                values[tuple(sample.labels.values())] = sample.value
    return values


@dataclass(frozen=True, slots=True)
class Series:
    """Per label set: the per-minute counts (oldest first) and the total."""

    label: str
    minutes: tuple[float, ...]
    total: float


class Activity:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._samples: deque[tuple[float, Sample, Sample]] = deque(maxlen=61)
        self.sample()

    def sample(self) -> None:
        self._samples.append((self._clock(), _read(TOKENS_ISSUED), _read(TOKEN_REQUESTS_FAILED)))

    async def tick(self) -> None:
        self.sample()

    @property
    def since(self) -> float:
        return self._samples[0][0]

    def issued(self) -> list[Series]:
        return self._series(1)

    def failures(self) -> list[Series]:
        return self._series(2)

    def _series(self, which: int) -> list[Series]:
        now = self._clock()
        points = [(at, values[which - 1]) for at, *values in self._samples
                  if now - at <= WINDOW + SAMPLE_INTERVAL]
        current = _read(TOKENS_ISSUED) if which == 1 else _read(TOKEN_REQUESTS_FAILED)
        points.append((now, current))
        labels = sorted(set().union(*(p[1].keys() for p in points)))
        result = []
        for label in labels:
            counts = [p[1].get(label, 0.0) for p in points]
            minutes = tuple(max(0.0, b - a) for a, b in pairwise(counts))
            total = sum(minutes)
            if total > 0:
                result.append(Series("/".join(label), minutes[-60:], total))
        return result
