"""The metrics exposition of one process."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from service.observability.metrics import (
    HTTP_REQUESTS,
    TALLY,
    TOKENS_ISSUED,
    LabelledChildren,
    TurnTally,
    observe_all,
    render,
)


def test_the_exposition_parses_and_names_the_http_families() -> None:
    """render() answers text Prometheus parses, with both HTTP families present."""
    HTTP_REQUESTS.labels("/healthz", "GET", "200").inc()
    body, content_type = render()
    assert content_type.startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {"authd_http_requests", "authd_http_request_duration_seconds"} <= names


def test_every_family_is_prefixed_authd() -> None:
    """Only authd_ metrics (plus the client's own process/platform ones) are exposed."""
    body, _ = render()
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    foreign = {n for n in names if not n.startswith(("authd_", "process_", "python_"))}
    assert foreign == set()


def test_the_same_labels_give_the_same_child() -> None:
    """A key seen before answers the child made the first time, the metric's own."""
    requests = Counter("requests", "Requests.", ["route", "status"], registry=CollectorRegistry())
    children: LabelledChildren[tuple[str, int], Counter] = LabelledChildren(
        lambda labels: requests.labels(*labels))
    first = children["/oauth/token", 200]
    assert children["/oauth/token", 200] is first
    assert first is requests.labels("/oauth/token", "200")


def test_a_child_is_labelled_once_per_key() -> None:
    """``labelled`` runs the first time a key is seen, never again for it."""
    requests = Counter("requests", "Requests.", ["grant"], registry=CollectorRegistry())
    seen: list[str] = []

    def labelled(grant: str) -> Counter:
        seen.append(grant)
        return requests.labels(grant)

    children = LabelledChildren(labelled)
    for grant in ["client_credentials", "refresh_token", "client_credentials"]:
        children[grant].inc()
    assert seen == ["client_credentials", "refresh_token"]


def test_increments_land_on_their_own_labelled_series() -> None:
    """Each key counts on the series of its label values and on no other."""
    registry = CollectorRegistry()
    issued = Counter("issued", "Tokens issued.", ["grant"], registry=registry)
    children: LabelledChildren[str, Counter] = LabelledChildren(issued.labels)
    children["client_credentials"].inc()
    children["client_credentials"].inc()
    children["refresh_token"].inc()

    def counted(grant: str) -> float | None:
        return registry.get_sample_value("issued_total", {"grant": grant})

    assert counted("client_credentials") == 2
    assert counted("refresh_token") == 1
    assert counted("password") is None


async def test_a_turns_counts_reach_the_counter_at_the_end_of_the_turn() -> None:
    """Counts added during a turn of the event loop land on the counter together when
    the turn ends, one ``inc`` for all of them."""
    registry = CollectorRegistry()
    counter = Counter("answered", "Answered.", registry=registry)
    amounts: list[float] = []
    counter_inc = counter.inc

    def counting_inc(amount: float = 1) -> None:
        amounts.append(amount)
        counter_inc(amount)

    counter.inc = counting_inc  # type: ignore[method-assign,assignment]
    tally = TurnTally()
    for _ in range(5):
        tally.inc(counter)
    assert registry.get_sample_value("answered_total") == 0
    await asyncio.sleep(0)
    assert registry.get_sample_value("answered_total") == 5
    assert amounts == [5]
    tally.inc(counter)
    await asyncio.sleep(0)
    assert registry.get_sample_value("answered_total") == 6


async def test_a_reader_sees_the_counts_of_the_turn_in_progress() -> None:
    """Nothing reads a count late: a collection of the default registry and the
    /metrics exposition both flush the turn's counts first."""
    child = TOKENS_ISSUED.labels("urn:test:tally")
    labels = {"grant": "urn:test:tally"}
    before = REGISTRY.get_sample_value("authd_tokens_issued_total", labels) or 0
    TALLY.inc(child)
    TALLY.inc(child)
    assert REGISTRY.get_sample_value("authd_tokens_issued_total", labels) == before + 2
    TALLY.inc(child)
    body, _ = render()
    [family] = [f for f in text_string_to_metric_families(body.decode())
                if f.name == "authd_tokens_issued"]
    [sample] = [s for s in family.samples
                if s.name == "authd_tokens_issued_total" and s.labels == labels]
    assert sample.value == before + 3


def test_without_an_event_loop_a_count_lands_at_once() -> None:
    registry = CollectorRegistry()
    counter = Counter("answered", "Answered.", registry=registry)
    TurnTally().inc(counter)
    assert registry.get_sample_value("answered_total") == 1


def test_observing_a_turns_values_together_is_observing_each() -> None:
    """The batched histogram update leaves every bucket, the count and the sum as
    ``observe`` would, values on a bucket's bound and past the last one included."""
    values = [0.0, 0.0004, 0.001, 0.0011, 0.0025, 0.003, 0.05, 0.05, 1.0, 5.0, 7.5]
    one_by_one, together = CollectorRegistry(), CollectorRegistry()
    buckets = (0.001, 0.0025, 0.005, 0.01, 0.05, 1.0, 5.0)
    each = Histogram("took_seconds", "Took.", ["route"], buckets=buckets, registry=one_by_one)
    batched = Histogram("took_seconds", "Took.", ["route"], buckets=buckets, registry=together)
    for value in values:
        each.labels("/t").observe(value)
    observe_all(batched.labels("/t"), values)

    def samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
        return {(s.name, s.labels.get("le", "")): s.value for family in registry.collect()
                for s in family.samples if not s.name.endswith("_created")}

    assert samples(together) == samples(one_by_one)
    assert samples(together)[("took_seconds_bucket", "0.001")] == 3
    assert samples(together)[("took_seconds_bucket", "+Inf")] == len(values)


async def test_a_turns_durations_reach_the_histogram_at_the_end_of_the_turn() -> None:
    registry = CollectorRegistry()
    took = Histogram("took_seconds", "Took.", buckets=(0.01, 1.0), registry=registry)
    tally = TurnTally()
    tally.observe(took, 0.005)
    tally.observe(took, 0.5)
    assert registry.get_sample_value("took_seconds_count") == 0
    await asyncio.sleep(0)
    assert registry.get_sample_value("took_seconds_count") == 2
    assert registry.get_sample_value("took_seconds_bucket", {"le": "0.01"}) == 1
    assert registry.get_sample_value("took_seconds_sum") == 0.505
