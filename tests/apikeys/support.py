"""Helpers for the API-key end-to-end tests: a server with an admin key, and the
admin calls that set up clients and keys over HTTP."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from tests.support.servers import Server


@dataclass
class Admin:
    server: Server
    admin_key: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(
            method, self.server.base_url + path, json=body,
            headers={"X-API-Key": self.admin_key}, timeout=10,
        )
        if response.status_code >= 300:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    def client(self, name: str, scopes: str, **extra: Any) -> dict[str, Any]:
        created: dict[str, Any] = self.call(
            "POST", "/admin/clients", {"name": name, "scopes": scopes, **extra}
        )
        return created

    def key(self, client_id: str, **options: Any) -> dict[str, Any]:
        created: dict[str, Any] = self.call(
            "POST", f"/admin/clients/{client_id}/keys", options
        )
        return created


def bootstrap(server: Server) -> Admin:
    """``authd bootstrap`` through the real CLI; the admin key it prints once."""
    out = server.cli(["--json", "bootstrap"]).stdout
    return Admin(server, json.loads(out)["api_key"])


async def key_rows(database_url: str) -> list[dict[str, Any]]:
    """Every key and client row, to show that a refused request changed nothing."""
    conn = await asyncpg.connect(database_url)
    try:
        keys = await conn.fetch(
            "SELECT id, status, expires_at, last_used_at, revoked_at FROM api_keys ORDER BY id"
        )
        clients = await conn.fetch("SELECT id, status, updated_at FROM clients ORDER BY id")
        return [dict(r) for r in keys] + [dict(r) for r in clients]
    finally:
        await conn.close()


async def audit_rows(database_url: str, action: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT action, actor, subject, outcome, details FROM audit_events"
            " WHERE action = $1 ORDER BY id", action,
        )
        return [dict(r) for r in rows]
    finally:
        await conn.close()
