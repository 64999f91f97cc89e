"""The metrics exposition of one process."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from service.observability.metrics import HTTP_REQUESTS, render


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
