"""Helpers for testing a service that uses authd_verifier, without running authd.

Public API, in the spirit of ``structlog.testing``: a :class:`TokenMinter` holds
a freshly generated key (RS256 by default; ES256 and EdDSA as authd offers them)
and mints tokens shaped exactly like authd's (DESIGN §4), and :class:`StaticJWKS` /
:class:`AsyncStaticJWKS` serve its public key in process, so a downstream test
suite exercises the real verification code against real signatures::

    minter = TokenMinter(issuer="https://authd.test", audience="orders")
    verifier = minter.verifier()
    claims = verifier.verify(minter.mint(subject="user-1", scope="orders:read"))

Never use these outside tests: the minter's private key lives in memory only.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Unpack

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from .encoding import b64url_encode
from .keys import VerificationKey
from .verify import AsyncVerifier, CheckOptions, Verifier

__all__ = ["MINTABLE_ALGORITHMS", "AsyncStaticJWKS", "StaticJWKS", "TokenMinter"]

#: The algorithms authd signs with, and so the ones a minter can imitate.
MINTABLE_ALGORITHMS = ("RS256", "ES256", "EdDSA")

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_JWS = get_default_algorithms()


def _generate(algorithm: str, key_size: int) -> SigningKey:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"a minter signs with one of {MINTABLE_ALGORITHMS}, not {algorithm!r}")


class TokenMinter:
    """Mints access tokens in authd's format with its own generated key.

    ``algorithm`` is RS256 (default), ES256 (P-256, the raw ``R || S`` signature of
    RFC 7518 §3.4) or EdDSA (Ed25519, RFC 8037). ``private_key`` uses a given key of
    that algorithm instead of a new one (e.g. to sign as a test deployment of authd).
    """

    def __init__(
        self,
        *,
        issuer: str = "https://authd.test",
        audience: str = "api",
        kid: str | None = None,
        key_size: int = 2048,
        lifetime: int = 900,
        clock: Callable[[], float] = time.time,
        algorithm: str = "RS256",
        private_key: SigningKey | None = None,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.kid = kid if kid is not None else "test-" + secrets.token_hex(6)
        self.lifetime = lifetime
        self.algorithm = algorithm
        self.private_key = (
            private_key if private_key is not None else _generate(algorithm, key_size)
        )
        self._jws = _JWS[algorithm]
        self._clock = clock

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK, with ``kid``, ``alg`` and ``use`` as authd publishes it."""
        jwk = self._jws.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        """A JWKS document holding this minter's public key."""
        return {"keys": [self.jwk()]}

    def claims(
        self, *, subject: str = "user-1", scope: str = "", **overrides: Any
    ) -> dict[str, Any]:
        """authd's claim set for a token issued now; ``overrides`` replace or add claims."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "exp": now + self.lifetime,
            "iat": now,
            "nbf": now,
            "jti": secrets.token_urlsafe(16),
            "client_id": "test-client",
            "scope": scope,
        }
        claims.update(overrides)
        return claims

    def header(self, **overrides: Any) -> dict[str, Any]:
        """authd's JOSE header for this key; ``overrides`` replace or add members."""
        return {"alg": self.algorithm, "typ": "at+jwt", "kid": self.kid, **overrides}

    def mint(
        self,
        *,
        subject: str = "user-1",
        scope: str = "",
        header: Mapping[str, Any] | None = None,
        omit: Iterable[str] = (),
        **claims: Any,
    ) -> str:
        """A signed token; ``header`` adds or replaces header members, ``omit`` drops claims."""
        payload = self.claims(subject=subject, scope=scope, **claims)
        for name in omit:
            payload.pop(name, None)
        return self.encode(payload, header=header)

    def encode(self, claims: Mapping[str, Any], *, header: Mapping[str, Any] | None = None) -> str:
        """Sign exactly ``claims`` (no defaults added) under this key's header."""
        return self.sign(
            json.dumps(self.header(**(header or {})), separators=(",", ":")).encode(),
            json.dumps(claims, separators=(",", ":")).encode(),
        )

    def sign(self, header_json: bytes, payload_json: bytes) -> str:
        """Sign raw header and payload bytes as given (for crafting unusual tokens)."""
        signing_input = f"{b64url_encode(header_json)}.{b64url_encode(payload_json)}"
        signature = self._jws.sign(signing_input.encode("ascii"), self.private_key)
        return f"{signing_input}.{b64url_encode(signature)}"

    def verifier(self, **options: Unpack[CheckOptions]) -> Verifier:
        """A :class:`Verifier` that trusts this minter's issuer, audience and key."""
        return Verifier(
            keys=StaticJWKS(self.jwks()), issuer=self.issuer, audience=self.audience, **options
        )

    def async_verifier(self, **options: Unpack[CheckOptions]) -> AsyncVerifier:
        """An :class:`AsyncVerifier` that trusts this minter's issuer, audience and key."""
        return AsyncVerifier(
            keys=AsyncStaticJWKS(self.jwks()),
            issuer=self.issuer,
            audience=self.audience,
            **options,
        )


def _parse_keys(jwks: Mapping[str, Any]) -> dict[str, VerificationKey]:
    keys = [VerificationKey.from_jwk(jwk) for jwk in jwks["keys"]]
    return {key.kid: key for key in keys}


class StaticJWKS:
    """A fixed, in-process key source for :class:`Verifier`; never fetches anything.

    Unlike the real cache it raises ``ValueError`` on an unusable JWK, so a test
    with a broken fixture fails loudly.
    """

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.keys = _parse_keys(jwks)

    def get_key(self, kid: str) -> VerificationKey | None:
        """The key published as ``kid``, or ``None``."""
        return self.keys.get(kid)


class AsyncStaticJWKS:
    """The async twin of :class:`StaticJWKS`, for :class:`AsyncVerifier`."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self.keys = _parse_keys(jwks)

    async def get_key(self, kid: str) -> VerificationKey | None:
        """The key published as ``kid``, or ``None``."""
        return self.keys.get(kid)
