"""The token issuer: claims in, a signed RFC 9068 access token out (DESIGN §4).

Always signs with the key ring's active key, whose private key object was loaded
once when the key set changed. The RSA signature runs in a small thread pool:
``cryptography`` releases the GIL while it signs, so one worker process uses more
than one core and the event loop keeps answering while a token is signed.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import jwt

from service.signing.keyring import ActiveKey, KeyRing
from service.signing.keys import ALG

TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
# Claims the issuer owns; ``extra`` may add others (sid, amr, acr) but never these.
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope"}
)


@dataclass(frozen=True, slots=True, repr=False)
class IssuedToken:
    token: str
    jti: str
    kid: str
    issued_at: int
    expires_at: int
    claims: dict[str, Any]

    def __repr__(self) -> str:
        return f"IssuedToken(jti={self.jti!r}, kid={self.kid!r}, expires_at={self.expires_at})"


def _sign(claims: dict[str, Any], key: ActiveKey) -> str:
    return jwt.encode(
        claims, key.private_key, algorithm=ALG, headers={"kid": key.kid, "typ": TOKEN_TYPE}
    )


class TokenIssuer:
    def __init__(self, keys: KeyRing, *, issuer: str, threads: int | None = None) -> None:
        self._keys = keys
        self._issuer = issuer
        self._pool = ThreadPoolExecutor(
            max_workers=threads or min(4, os.cpu_count() or 1), thread_name_prefix="authd-sign"
        )

    async def issue(
        self,
        *,
        subject: str,
        audience: str,
        scope: str,
        client_id: str,
        ttl: float,
        extra: Mapping[str, Any] | None = None,
    ) -> IssuedToken:
        """Sign a token for ``subject``; NoActiveKey (503) if no key may sign."""
        if ttl <= 0:
            raise ValueError("a token lifetime is positive")
        key = self._keys.signer()
        now = int(time.time())
        expires_at = now + int(ttl)
        jti = str(uuid.uuid4())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject,
            "aud": audience,
            "exp": expires_at,
            "iat": now,
            "nbf": now,
            "jti": jti,
            "client_id": client_id,
            "scope": scope,
        }
        if extra:
            clash = RESERVED_CLAIMS.intersection(extra)
            if clash:
                raise ValueError(f"extra claims may not override {sorted(clash)}")
            claims.update(extra)
        loop = asyncio.get_running_loop()
        token = await loop.run_in_executor(self._pool, _sign, claims, key)
        return IssuedToken(token, jti, key.kid, now, expires_at, claims)

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
