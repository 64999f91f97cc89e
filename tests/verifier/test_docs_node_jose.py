"""docs/verifying.md's node `jose` recipe, taken from the document and run as written.

The ``js`` block starting ``// verify.mjs`` is copied out of docs/verifying.md at
test time and run with node (jose pinned in tests/support/node) against a real
authd: when the document or jose drifts, this fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from tests.support.node import installed
from tests.support.servers import REPO, Server

pytestmark = pytest.mark.e2e

_RECIPE = re.compile(r"^```js\n(// verify\.mjs.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Outcome:
    """How the recipe ended on one token."""

    returncode: int
    stdout: str
    stderr: str


def recipe() -> str:
    """The node jose recipe as docs/verifying.md has it now."""
    match = _RECIPE.search((REPO / "docs" / "verifying.md").read_text())
    if match is None:
        raise AssertionError("docs/verifying.md has no ```js block starting // verify.mjs")
    return match.group(1)


@pytest.fixture
def server(server_env: dict[str, str], start_server: Callable[..., Server]) -> Server:
    """A production-shaped authd."""
    return start_server(server_env)


def token_for(server: Server, audience: str) -> tuple[str, str]:
    """A client with ``audience`` and an access token from its API key: (client id, token)."""
    client = json.loads(
        server.cli(
            [
                "--json",
                "clients",
                "create",
                "orders-worker",
                "--scope",
                "orders:read",
                "--audience",
                audience,
            ]
        ).stdout
    )
    key = json.loads(server.cli(["--json", "apikeys", "create", "--client", client["id"]]).stdout)
    response = httpx.post(f"{server.base_url}/v1/token", headers={"X-API-Key": key["api_key"]})
    response.raise_for_status()
    return str(client["id"]), str(response.json()["access_token"])


def run_recipe(server: Server, token: str) -> Outcome:
    """``node verify.mjs TOKEN`` with the recipe's environment pointing at ``server``."""
    home = installed()
    script = home / f"docs-verify-{os.getpid()}.mjs"
    script.write_text(recipe())
    env = {**os.environ, "AUTHD_ISSUER": server.base_url, "AUTHD_AUDIENCE": "orders"}
    try:
        result = subprocess.run(
            ["node", str(script), token],
            cwd=home,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        script.unlink()
    return Outcome(result.returncode, result.stdout, result.stderr)


def test_recipe_accepts_an_authd_token(server: Server) -> None:
    """The recipe verifies a token authd issued for its audience and prints its claims."""
    client_id, token = token_for(server, "orders")
    outcome = run_recipe(server, token)
    assert outcome.returncode == 0, outcome.stderr
    claims = json.loads(outcome.stdout)
    assert (claims["sub"], claims["aud"], claims["scope"]) == (client_id, "orders", "orders:read")


def test_recipe_refuses_a_token_for_another_audience(server: Server) -> None:
    """A token authd issued for another service is refused on its aud claim."""
    _, token = token_for(server, "billing")
    outcome = run_recipe(server, token)
    assert outcome.returncode == 1
    assert "ERR_JWT_CLAIM_VALIDATION_FAILED" in outcome.stderr
