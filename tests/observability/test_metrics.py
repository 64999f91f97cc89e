"""The metrics exposition of one process."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from service.observability.metrics import (
    HTTP_REQUESTS,
    TALLY,
    TOKENS_ISSUED,
    LabelledChildren,
    TurnTally,
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
