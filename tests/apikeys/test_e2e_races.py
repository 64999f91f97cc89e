"""Races as operators meet them (issue 13 §4): several real ``authd`` processes
started at the same moment on one PostgreSQL database, as pods starting together
would. Each race answers cleanly: one winner, the others a clean outcome."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from tests.apikeys.support import bootstrap
from tests.support.databases import create_database
from tests.support.servers import REPO, Server, base_env, new_kek, run_cli

pytestmark = [pytest.mark.postgres]

PROCESSES = 8
ROUNDS = 10


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    @property
    def answer(self) -> dict[str, object]:
        decoded = json.loads(self.stdout)
        assert isinstance(decoded, dict)
        return decoded


def at_once(args: Sequence[str], env: dict[str, str], count: int = PROCESSES) -> list[Outcome]:
    """``authd ARGS`` in ``count`` processes started together, each run to its end."""
    started = [
        subprocess.Popen([sys.executable, "-m", "service", *args], env=base_env(env),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        for _ in range(count)
    ]
    outcomes = []
    for process in started:
        stdout, stderr = process.communicate(timeout=120)
        outcomes.append(Outcome(process.returncode, stdout, stderr))
    return outcomes


@pytest.fixture(scope="module")
async def migrated() -> str:
    """One migrated database that each round copies (CREATE DATABASE … TEMPLATE)."""
    url = await create_database("races_template")
    run_cli(["migrate"], {"AUTHD_DATABASE_URL": url, "AUTHD_KEK": new_kek()})
    return url


async def admin_rows(url: str) -> tuple[int, int]:
    """How many admin clients, and how many keys they hold, the database has."""
    conn = await asyncpg.connect(url)
    try:
        clients = await conn.fetchval("SELECT count(*) FROM clients WHERE name = 'authd-admin'")
        keys = await conn.fetchval(
            "SELECT count(*) FROM api_keys k JOIN clients c ON c.id = k.client_id"
            " WHERE c.name = 'authd-admin'")
    finally:
        await conn.close()
    return int(clients), int(keys)


async def test_concurrent_bootstrap_if_absent_prints_exactly_one_key(migrated: str) -> None:
    """Eight ``bootstrap --if-absent`` at once on a fresh database, ten times over: every
    process exits 0 without a traceback, and exactly one prints the one key stored."""
    for _ in range(ROUNDS):
        env = {"AUTHD_DATABASE_URL": await create_database("races", template=migrated),
               "AUTHD_KEK": new_kek()}
        outcomes = at_once(["--json", "bootstrap", "--if-absent"], env)
        assert [o.returncode for o in outcomes] == [0] * PROCESSES, outcomes
        assert not any("Traceback" in o.stderr for o in outcomes)
        answers = [o.answer for o in outcomes]
        printed = [a for a in answers if "api_key" in a]
        assert len(printed) == 1
        assert [a for a in answers if "api_key" not in a] == [{"status": "exists"}] * 7
        assert await admin_rows(env["AUTHD_DATABASE_URL"]) == (1, 1)


async def test_concurrent_plain_bootstrap_shares_one_admin_client(migrated: str) -> None:
    """Plain ``bootstrap`` run four times at once: each succeeds with a key of its own,
    all on the one admin client."""
    env = {"AUTHD_DATABASE_URL": await create_database("races", template=migrated),
           "AUTHD_KEK": new_kek()}
    outcomes = at_once(["--json", "bootstrap"], env, count=4)
    assert [o.returncode for o in outcomes] == [0] * 4, outcomes
    assert len({o.answer["client_id"] for o in outcomes}) == 1
    assert await admin_rows(env["AUTHD_DATABASE_URL"]) == (1, 4)


async def test_concurrent_clients_create_of_one_name_has_one_winner(migrated: str) -> None:
    """Eight ``clients create`` of one name at once: one creates it, seven get a clean
    conflict (exit 1, one JSON object, no traceback)."""
    env = {"AUTHD_DATABASE_URL": await create_database("races", template=migrated),
           "AUTHD_KEK": new_kek()}
    outcomes = at_once(["--json", "clients", "create", "billing", "--scope", "read"], env)
    won = [o for o in outcomes if o.returncode == 0]
    lost = [o for o in outcomes if o.returncode != 0]
    assert len(won) == 1 and won[0].answer["name"] == "billing"
    assert [(o.returncode, o.answer) for o in lost] == [
        (1, {"error": "conflict", "message": "a client with this name exists"})
    ] * (PROCESSES - 1)
    assert not any("Traceback" in o.stderr for o in outcomes)


@pytest.mark.e2e
@pytest.mark.redis
async def test_concurrent_admin_creates_of_one_name_are_one_201_and_409s(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Eight concurrent POST /admin/clients of one name on the real server: one 201,
    seven 409 problem+json saying the name exists, never a 500."""
    admin = bootstrap(start_server(server_env))
    async with httpx.AsyncClient(base_url=admin.server.base_url, timeout=30,
                                 headers={"X-API-Key": admin.admin_key}) as http:
        responses = await asyncio.gather(*(
            http.post("/admin/clients", json={"name": "billing", "scopes": "read"})
            for _ in range(PROCESSES)
        ))
    assert sorted(r.status_code for r in responses) == [201] + [409] * (PROCESSES - 1)
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"] == "a client with this name exists"
