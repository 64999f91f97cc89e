"""A real authd for the verifier's end-to-end tests, and the calls that get tokens from it.

The server's issuer is its own loopback URL (``http://127.0.0.1:PORT``), so
``Verifier.for_issuer(authd.issuer, ...)`` finds the JWKS exactly as a downstream
service would. Keys, clients and users are made with the real CLI; tokens come
from the real HTTP endpoints. JWKS requests are counted from the server's
``authd_http_requests_total`` counter at ``/metrics``.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mfa.helpers import Enrolled, enrol, password_step, second_step, ticket_of
from tests.sessions.helpers import PASSWORD, create_user
from tests.support.servers import Server, free_port

#: The audience every test token is for: the default audience of the server.
AUDIENCE = "orders"
JWKS_ROUTE = "/.well-known/jwks.json"
_JWKS_METRIC = re.compile(
    r'^authd_http_requests_total\{method="GET",route="/\.well-known/jwks\.json",'
    r'status="(\d{3})"\} ([0-9.e+]+)$', re.MULTILINE,
)

PYTEST_MARKS = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.redis,
    # tests/support/servers.py leaves each server's log file open (as other e2e suites note).
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@dataclass
class Authd:
    """One running authd server and what the tests ask of it."""

    server: Server
    http: httpx.Client

    @property
    def issuer(self) -> str:
        return self.server.base_url

    def cli_json(self, *args: str, stdin: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(
            self.server.cli(["--json", *args], stdin=stdin).stdout
        )
        return result

    def service_client(self, scope: str = "orders:read orders:write") -> tuple[str, str]:
        """A client made with ``authd clients create`` and its key from ``authd apikeys
        create``: ``(client_id, api_key)``."""
        client = self.cli_json("clients", "create", f"svc-{time.time_ns()}", "--scope", scope)
        key = self.cli_json("apikeys", "create", "--client", client["id"])
        return str(client["id"]), str(key["api_key"])

    def v1_token(self, api_key: str, **form: str) -> str:
        """An access token from ``POST /v1/token`` with ``X-API-Key``."""
        response = self.http.post("/v1/token", headers={"X-API-Key": api_key}, data=form or None)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def client_credentials(self, client_id: str, api_key: str, **form: str) -> str:
        """An access token from ``POST /oauth/token`` (client_credentials, Basic auth)."""
        response = self.http.post(
            "/oauth/token", auth=(client_id, api_key),
            data={"grant_type": "client_credentials", **form},
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def user(self, email: str) -> str:
        """``authd users create EMAIL`` (password on stdin); the user's id."""
        return str(create_user(self.server, email)["id"])

    def login(self, email: str) -> dict[str, Any]:
        """``POST /v1/login`` with the password; the token response."""
        response = self.http.post("/v1/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def enrol_totp(self, email: str) -> Enrolled:
        """A new user with TOTP enrolled through the real MFA endpoints."""
        return enrol(self.server, self.http, email)

    def mfa_login(self, user: Enrolled) -> dict[str, Any]:
        """Password step, then ``POST /v1/login/mfa`` with a fresh TOTP code."""
        ticket = ticket_of(password_step(self.http, user.email))
        response = second_step(self.http, ticket, code=user.next_code())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def jwks_kids(self) -> set[str]:
        response = self.http.get(JWKS_ROUTE)
        response.raise_for_status()
        return {str(key["kid"]) for key in response.json()["keys"]}

    def rotate(self) -> dict[str, Any]:
        """``authd keys rotate``, retried while the next key is too fresh to promote."""
        while True:
            result = self.server.cli(["--json", "keys", "rotate"], check=False)
            if result.returncode == 0:
                rotated: dict[str, Any] = json.loads(result.stdout)
                return rotated
            assert "rotation is possible from" in json.loads(result.stdout)["message"], result
            time.sleep(0.2)

    def jwks_requests(self) -> Counter[int]:
        """JWKS requests the server answered so far, by status, from its own
        ``authd_http_requests_total`` counter at ``/metrics``."""
        statuses: Counter[int] = Counter()
        for match in _JWKS_METRIC.finditer(self.http.get("/metrics").text):
            statuses[int(match.group(1))] += int(float(match.group(2)))
        return statuses


StartAuthd = Callable[..., Authd]


@pytest.fixture
def start_authd(server_env: dict[str, str], tmp_path: Path) -> Iterator[StartAuthd]:
    """Start ``authd serve`` on PostgreSQL + Redis whose issuer is its own URL."""
    started: list[Authd] = []

    def start(**extra_env: str) -> Authd:
        port = free_port()
        env = {
            **server_env,
            "AUTHD_ISSUER": f"http://127.0.0.1:{port}",
            "AUTHD_DEFAULT_AUDIENCE": AUDIENCE,
            "AUTHD_API_KEY_DEFAULT_RATE": "100000/s",
            "AUTHD_FAILED_LOGIN_RATE": "100000/m",
            "AUTHD_FAILED_API_KEY_RATE": "100000/m",
            **extra_env,
        }
        server = Server(env=env, port=port, log_path=tmp_path / f"authd-{len(started)}.log")
        server.cli(["migrate"])
        server.start()
        server.wait_ready()
        authd = Authd(server, httpx.Client(base_url=server.base_url, timeout=30))
        started.append(authd)
        return authd

    yield start
    for authd in started:
        authd.http.close()
        authd.server.stop()
