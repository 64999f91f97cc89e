"""OpenTelemetry traces end to end: the real server exporting over OTLP/HTTP to an
in-process receiver, on PostgreSQL + Redis and on SQLite."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.apikeys import keyformat
from tests.sessions.helpers import PASSWORD, create_user
from tests.support.dpop import DPoPKey
from tests.support.forwarder import Forwarder
from tests.support.otlp import CLIENT, INTERNAL, SERVER, OtlpReceiver, ReceivedSpan
from tests.support.servers import Server, free_port

pytestmark = [
    pytest.mark.e2e,
    # tests/support/servers.py leaves each server's log file open (as other e2e tests).
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

StartServer = Callable[..., Server]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.close()


def tracing_env(receiver: OtlpReceiver, delay_ms: int = 50) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": str(delay_ms)}


@dataclass(frozen=True)
class Caller:
    """The caller's side of a W3C trace context: the span a request is sent from."""

    trace_id: str
    span_id: str

    @classmethod
    def new(cls) -> Caller:
        return cls(os.urandom(16).hex(), os.urandom(8).hex())

    @property
    def headers(self) -> dict[str, str]:
        return {"traceparent": f"00-{self.trace_id}-{self.span_id}-01"}


def server_span(receiver: OtlpReceiver, caller: Caller) -> ReceivedSpan:
    """The one SERVER span of the caller's trace, once it has arrived."""
    receiver.wait_for(lambda spans: any(s.trace_id == caller.trace_id and s.kind == SERVER
                                        for s in spans))
    [span] = [s for s in receiver.in_trace(caller.trace_id) if s.kind == SERVER]
    assert span.parent_span_id == caller.span_id
    return span


def under(receiver: OtlpReceiver, root: ReceivedSpan) -> list[ReceivedSpan]:
    """Every span descending from ``root`` (its children, theirs, ...)."""
    spans = list(receiver.in_trace(root.trace_id))
    ids = {root.span_id}
    found: list[ReceivedSpan] = []
    grew = True
    while grew:
        grew = False
        for span in spans:
            if span.parent_span_id in ids and span.span_id not in ids:
                ids.add(span.span_id)
                found.append(span)
                grew = True
    return found


def with_children(receiver: OtlpReceiver, caller: Caller,
                  wanted: Callable[[list[ReceivedSpan]], bool]) -> list[ReceivedSpan]:
    """The spans under the caller's server span, once ``wanted`` holds of them (a
    batch may end between a server span and its last child)."""
    root = server_span(receiver, caller)
    receiver.wait_for(lambda _: wanted(under(receiver, root)))
    return under(receiver, root)


def storage(spans: list[ReceivedSpan], system: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.kind == CLIENT and s.attributes.get("db.system.name") == system]


def signing(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if s.kind == INTERNAL and s.name == "sign"]


def client_and_key(server: Server, scope: str) -> tuple[str, str]:
    """A new client with ``scope`` and an API key of it, through the real CLI."""
    client = json.loads(server.cli(["--json", "clients", "create", f"traced-{time.time_ns()}",
                                    "--scope", scope]).stdout)
    issued = json.loads(server.cli(["--json", "apikeys", "create", "--client",
                                    client["id"]]).stdout)
    return str(client["id"]), str(issued["api_key"])


def post(server: Server, path: str, caller: Caller, **kw: Any) -> httpx.Response:
    headers = {**caller.headers, **kw.pop("headers", {})}
    return httpx.post(server.base_url + path, headers=headers, timeout=10, **kw)


def test_requests_on_postgresql_and_redis_are_traced_without_secrets(
    start_server: StartServer, server_env: dict[str, str], receiver: OtlpReceiver
) -> None:
    """Each request is a SERVER span in the caller's trace, named after its route
    template, with status and grant, and with storage, Redis and signing spans under
    it; no secret of any request (API key as key and as client secret, password,
    e-mail, access and refresh tokens, DPoP proof and key) appears anywhere in what
    was exported."""
    server = start_server({**server_env, **tracing_env(receiver)})
    server.wait_ready()
    email = f"traced-{time.time_ns()}@example.test"
    user = create_user(server, email)
    client_id, key = client_and_key(server, "authd:introspect")
    secrets = [key, PASSWORD, email]

    exchange = Caller.new()
    response = post(server, "/v1/token", exchange, headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    access_token = response.json()["access_token"]
    secrets.append(access_token)
    span = server_span(receiver, exchange)
    assert span.name == "POST /v1/token"
    assert span.attributes["http.route"] == "/v1/token"
    assert span.attributes["http.request.method"] == "POST"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["url.scheme"] == "http"
    assert span.attributes["authd.grant"] == "api_key"
    assert span.status_code == 0
    children = with_children(receiver, exchange, lambda spans: bool(
        storage(spans, "postgresql") and signing(spans)))
    [sign] = signing(children)
    assert sign.attributes["authd.signing.alg"] == "RS256"
    assert sign.attributes["authd.signing.kid"]
    assert all("db.operation.name" in s.attributes for s in storage(children, "postgresql"))
    assert any(s.attributes.get("db.collection.name") == "api_keys"
               for s in storage(children, "postgresql"))

    bound = Caller.new()
    dpop = DPoPKey()
    proof = dpop.proof("POST", server.base_url + "/v1/token")
    response = post(server, "/v1/token", bound, headers={"X-API-Key": key, "DPoP": proof})
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    secrets += [response.json()["access_token"], proof, dpop.public_jwk["x"],
                dpop.public_jwk["y"], dpop.thumbprint]
    assert server_span(receiver, bound).attributes["authd.grant"] == "api_key"

    oauth = Caller.new()
    response = post(server, "/oauth/token", oauth, data={"grant_type": "client_credentials"},
                    auth=(client_id, key))
    assert response.status_code == 200, response.text
    secrets.append(response.json()["access_token"])
    span = server_span(receiver, oauth)
    assert span.name == "POST /oauth/token"
    assert span.attributes["authd.grant"] == "client_credentials"
    assert signing(with_children(receiver, oauth, lambda spans: bool(signing(spans))))

    logged_in = Caller.new()
    response = post(server, "/v1/login", logged_in, json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    tokens = response.json()
    secrets += [tokens["access_token"], tokens["refresh_token"]]
    span = server_span(receiver, logged_in)
    assert (span.name, span.attributes["authd.grant"]) == ("POST /v1/login", "login")
    children = with_children(receiver, logged_in, lambda spans: bool(
        storage(spans, "postgresql") and signing(spans)))
    assert any(s.attributes.get("db.collection.name") == "users"
               for s in storage(children, "postgresql"))

    refreshed = Caller.new()
    response = post(server, "/v1/refresh", refreshed,
                    json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200, response.text
    secrets += [response.json()["access_token"], response.json()["refresh_token"]]
    span = server_span(receiver, refreshed)
    assert (span.name, span.attributes["authd.grant"]) == ("POST /v1/refresh", "refresh")
    assert signing(with_children(receiver, refreshed, lambda spans: bool(signing(spans))))

    inspected = Caller.new()
    response = post(server, "/oauth/introspect", inspected, data={"token": access_token},
                    headers={"X-API-Key": key})
    assert response.status_code == 200 and response.json()["active"] is True
    span = server_span(receiver, inspected)
    assert span.name == "POST /oauth/introspect"
    assert "authd.grant" not in span.attributes
    # The denylist is asked in Redis (the revocation mirror): the command, not its keys.
    children = with_children(receiver, inspected, lambda spans: bool(storage(spans, "redis")))
    assert [s.name for s in storage(children, "redis")] == ["MGET"]

    refused = Caller.new()
    wrong_password = "not the password at all"
    secrets.append(wrong_password)
    response = post(server, "/v1/login", refused, json={"email": email,
                                                        "password": wrong_password})
    assert response.status_code == 401
    span = server_span(receiver, refused)
    assert span.attributes["http.response.status_code"] == 401
    assert span.status_code == 0  # a 4xx is the client's error, not the server's

    unknown = Caller.new()
    response = post(server, "/admin/users/" + user["id"], unknown)
    assert response.status_code == 405
    span = server_span(receiver, unknown)
    assert span.name == "POST /admin/users/{user}"  # the template, never the raw path
    assert user["id"] not in span.name

    export = receiver.export()
    resource = server_span(receiver, exchange).resource
    assert resource["service.name"] == "authd"
    # The SDK's defaults and nothing else (service.instance.id is a random UUID).
    assert set(resource) == {"service.name", "service.instance.id", "telemetry.sdk.language",
                             "telemetry.sdk.name", "telemetry.sdk.version"}
    for secret in secrets:
        assert secret.encode() not in export
    # A token's parts each stay out too (a signature alone would be a leak).
    for part in [*access_token.split("."), key.split("_")[-1]]:
        assert part.encode() not in export


def test_sqlite_storage_spans_name_the_dialect(
    start_server: StartServer, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """On the embedded SQLite database the same exchange has sqlite storage spans; the
    SDK's own resource variables name the service."""
    server = start_server({"AUTHD_DATA_DIR": str(tmp_path / "data"),
                           "AUTHD_KEYS_DIR": str(tmp_path / "keys"), **tracing_env(receiver),
                           "OTEL_SERVICE_NAME": "authd-eu",
                           "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test"})
    server.wait_ready()
    _, key = client_and_key(server, "read")
    caller = Caller.new()
    response = post(server, "/v1/token", caller, headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    children = with_children(receiver, caller, lambda spans: bool(
        storage(spans, "sqlite") and signing(spans)))
    assert not storage(children, "redis")
    resource = server_span(receiver, caller).resource
    assert resource["service.name"] == "authd-eu"
    assert resource["deployment.environment.name"] == "test"
    assert any(s.attributes.get("db.collection.name") == "api_keys"
               for s in storage(children, "sqlite"))
    assert key.encode() not in receiver.export()
    assert response.json()["access_token"].encode() not in receiver.export()


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_flush_their_spans_on_graceful_shutdown(
    start_server: StartServer, server_env: dict[str, str], receiver: OtlpReceiver,
    workers: int,
) -> None:
    """With a batch delay longer than the test, the spans of the requests arrive when
    the server stops: each worker process flushed its own provider."""
    server = start_server({**server_env, **tracing_env(receiver, delay_ms=600_000)},
                          workers=workers)
    server.wait_ready()
    callers = [Caller.new() for _ in range(6)]
    for caller in callers:
        assert httpx.get(server.base_url + "/.well-known/jwks.json", headers=caller.headers,
                         timeout=10).status_code == 200
    assert not receiver.spans  # nothing before the shutdown: the flush is what sends them
    server.stop()
    for caller in callers:
        span = server_span(receiver, caller)
        assert span.name == "GET /.well-known/jwks.json"


def test_tracing_is_off_without_otel_variables(
    start_server: StartServer, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """An endpoint set but the exporter switched off: requests answer and nothing is
    exported."""
    server = start_server({"AUTHD_DATA_DIR": str(tmp_path / "data"),
                           "AUTHD_KEYS_DIR": str(tmp_path / "keys"),
                           **tracing_env(receiver), "OTEL_TRACES_EXPORTER": "none"})
    caller = Caller.new()
    assert httpx.get(server.base_url + "/.well-known/jwks.json", headers=caller.headers,
                     timeout=10).status_code == 200
    server.stop()  # a graceful stop, which would flush anything recorded
    assert receiver.export() == b""


def test_storage_down_marks_the_server_span_and_the_statement_as_errors(
    start_server: StartServer, server_env: dict[str, str], receiver: OtlpReceiver,
    pg_forwarder: Forwarder,
) -> None:
    """A key lookup that cannot reach PostgreSQL answers 503: the server span has an
    error status, and the failed statement names the exception type, not its message."""
    env = {**server_env, **tracing_env(receiver),
           "AUTHD_DATABASE_URL": pg_forwarder.url_through(server_env["AUTHD_DATABASE_URL"])}
    server = start_server(env)
    pg_forwarder.stop()
    unknown = keyformat.generate("ak_live")  # well formed: a cache miss goes to storage
    caller = Caller.new()
    response = post(server, "/v1/token", caller, headers={"X-API-Key": unknown})
    assert response.status_code == 503, response.text
    span = server_span(receiver, caller)
    assert span.attributes["http.response.status_code"] == 503
    assert span.status_code == 2
    children = with_children(receiver, caller, lambda spans: any(
        s.status_code == 2 for s in storage(spans, "postgresql")))
    failed = [s for s in storage(children, "postgresql") if s.status_code == 2]
    assert all(set(s.attributes) >= {"error.type", "db.operation.name"} for s in failed)
    assert unknown.encode() not in receiver.export()


def test_an_unreachable_collector_costs_no_answer(
    start_server: StartServer, tmp_path: Path
) -> None:
    """With nothing listening at the endpoint, requests answer as ever, the export
    failures are log lines without a traceback, and the server stops when asked."""
    server = start_server({"AUTHD_DATA_DIR": str(tmp_path / "data"),
                           "AUTHD_KEYS_DIR": str(tmp_path / "keys"),
                           "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",
                           "OTEL_EXPORTER_OTLP_TIMEOUT": "1", "OTEL_BSP_SCHEDULE_DELAY": "50"})
    for _ in range(5):
        caller = Caller.new()
        assert httpx.get(server.base_url + "/.well-known/jwks.json", headers=caller.headers,
                         timeout=10).status_code == 200
    server.wait_ready()
    server.stop()
    assert "Failed to export" in server.logs() or "Transient error" in server.logs()
    assert "Traceback" not in server.logs()
