"""Helpers for the signing end-to-end tests: tokens over HTTP, a strict JWKS cache."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from tests.support.servers import Server

PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")
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
            token, key, algorithms=["RS256"], issuer=self.issuer,
            options={"verify_aud": False, "require": ["exp", "iat", "jti"]},
        )
        return claims
