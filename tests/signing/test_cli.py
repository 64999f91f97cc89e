"""``authd keys …`` as an operator runs it, on a real database with no server running."""

from __future__ import annotations

import json

import pytest

from tests.support.databases import create_database
from tests.support.servers import new_kek, run_cli

pytestmark = [pytest.mark.postgres]


async def test_keys_rotate_on_a_database_without_keys_creates_the_key_set() -> None:
    """``keys rotate`` before any server started creates an active and a next key at
    once (exit 0) instead of promising a rotation time that nothing would bring."""
    env = {"AUTHD_DATABASE_URL": await create_database("keys"), "AUTHD_KEK": new_kek()}
    run_cli(["migrate"], env)
    created = json.loads(run_cli(["--json", "keys", "rotate"], env).stdout)
    listed = json.loads(run_cli(["--json", "keys", "list"], env).stdout)["keys"]
    assert created["status"] == "created"
    assert {(k["kid"], k["state"]) for k in listed} == {
        (created["active"], "active"), (created["next"], "next"),
    }
