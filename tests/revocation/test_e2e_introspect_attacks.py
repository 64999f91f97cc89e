"""Issue 13 §3: the verifier's whole attack catalogue against a real server's introspection.

The forgeries are those of ``tests/verifier/attacks.py``, built with the deployment's
own signing key (read from its database and opened with its KEK, as only the tests
can), so a forgery is refused only by the check it targets. authd must answer
``{"active": false}`` to every one a downstream verifier refuses — the server
verifies with the verifier's parser — and ``active: true`` to the untouched control.
The one exception is the audience: authd answers for tokens of every audience it
issues (RFC 7662 §2.2), so ``wrong-audience`` is the resource server's check only.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from authd_verifier.testing import MINTABLE_ALGORITHMS, TokenMinter

from service.signing.kek import Kek
from service.signing.keys import open_private
from tests.sessions.helpers import api_key_with_scope, introspect
from tests.signing.e2e import production_env, start_shared_server
from tests.support.servers import Server
from tests.verifier.attacks import Forgery, forgeries_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


@dataclass
class Deployment:
    server: Server
    introspection_key: str
    trusted: TokenMinter
    attacker: TokenMinter


async def _signing_minter(server: Server, issuer: str) -> TokenMinter:
    """A minter holding the deployment's active signing key, under its kid and issuer."""
    conn = await asyncpg.connect(server.env["AUTHD_DATABASE_URL"])
    try:
        row = await conn.fetchrow(
            "SELECT kid, alg, private_sealed FROM signing_keys WHERE state = 'active'"
        )
    finally:
        await conn.close()
    assert row is not None
    kek = Kek(base64.b64decode(server.env["AUTHD_KEK"]))
    private_key = open_private(kek, row["kid"], bytes(row["private_sealed"]))
    return TokenMinter(issuer=issuer, audience="orders", kid=row["kid"],
                       algorithm=row["alg"], private_key=private_key)


@pytest.fixture(scope="module")
async def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    """One real server (PostgreSQL + Redis) signing with each algorithm, shared by the
    module's cases, with an introspection client and its signing key in hand."""
    algorithm = str(request.param)
    env = await production_env("attacks", AUTHD_SIGNING_ALG=algorithm)
    server = start_shared_server(env, tmp_path_factory.mktemp("attacks"))
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            metadata = await client.get("/.well-known/oauth-authorization-server")
        issuer = metadata.json()["issuer"]
        trusted = await _signing_minter(server, issuer)
        assert trusted.algorithm == algorithm
        attacker = TokenMinter(issuer=issuer, audience="orders", kid="attacker-key",
                               algorithm=algorithm)
        key = api_key_with_scope(server, "introspector", "authd:introspect")
        yield Deployment(server, key, trusted, attacker)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("deployment", "forgery"),
    [
        pytest.param(alg, forgery, id=f"{alg}-{forgery.name}")
        for alg in MINTABLE_ALGORITHMS
        for forgery in forgeries_for(alg, issuer_side=True)
    ],
    indirect=["deployment"],
    scope="module",
)
def test_forgery_is_inactive(deployment: Deployment, forgery: Forgery) -> None:
    """Each forgery the verifier refuses is ``{"active": false}`` at /oauth/introspect."""
    token = forgery.build(deployment.trusted, deployment.attacker)
    with httpx.Client(base_url=deployment.server.base_url, timeout=30) as client:
        assert introspect(client, deployment.introspection_key, token) == {"active": False}


@pytest.mark.parametrize("deployment", MINTABLE_ALGORITHMS, indirect=True, scope="module")
def test_the_control_token_is_active(deployment: Deployment) -> None:
    """The deployment key's untouched token is active, so every inactive answer above
    is the forgery's doing."""
    token = deployment.trusted.mint(subject="alice")
    with httpx.Client(base_url=deployment.server.base_url, timeout=30) as client:
        answer = introspect(client, deployment.introspection_key, token)
    assert answer["active"] is True and answer["sub"] == "alice"
