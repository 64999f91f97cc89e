"""The request middleware: request ids, the body limit, route templates."""

from __future__ import annotations

from collections.abc import AsyncIterator

from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from service.observability.logging import add_request_id
from tests.http.app import MAX_BODY, client


def requests_counted(route: str, method: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "authd_http_requests_total", {"route": route, "method": method, "status": status}
    )
    return value or 0.0


async def test_every_response_carries_a_request_id() -> None:
    """A request without X-Request-ID gets a fresh one, different each time."""
    async with client() as http:
        first = await http.get("/items/1")
        second = await http.get("/items/1")
    assert first.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_an_incoming_request_id_is_echoed() -> None:
    """A well-formed incoming X-Request-ID is kept, so a trace spans services."""
    async with client() as http:
        response = await http.get("/items/1", headers={"X-Request-ID": "trace-42.a:b"})
    assert response.headers["x-request-id"] == "trace-42.a:b"


async def test_a_malformed_request_id_is_replaced() -> None:
    """An X-Request-ID with odd characters (log injection) is not echoed."""
    async with client() as http:
        response = await http.get("/items/1", headers={"X-Request-ID": "a b\tc"})
    assert response.headers["x-request-id"] != "a b\tc"


async def test_a_declared_length_over_the_limit_is_413() -> None:
    """A Content-Length over the limit is refused before the handler runs."""
    async with client() as http:
        response = await http.post("/json", content=b"x" * (MAX_BODY + 1),
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["connection"] == "close"


async def test_a_streamed_body_over_the_limit_is_413() -> None:
    """A chunked body (no Content-Length) is cut off once it passes the limit."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"{" * 1024

    async with client() as http:
        response = await http.post("/json", content=chunks(),
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 413


async def test_a_body_at_the_limit_is_read() -> None:
    """Exactly the limit is allowed: the bound is inclusive."""
    body = b'{"a": "' + b"x" * (MAX_BODY - 9) + b'"}'
    async with client() as http:
        response = await http.post("/json", content=body,
                                   headers={"Content-Type": "application/json"})
    assert len(body) == MAX_BODY
    assert response.status_code == 200


async def test_metrics_label_a_parameterised_path_by_its_template() -> None:
    """``/items/7`` is counted under ``/items/{item_id}``, never under its raw path."""
    before = requests_counted("/items/{item_id}", "GET", "200")
    async with client() as http:
        await http.get("/items/7")
    assert requests_counted("/items/{item_id}", "GET", "200") == before + 1
    assert requests_counted("/items/7", "GET", "200") == 0


async def test_metrics_label_a_mounted_route_by_its_full_template() -> None:
    """A route under a Mount is labelled with the mount's prefix in front."""
    before = requests_counted("/admin/clients/{client_id}", "GET", "200")
    async with client() as http:
        response = await http.get("/admin/clients/c1")
    assert response.json() == {"id": "c1"}
    assert requests_counted("/admin/clients/{client_id}", "GET", "200") == before + 1


async def test_metrics_label_an_unknown_path_as_unmatched() -> None:
    """A 404 for any raw path is one bounded label, whatever the path was."""
    before = requests_counted("<unmatched>", "GET", "404")
    async with client() as http:
        await http.get("/unknown/raw/path-xyz")
    assert requests_counted("<unmatched>", "GET", "404") == before + 1
    assert requests_counted("/unknown/raw/path-xyz", "GET", "404") == 0


async def test_a_wrong_method_is_counted_under_the_template() -> None:
    """A 405 is counted under the route it nearly matched."""
    before = requests_counted("/items/{item_id}", "DELETE", "405")
    async with client() as http:
        await http.delete("/items/3")
    assert requests_counted("/items/{item_id}", "DELETE", "405") == before + 1


async def test_a_crash_is_logged_with_the_request_id() -> None:
    """``request.crashed`` is written by the outermost error handler, after this
    middleware finished: its line still carries the request's id."""
    with capture_logs(processors=[add_request_id]) as logs:
        async with client() as http:
            response = await http.get("/crash", headers={"X-Request-ID": "crash-trace-1"})
    assert response.status_code == 500
    [crashed] = [line for line in logs if line["event"] == "request.crashed"]
    assert crashed["request_id"] == "crash-trace-1"


async def test_each_requests_lines_carry_its_own_id() -> None:
    """Two requests served one after the other in the same task (as an in-process
    client does): the second one's lines carry the second id, never the first."""
    with capture_logs(processors=[add_request_id]) as logs:
        async with client() as http:
            await http.get("/crash", headers={"X-Request-ID": "first-1"})
            await http.get("/items/1", headers={"X-Request-ID": "second-2"})
    ids = [(line["event"], line.get("request_id")) for line in logs]
    assert ("request", "second-2") in ids and ("request.crashed", "first-1") in ids
    assert [i for event, i in ids if event == "request"] == ["first-1", "second-2"]


async def test_a_crash_past_the_router_gets_the_same_answer() -> None:
    """An endpoint dispatched without the router (the hot paths) that crashes is
    answered the generic 500 (RFC 6749 shape on /oauth/*), naming nothing internal,
    logged once as ``request.crashed`` with the request's id, and counted as a 500."""
    with capture_logs(processors=[add_request_id]) as logs:
        async with client() as http:
            response = await http.post("/oauth/direct-crash",
                                       headers={"X-Request-ID": "direct-1"})
    assert response.status_code == 500
    assert response.json() == {"error": "server_error", "error_description": "internal error"}
    assert "secret" not in response.text
    assert response.headers["x-request-id"] == "direct-1"
    assert response.headers["cache-control"] == "no-store"
    [crashed] = [line for line in logs if line["event"] == "request.crashed"]
    assert crashed["request_id"] == "direct-1"
    [access] = [line for line in logs if line["event"] == "request"]
    assert (access["route"], access["status"]) == ("/oauth/direct-crash", 500)
