"""Server-rendered SVG pictures as plain geometry: the templates draw the shapes, the
stylesheet colours them by class (no inline style: the console's CSP forbids it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from service.console.activity import Series
from service.signing.rotation import RotationPolicy
from service.signing.store import SigningKeyRecord

TIMELINE_WIDTH = 880
LABEL_WIDTH = 150
ROW_HEIGHT = 28
AXIS_HEIGHT = 30


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    text: str


@dataclass(frozen=True, slots=True)
class Picture:
    width: int
    height: int
    bars: tuple[Bar, ...]
    labels: tuple[Tick, ...]  # row labels: x is the row's y here
    ticks: tuple[Tick, ...]
    now_x: float | None = None


def when(at: float | None) -> str:
    if at is None:
        return "—"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def key_timeline(keys: Sequence[SigningKeyRecord], policy: RotationPolicy,
                 now: float) -> Picture:
    """One row per key: its next, active, retired and gone periods on a time axis,
    the planned future (promotion, scheduled rotation, erasure) drawn as ``planned``."""
    rows = sorted(keys, key=lambda k: k.created_at)
    if not rows:
        return Picture(TIMELINE_WIDTH, AXIS_HEIGHT, (), (), ())
    segments: list[tuple[int, float, float, str, str]] = []
    for index, key in enumerate(rows):
        for start, end, state in _periods(key, policy, now):
            segments.append((index, start, end, state, key.kid))
    start_of_axis = min(k.created_at for k in rows)
    # The future shown is half the past (at least 5 minutes): planned periods that
    # reach further are cut at the edge, their real date in the bar's title.
    horizon = now + max((now - start_of_axis) / 2, 300.0)
    span = max(horizon - start_of_axis, 1.0)
    plot = TIMELINE_WIDTH - LABEL_WIDTH - 60

    def x(at: float) -> float:
        return round(LABEL_WIDTH + (min(at, horizon) - start_of_axis) / span * plot, 1)

    bars = tuple(
        Bar(x(a), AXIS_HEIGHT + i * ROW_HEIGHT + 4, max(2.0, x(b) - x(a)), ROW_HEIGHT - 8,
            state.replace(" ", "-"), f"{kid}: {state} {when(a)} to {when(b)}")
        for i, a, b, state, kid in segments
    )
    labels = tuple(Tick(AXIS_HEIGHT + i * ROW_HEIGHT + ROW_HEIGHT / 2 + 4,
                        f"{k.kid[:12]} ({k.state})") for i, k in enumerate(rows))
    ticks = tuple(Tick(x(start_of_axis + span * n / 3),
                       datetime.fromtimestamp(start_of_axis + span * n / 3, UTC)
                       .strftime("%m-%d %H:%M")) for n in range(4))
    return Picture(TIMELINE_WIDTH, AXIS_HEIGHT + len(rows) * ROW_HEIGHT + 6, bars, labels,
                   ticks, x(now))


def _periods(key: SigningKeyRecord, policy: RotationPolicy, now: float
             ) -> list[tuple[float, float, str]]:
    periods: list[tuple[float, float, str]] = []
    ended = key.revoked_at or key.erased_at
    next_end = key.activated_at or ended or now
    periods.append((key.created_at, next_end, "next"))
    if key.state == "next":
        periods.append((now, max(now, policy.promotable_at(key)), "planned"))
    if key.activated_at is not None:
        active_end = key.retired_at or key.revoked_at or now
        periods.append((key.activated_at, active_end, "active"))
        if key.state == "active":
            periods.append((now, max(now, policy.rotation_due_at(key)), "planned"))
    if key.retired_at is not None:
        retired_end = key.erased_at or key.revoked_at or now
        periods.append((key.retired_at, retired_end, "retired"))
        if key.state == "retired":
            periods.append((now, max(now, policy.erasable_at(key)), "planned"))
    if ended is not None:
        periods.append((ended, max(now, ended), "revoked" if key.revoked_at else "gone"))
    return periods


SPARK_WIDTH = 240
SPARK_HEIGHT = 36


def sparkline(series: Series) -> Picture:
    """Per-minute counts of one series as a small bar chart, newest on the right."""
    top = max(series.minutes, default=0.0) or 1.0
    slot = SPARK_WIDTH / 60
    offset = 60 - len(series.minutes)
    bars = tuple(
        Bar(round((offset + i) * slot, 1), round(SPARK_HEIGHT - value / top * SPARK_HEIGHT, 1),
            round(slot - 1, 1), round(value / top * SPARK_HEIGHT, 1), "spark",
            f"{int(value)} in minute {i - len(series.minutes) + 1}")
        for i, value in enumerate(series.minutes) if value > 0
    )
    return Picture(SPARK_WIDTH, SPARK_HEIGHT, bars, (), ())
