"""One real authd (PostgreSQL + Redis, issuer = its own URL) shared by a test module,
for the token-exchange and DPoP end-to-end tests: starting a server per test would
spend most of the run on start-ups. Each test makes its own clients and users."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.sessions.helpers import PASSWORD
from tests.support.databases import REDIS_URL, RUN_ID, create_database
from tests.support.dpop import DPoPKey
from tests.support.servers import Server, free_port, new_kek
from tests.verifier.e2e_support import AUDIENCE, Authd

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


async def start_shared_authd(tmp: Path, **extra_env: str) -> Authd:
    port = free_port()
    env = {
        "AUTHD_DATABASE_URL": await create_database("s2s"),
        "AUTHD_REDIS_URL": REDIS_URL,
        "AUTHD_REDIS_PREFIX": f"authd-test:{RUN_ID}:{uuid.uuid4().hex[:8]}:",
        "AUTHD_KEK": new_kek(),
        "AUTHD_ISSUER": f"http://127.0.0.1:{port}",
        "AUTHD_DEFAULT_AUDIENCE": AUDIENCE,
        "AUTHD_API_KEY_DEFAULT_RATE": "100000/s",
        "AUTHD_FAILED_LOGIN_RATE": "100000/m",
        "AUTHD_FAILED_API_KEY_RATE": "100000/m",
        **extra_env,
    }
    server = Server(env=env, port=port, log_path=tmp / f"authd-{port}.log")
    server.cli(["migrate"])
    server.start()
    server.wait_ready()
    return Authd(server, httpx.Client(base_url=server.base_url, timeout=30))


@pytest.fixture(scope="module")
async def authd(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Authd]:
    shared = await start_shared_authd(tmp_path_factory.mktemp("authd"))
    yield shared
    shared.http.close()
    shared.server.stop()


def new_client(authd: Authd, scope: str, *options: str) -> tuple[str, str]:
    """``authd clients create`` with ``options`` (e.g. ``--exchange-audience B``) and
    a key of it: (client_id, api_key)."""
    client = authd.cli_json("clients", "create", f"svc-{time.time_ns()}", "--scope", scope,
                            "--token-ttl", "1h", *options)
    key = authd.cli_json("apikeys", "create", "--client", client["id"])
    return str(client["id"]), str(key["api_key"])


def exchange(authd: Authd, caller: tuple[str, str], subject_token: str,
             **form: str) -> httpx.Response:
    """The RFC 8693 grant at /oauth/token, the caller authenticated with Basic."""
    data = {"grant_type": TOKEN_EXCHANGE, "subject_token": subject_token,
            "subject_token_type": ACCESS_TOKEN_TYPE, **form}
    return authd.http.post("/oauth/token", auth=caller, data=data)


def metric(authd: Authd, line_prefix: str) -> float:
    """The value of the first /metrics sample starting with ``line_prefix``, or 0."""
    for line in authd.http.get("/metrics").text.splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def claims_of(token: str) -> dict[str, Any]:
    """The payload, unverified: for reading what a verified answer already vouched for."""
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def introspect(authd: Authd, token: str) -> dict[str, Any]:
    """RFC 7662 as a gateway does it: a client holding authd:introspect, Basic auth."""
    caller = new_client(authd, "authd:introspect")
    response = authd.http.post("/oauth/introspect", data={"token": token}, auth=caller)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def bound_login(authd: Authd, key: DPoPKey) -> dict[str, Any]:
    """A new user's /v1/login with a DPoP proof by ``key``: a bound session."""
    authd.user(email := f"u{time.time_ns()}@example.test")
    response = authd.http.post("/v1/login", json={"email": email, "password": PASSWORD},
                               headers={"DPoP": key.proof("POST", authd.issuer + "/v1/login")})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
