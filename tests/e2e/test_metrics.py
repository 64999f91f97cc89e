"""/metrics on the real server, with one worker and with several."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.apikeys.support import bootstrap
from tests.support.servers import Server

pytestmark = pytest.mark.e2e

StartServer = Callable[..., Server]


def samples(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, keyed by name and sorted labels."""
    response = httpx.get(server.base_url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def requests_total(server: Server, route: str, status: str = "200",
                   method: str = "GET") -> float:
    key = ("authd_http_requests_total",
           (("method", method), ("route", route), ("status", status)))
    return samples(server).get(key, 0.0)


def test_requests_are_counted_by_route_template_method_and_status(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """A request shows in the counter and the histogram under its route template."""
    server = start_server(embedded_env)
    before = requests_total(server, "/healthz")
    httpx.get(server.base_url + "/healthz")
    assert requests_total(server, "/healthz") == before + 1
    histogram = ("authd_http_request_duration_seconds_count",
                 (("method", "GET"), ("route", "/healthz"), ("status", "200")))
    assert samples(server)[histogram] >= 1


def test_a_raw_unknown_path_never_becomes_a_label(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """/unknown/raw/path is counted as unmatched; the path itself is in no label."""
    server = start_server(embedded_env)
    httpx.get(server.base_url + "/unknown/raw/path")
    text = httpx.get(server.base_url + "/metrics").text
    assert "/unknown/raw/path" not in text
    assert requests_total(server, "<unmatched>", "404") == 1


def test_a_parameterised_path_is_labelled_by_its_template(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """/admin/clients/raw-client-123 is counted under /admin/clients/{client_id}."""
    server = start_server(embedded_env)
    status = httpx.get(server.base_url + "/admin/clients/raw-client-123").status_code
    assert status < 500
    text = httpx.get(server.base_url + "/metrics").text
    assert "raw-client-123" not in text
    assert requests_total(server, "/admin/clients/{client_id}", str(status)) == 1


def test_tokens_issued_at_the_token_endpoint_are_counted_by_grant(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """Each token /oauth/token issues counts once under its grant_type; a refused
    request counts as a failure, not as an issued token."""
    server = start_server(embedded_env)
    admin = bootstrap(server)
    client = admin.client("metrics-check", "read:things")
    key = admin.key(client["id"])["api_key"]
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        for _ in range(2):
            issued = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                               auth=(client["id"], key))
            assert issued.status_code == 200, issued.text
        refused = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                            auth=(client["id"], "ak_live_wrong"))
        assert refused.status_code == 401
    found = samples(server)
    assert found[("authd_tokens_issued_total", (("grant", "client_credentials"),))] == 2
    failed = ("authd_token_requests_failed_total",
              (("error", "invalid_client"), ("grant", "client_credentials")))
    assert found[failed] == 1


def test_two_workers_sum_their_counts(
    start_server: StartServer, embedded_env: dict[str, str]
) -> None:
    """With --workers 2 every worker's requests are counted in the one exposition.

    Whichever worker answers /metrics, the count must reach N: a per-process
    registry would show only its own share and never catch up."""
    # Per-process limits accepted: this test is about the metrics, not the budgets.
    server = start_server({**embedded_env, "AUTHD_PER_PROCESS_LIMITS": "true"}, workers=2)
    before = requests_total(server, "/healthz")
    for _ in range(60):
        # A fresh connection each time, so that both workers take some.
        response = httpx.get(server.base_url + "/healthz", headers={"Connection": "close"})
        assert response.status_code == 200
    deadline = time.monotonic() + 5
    while requests_total(server, "/healthz") < before + 60 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert requests_total(server, "/healthz") == before + 60
    text = httpx.get(server.base_url + "/metrics").text
    families = {f.name for f in text_string_to_metric_families(text)}
    assert {"authd_http_requests", "authd_http_request_duration_seconds"} <= families
