"""Helpers for the signing end-to-end tests: tokens over HTTP, a strict JWKS cache."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from tests.support.databases import REDIS_URL, RUN_ID, create_database
from tests.support.servers import Server, free_port, new_kek

PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")
# What authd signs with; PyJWT still refuses a token whose alg does not fit its key.
SIGNING_ALGORITHMS = ("RS256", "ES256", "EdDSA")
_MAX_AGE = re.compile(r"max-age=(\d+)")


def admin_key(server: Server) -> str:
    """A fresh admin API key made by ``authd bootstrap`` (scope authd:admin)."""
    result = json.loads(server.cli(["--json", "bootstrap"]).stdout)
    return str(result["api_key"])


def fetch_token(client: httpx.Client, server: Server, api_key: str) -> str | None:
    """An access token from ``POST /v1/token``; None when rate limited."""
    response = client.post(f"{server.base_url}/v1/token", headers={"X-API-Key": api_key})
    if response.status_code == 429:
        return None
    response.raise_for_status()
    return str(response.json()["access_token"])


def jwks_kids(server: Server) -> set[str]:
    response = httpx.get(f"{server.base_url}/.well-known/jwks.json", timeout=5)
    response.raise_for_status()
    return {k["kid"] for k in response.json()["keys"]}


def has_private_material(text: str) -> bool:
    if "PRIVATE KEY" in text:
        return True
    return any(re.search(rf'"{m}"\s*:', text) for m in PRIVATE_JWK_MEMBERS)


@dataclass
class StrictJwksCache:
    """A verifier that honours Cache-Control and never refetches on an unknown kid,
    so any kid it meets before its cache expires must already have been published."""

    url: str
    issuer: str
    keys: dict[str, Any] = field(default_factory=dict)
    expires: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _refresh(self, client: httpx.Client) -> None:
        started = time.monotonic()
        response = client.get(self.url)
        response.raise_for_status()
        match = _MAX_AGE.search(response.headers.get("cache-control", ""))
        max_age = int(match.group(1)) if match else 0
        jwk_set = jwt.PyJWKSet.from_dict(response.json())
        self.keys = {k.key_id: k.key for k in jwk_set.keys if k.key_id}
        self.expires = started + max_age

    def verify(self, client: httpx.Client, token: str) -> dict[str, Any]:
        with self.lock:
            if time.monotonic() >= self.expires:
                self._refresh(client)
            kid = str(jwt.get_unverified_header(token).get("kid"))
            key = self.keys.get(kid)
        if key is None:
            raise LookupError(f"kid {kid} not in the cached JWKS")
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=list(SIGNING_ALGORITHMS), issuer=self.issuer,
            options={"verify_aud": False, "require": ["exp", "iat", "jti"]},
        )
        return claims


async def production_env(label: str, **extra: str) -> dict[str, str]:
    """A production-shaped environment of its own (new PostgreSQL database, own Redis
    prefix, new KEK), for a server shared by a module's tests."""
    return {
        "AUTHD_DATABASE_URL": await create_database(label),
        "AUTHD_REDIS_URL": REDIS_URL,
        "AUTHD_REDIS_PREFIX": f"authd-test:{RUN_ID}:{uuid.uuid4().hex[:8]}:",
        "AUTHD_KEK": new_kek(),
        **extra,
    }


def start_shared_server(env: dict[str, str], log_dir: Path) -> Server:
    """Migrate, start and wait until ready; the caller stops it."""
    server = Server(env=env, port=free_port(), log_path=log_dir / "server.log")
    server.cli(["migrate"])
    server.start()
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server
