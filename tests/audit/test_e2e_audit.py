"""The audit log as an operator reads it: ``GET /admin/audit`` and ``authd audit tail``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from service.audit.query import AuditQuery
from service.errors import InvalidRequest
from tests.apikeys.support import Admin, bootstrap
from tests.support.servers import Server

StartServer = Callable[..., Server]


@pytest.fixture
def admin(start_server: StartServer, server_env: dict[str, str]) -> Admin:
    return bootstrap(start_server(server_env))


def tail(server: Server, *args: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(
        server.cli(["--json", "audit", "tail", *args]).stdout)["events"]
    return events


def test_cli_actions_are_listed_by_audit_tail_oldest_first(admin: Admin) -> None:
    """A client created from the CLI shows in ``audit tail`` after the bootstrap."""
    admin.server.cli(["clients", "create", "billing", "--scope", "read:things"])
    events = tail(admin.server, "--limit", "50")
    ids = [event["id"] for event in events]
    assert ids == sorted(ids)
    created = [e for e in events if e["action"] == "client.create" and e["actor"] == "cli"]
    assert created, events


def test_admin_api_filters_by_action_and_pages_by_cursor(admin: Admin) -> None:
    """``action`` narrows the list and ``after_id`` returns only newer events."""
    first = admin.call("GET", "/admin/audit?action=client.create")
    assert all(e["action"] == "client.create" for e in first["events"])
    admin.client("payments", "read:things")
    newer = admin.call("GET", f"/admin/audit?after_id={first['cursor']}&action=client.create")
    assert [e["action"] for e in newer["events"]] == ["client.create"]
    assert newer["cursor"] > first["cursor"]


def test_the_audit_answer_is_json_and_never_cached(admin: Admin) -> None:
    """The audit log names users and keys: ``Cache-Control: no-store``, like every
    other JSON answer."""
    response = httpx.get(admin.server.base_url + "/admin/audit",
                         headers={"X-API-Key": admin.admin_key}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert set(response.json()) == {"events", "cursor"}


def test_admin_audit_requires_the_admin_scope(admin: Admin) -> None:
    """Without a credential the audit log answers 401 and shows nothing."""
    response = httpx.get(admin.server.base_url + "/admin/audit", timeout=10)
    assert response.status_code == 401
    assert "events" not in response.text


def test_a_bad_audit_query_is_a_clear_400(admin: Admin) -> None:
    """A malformed parameter gets a problem+json 400, never a 500."""
    response = httpx.get(admin.server.base_url + "/admin/audit?limit=lots",
                         headers={"X-API-Key": admin.admin_key}, timeout=10)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "limit" in response.json()["detail"]


@pytest.mark.parametrize(
    "params",
    [{"limit": "0"}, {"limit": "1001"}, {"after_id": "-1"}, {"action": "DROP TABLE"},
     {"subject": ""}, {"subject": "a\x00b"}, {"subject": "line\nbreak"}, {"sort": "id"}],
)
def test_audit_query_rejects_out_of_range_values(params: dict[str, str]) -> None:
    """Limits, cursors, action names and unknown parameters are validated."""
    with pytest.raises(InvalidRequest):
        AuditQuery.from_params(params)


def test_audit_tail_never_shows_the_admin_key(admin: Admin) -> None:
    """The bootstrap event is listed, the key it printed is not."""
    output = admin.server.cli(["--json", "audit", "tail", "--limit", "1000"]).stdout
    assert admin.admin_key not in output
    assert admin.admin_key not in admin.server.logs()
