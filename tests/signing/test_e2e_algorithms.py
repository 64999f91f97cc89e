"""Algorithm agility against real servers (issue 16): ES256 and EdDSA beside RS256.

For each algorithm, tokens of every grant verify with PyJWT, with node ``jose`` and
with authd-verifier against the published JWKS; and two replicas on PostgreSQL +
Redis move RS256 → ES256 → EdDSA → RS256 under load while a verifier that honours
Cache-Control sees no failure and no unknown kid (docs/signing-algorithms.md).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from authd_verifier import JWKSCache, Verifier

from tests.sessions.helpers import PASSWORD, create_user
from tests.signing.e2e import StrictJwksCache, production_env, start_shared_server
from tests.support.node import run_script
from tests.support.servers import Server, run_cli

pytestmark = [
    pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis,
    # tests/support/servers.py leaves each server's log file open (as test_e2e_rotation).
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

ALGORITHMS = ("RS256", "ES256", "EdDSA")
COMMON = {"kty", "kid", "use", "alg"}
# alg -> (kty, crv, every member of its public JWK)
JWK_SHAPES: dict[str, tuple[str, str | None, set[str]]] = {
    "RS256": ("RSA", None, COMMON | {"n", "e"}),
    "ES256": ("EC", "P-256", COMMON | {"crv", "x", "y"}),
    "EdDSA": ("OKP", "Ed25519", COMMON | {"crv", "x"}),
}


def _env(server_env: dict[str, str], alg: str, **extra: str) -> dict[str, str]:
    return {**server_env, "AUTHD_SIGNING_ALG": alg, "AUTHD_ISSUER": "https://authd.test",
            "AUTHD_API_KEY_DEFAULT_RATE": "100000/s", **extra}


def _api_key(server: Server, scope: str = "read") -> tuple[str, str]:
    """A client holding ``scope`` and one API key of it, through the real CLI."""
    client = json.loads(server.cli(["--json", "clients", "create", f"svc-{time.time_ns()}",
                                    "--scope", scope]).stdout)
    key = json.loads(server.cli(["--json", "apikeys", "create", "--client", client["id"]]).stdout)
    return str(client["id"]), str(key["api_key"])


def _tokens_of_every_grant(server: Server) -> dict[str, str]:
    """One access token from each way authd issues them."""
    client_id, api_key = _api_key(server)
    create_user(server, "grants@example.com")
    basic = base64.b64encode(f"{client_id}:{api_key}".encode()).decode()
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        def ok(response: httpx.Response) -> dict[str, Any]:
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        tokens = {
            "v1_token": ok(http.post("/v1/token", headers={"X-API-Key": api_key})),
            "client_credentials": ok(http.post(
                "/oauth/token", data={"grant_type": "client_credentials"},
                headers={"Authorization": f"Basic {basic}"})),
        }
        login = ok(http.post("/v1/login", json={"email": "grants@example.com",
                                                "password": PASSWORD}))
        tokens["login"] = login
        refreshed = ok(http.post("/v1/refresh", json={"refresh_token": login["refresh_token"]}))
        tokens["v1_refresh"] = refreshed
        tokens["refresh_token_grant"] = ok(http.post(
            "/oauth/token", data={"grant_type": "refresh_token",
                                  "refresh_token": refreshed["refresh_token"]}))
    return {grant: str(body["access_token"]) for grant, body in tokens.items()}


@dataclass
class Deployment:
    server: Server
    alg: str
    tokens: dict[str, str]
    jwks: dict[str, Any]


@pytest.fixture(scope="module", params=ALGORITHMS)
async def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Deployment]:
    """A real server (PostgreSQL + Redis) signing with each algorithm, shared by the
    module's checks, and a token of every grant from it."""
    alg = str(request.param)
    env = await production_env("algorithms", AUTHD_SIGNING_ALG=alg,
                               AUTHD_ISSUER="https://authd.test",
                               AUTHD_API_KEY_DEFAULT_RATE="100000/s")
    server = start_shared_server(env, tmp_path_factory.mktemp(f"alg-{alg}"))
    try:
        tokens = _tokens_of_every_grant(server)
        async with httpx.AsyncClient(timeout=10) as http:
            jwks = (await http.get(f"{server.base_url}/.well-known/jwks.json")).json()
        yield Deployment(server, alg, tokens, jwks)
    finally:
        server.stop()


def test_every_grant_signs_with_the_configured_algorithm(deployment: Deployment) -> None:
    """Each grant's token names the configured algorithm and a kid the JWKS publishes."""
    kids = {key["kid"]: key["alg"] for key in deployment.jwks["keys"]}
    for grant, token in deployment.tokens.items():
        header = jwt.get_unverified_header(token)
        assert header["alg"] == deployment.alg and kids[header["kid"]] == deployment.alg, grant


def test_jwks_publishes_each_key_with_its_type_curve_and_algorithm(
    deployment: Deployment,
) -> None:
    """Every published key has the kty (and crv) of its algorithm, alg, use=sig, and
    exactly the public members of its type."""
    kty, crv, members = JWK_SHAPES[deployment.alg]
    for key in deployment.jwks["keys"]:
        assert set(key) == members
        assert key["kty"] == kty and key.get("crv") == crv
        assert key["alg"] == deployment.alg and key["use"] == "sig"


def test_metadata_lists_the_signing_algorithm(deployment: Deployment) -> None:
    """RFC 8414 metadata names the algorithm in access_token_signing_alg_values_supported."""
    metadata = httpx.get(f"{deployment.server.base_url}/.well-known/oauth-authorization-server",
                         timeout=10).json()
    assert metadata["access_token_signing_alg_values_supported"] == [deployment.alg]


def test_tokens_of_every_grant_verify_with_pyjwt(deployment: Deployment) -> None:
    """PyJWT verifies each grant's token with the JWKS key of its kid, algorithm pinned."""
    keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(deployment.jwks).keys}
    for grant, token in deployment.tokens.items():
        key = keys[jwt.get_unverified_header(token)["kid"]]
        claims = jwt.decode(token, key.key, algorithms=[deployment.alg],
                            issuer="https://authd.test", options={"verify_aud": False})
        assert claims["jti"], grant


def test_tokens_of_every_grant_verify_with_node_jose(deployment: Deployment) -> None:
    """node ``jose`` (createRemoteJWKSet + jwtVerify, typ at+jwt) verifies each token
    against the JWKS fetched over HTTP."""
    results = _jose_verify(deployment.server, list(deployment.tokens.values()))
    assert [r["ok"] for r in results] == [True] * len(deployment.tokens), results
    assert {r["alg"] for r in results} == {deployment.alg}


def test_tokens_of_every_grant_verify_with_authd_verifier(deployment: Deployment) -> None:
    """authd-verifier's defaults accept each grant's token from the live JWKS."""
    cache = JWKSCache(f"{deployment.server.base_url}/.well-known/jwks.json",
                      allow_insecure_http=True)
    with Verifier(keys=cache, issuer="https://authd.test",
                  audience=_audiences(deployment.tokens)) as verifier:
        for grant, token in deployment.tokens.items():
            assert verifier.verify(token).token_id, grant


def _audiences(tokens: dict[str, str]) -> set[str]:
    found: set[str] = set()
    for token in tokens.values():
        aud = jwt.decode(token, options={"verify_signature": False})["aud"]
        found.update([aud] if isinstance(aud, str) else aud)
    return found


def _jose_verify(server: Server, tokens: list[str]) -> list[dict[str, Any]]:
    """Run jose_verify.mjs against the server's JWKS URL; the tokens carry the public
    issuer (AUTHD_ISSUER), which jose checks."""
    results: list[dict[str, Any]] = run_script(
        "jose_verify.mjs", f"{server.base_url}/.well-known/jwks.json", "https://authd.test",
        json.dumps(tokens))
    return results


# --- migration between algorithms under load -----------------------------------------


@dataclass
class Load:
    """What the load threads saw: tokens verified per algorithm, and every failure."""

    verified: dict[str, int] = field(default_factory=dict)
    last_alg: str = ""
    failures: list[str] = field(default_factory=list)
    unreachable: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Replicas:
    """The replicas behind the 'load balancer'; one is swapped when it restarts."""

    servers: list[Server]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self, n: int) -> Server:
        with self.lock:
            return self.servers[n % len(self.servers)]


def _issue_and_verify(replicas: Replicas, api_key: str, load: Load, stop: threading.Event,
                      offset: int) -> None:
    """Exchange the API key at alternating replicas and verify every token with a
    verifier that honours Cache-Control and never refetches on an unknown kid (its
    JWKS comes from the replica the load balancer picks next)."""
    cache = StrictJwksCache("", "https://authd.test")
    n = offset
    with httpx.Client(timeout=10) as http:
        while not stop.is_set():
            n += 1
            issuing, serving_jwks = replicas.pick(n), replicas.pick(n + 1)
            try:
                response = http.post(f"{issuing.base_url}/v1/token",
                                     headers={"X-API-Key": api_key})
            except httpx.TransportError:
                with load.lock:
                    load.unreachable += 1
                time.sleep(0.05)
                continue
            if response.status_code != 200:
                with load.lock:
                    load.failures.append(f"exchange {response.status_code}: {response.text}")
                continue
            token = str(response.json()["access_token"])
            alg = str(jwt.get_unverified_header(token)["alg"])
            cache.url = f"{serving_jwks.base_url}/.well-known/jwks.json"
            try:
                cache.verify(http, token)
            except httpx.TransportError:
                with load.lock:
                    load.unreachable += 1
                continue
            except Exception as exc:
                with load.lock:
                    load.failures.append(f"{alg}: {type(exc).__name__}: {exc}")
                continue
            with load.lock:
                load.verified[alg] = load.verified.get(alg, 0) + 1
                load.last_alg = alg


def _wait_for(load: Load, alg: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with load.lock:
            if load.last_alg == alg and load.verified.get(alg, 0) >= 20:
                return
        time.sleep(0.2)
    raise AssertionError(f"tokens never moved to {alg}: {load.verified}, {load.failures[:5]}")


@pytest.fixture
def load_threads() -> Iterator[list[threading.Thread]]:
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(timeout=30)


def test_moving_between_algorithms_under_load_fails_no_verification(
    server_env: dict[str, str], start_server: Callable[..., Server],
    load_threads: list[threading.Thread],
) -> None:
    """Two replicas issue continuously while AUTHD_SIGNING_ALG moves RS256 → ES256 →
    EdDSA → RS256 (migrate, then restart the replicas one at a time): a verifier that
    honours Cache-Control verifies every token, never meeting an unknown kid."""
    env = _env(server_env, "RS256", AUTHD_JWKS_MAX_AGE="3s")
    replicas = Replicas([start_server(env), start_server(env, migrate_first=False)])
    _, api_key = _api_key(replicas.servers[0])
    load, stop = Load(), threading.Event()
    for offset in (0, 1):
        thread = threading.Thread(target=_issue_and_verify,
                                  args=(replicas, api_key, load, stop, offset))
        load_threads.append(thread)
        thread.start()
    try:
        _wait_for(load, "RS256", 30)
        for alg in ("ES256", "EdDSA", "RS256"):
            env = _env(server_env, alg, AUTHD_JWKS_MAX_AGE="3s")
            # The deploy's migration step records the new setting in the key set...
            migrated = json.loads(run_cli(["--json", "migrate"], env).stdout)
            assert migrated["signing_alg"] == alg
            # ...and its replicas restart one at a time with it.
            for index in (0, 1):
                old = replicas.servers[index]
                old.stop()
                fresh = start_server(env, migrate_first=False)
                with replicas.lock:
                    replicas.servers[index] = fresh
            _wait_for(load, alg, 60)
    finally:
        stop.set()
    with load.lock:
        assert load.failures == []
        assert all(load.verified.get(alg, 0) >= 20 for alg in ALGORITHMS), load.verified

