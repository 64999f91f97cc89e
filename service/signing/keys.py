"""RSA signing keys: generation, the public JWK, and sealing of the private part.

Key ids are 128 random bits, base64url: unguessable, so a kid reveals nothing about
how many keys exist or when the next one comes. The private key is stored only as
PKCS#8 DER sealed under the KEK with the kid as associated data (``kek.py``).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.signing.errors import KeyUnsealable
from service.signing.kek import Kek, SealError

ALG = "RS256"
PUBLIC_EXPONENT = 65537
KID_BYTES = 16
# RFC 7517 §4 / RFC 7518 §6.3.1: the only members a published RSA key carries.
PUBLIC_MEMBERS = ("kty", "kid", "use", "alg", "n", "e")


# What a kid given by an operator or a URL may look like before it is looked up:
# base64url, bounded, so a malformed one is refused without a database query.
KID_SHAPE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def new_kid() -> str:
    """128 random bits, base64url, never starting with '-': operators pass kids to
    ``authd keys revoke KID``, where a leading '-' would read as an option."""
    while True:
        kid = secrets.token_urlsafe(KID_BYTES)
        if not kid.startswith("-"):
            return kid


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _uint_from_b64url(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def public_jwk(public_key: rsa.RSAPublicKey, kid: str) -> dict[str, str]:
    """The RFC 7517 JWK of ``public_key``: public members only, by construction."""
    numbers = public_key.public_numbers()
    return {
        "kty": "RSA",
        "kid": kid,
        "use": "sig",
        "alg": ALG,
        "n": _b64url_uint(numbers.n),
        "e": _b64url_uint(numbers.e),
    }


def public_key_from_jwk(jwk: dict[str, Any]) -> rsa.RSAPublicKey:
    if jwk.get("kty") != "RSA":
        raise ValueError("not an RSA JWK")
    return rsa.RSAPublicNumbers(
        _uint_from_b64url(str(jwk["e"])), _uint_from_b64url(str(jwk["n"]))
    ).public_key()


@dataclass(frozen=True, slots=True, repr=False)
class GeneratedKey:
    """A fresh key pair; its repr shows only the kid."""

    kid: str
    private_key: rsa.RSAPrivateKey

    def __repr__(self) -> str:
        return f"GeneratedKey(kid={self.kid!r})"

    @property
    def public_jwk(self) -> dict[str, str]:
        return public_jwk(self.private_key.public_key(), self.kid)

    @property
    def public_jwk_text(self) -> str:
        return json.dumps(self.public_jwk, separators=(",", ":"), sort_keys=True)


def generate(bits: int) -> GeneratedKey:
    """A new RSA key (CPU-bound: call it off the event loop)."""
    if bits < 2048:
        raise ValueError("RSA signing keys are at least 2048 bits (DESIGN §4)")
    return GeneratedKey(new_kid(), rsa.generate_private_key(PUBLIC_EXPONENT, bits))


def seal_private(kek: Kek, kid: str, private_key: rsa.RSAPrivateKey) -> bytes:
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return kek.seal(der, kid)


def open_private(kek: Kek, kid: str, sealed: bytes) -> rsa.RSAPrivateKey:
    """The private key sealed for ``kid``; KeyUnsealable names the kid otherwise."""
    try:
        der = kek.open(sealed, kid)
    except SealError:
        raise KeyUnsealable(kid) from None
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyUnsealable(kid)
    return key
