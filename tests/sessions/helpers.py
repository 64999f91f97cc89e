"""Driving a real server as the sessions and revocation tests need: users, an
introspection caller, logins, and a look into the server's own database."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx

from tests.support.servers import Server

PASSWORD = "correct horse battery staple"


def create_user(server: Server, email: str, password: str = PASSWORD) -> dict[str, Any]:
    result = server.cli(["--json", "users", "create", email], stdin=password + "\n")
    created: dict[str, Any] = json.loads(result.stdout)
    return created


def api_key_with_scope(server: Server, name: str, scope: str) -> str:
    client = json.loads(server.cli(["--json", "clients", "create", name, "--scope", scope]).stdout)
    issued = json.loads(
        server.cli(["--json", "apikeys", "create", "--client", client["id"]]).stdout
    )
    return str(issued["api_key"])


def admin_key(server: Server) -> str:
    return str(json.loads(server.cli(["--json", "bootstrap"]).stdout)["api_key"])


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = client.post("/v1/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def introspect(client: httpx.Client, key: str, token: str) -> dict[str, Any]:
    response = client.post("/oauth/introspect", data={"token": token},
                           headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def fetchval(server: Server, sql: str, *args: object) -> Any:
    conn = await asyncpg.connect(server.env["AUTHD_DATABASE_URL"])
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()
