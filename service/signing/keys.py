"""Signing keys: generation, the public JWK, the JWS signer, sealing of the private part.

Three algorithms (DESIGN §4, issue 16): RS256 (RSA ≥ 2048 bits, the default), ES256
(ECDSA P-256, RFC 7518 §3.4) and EdDSA (Ed25519, RFC 8037). Each key has exactly one
algorithm, recorded with it and announced in its JWK: a token's ``alg`` is always its
key's.

Key ids are 128 random bits, base64url: unguessable, so a kid reveals nothing about
how many keys exist or when the next one comes. The private key is stored only as
PKCS#8 DER sealed under the KEK with the kid as associated data (``kek.py``), for
every algorithm alike.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from service.signing.errors import KeyUnsealable
from service.signing.kek import Kek, SealError

# The default algorithm: every JOSE library and gateway verifies it.
ALG = "RS256"
ALGORITHMS = ("RS256", "ES256", "EdDSA")
PUBLIC_EXPONENT = 65537
KID_BYTES = 16
# The only members a published key carries: RFC 7517 §4 and RFC 7518 §6.3.1 (RSA),
# §6.2.1 (EC), RFC 8037 §2 (OKP). Private members can never be among them.
PUBLIC_MEMBERS = ("kty", "crv", "kid", "use", "alg", "n", "e", "x", "y")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


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


def b64url_bytes(raw: bytes) -> bytes:
    """Unpadded base64url (RFC 7515 §2), as bytes: ``base64.urlsafe_b64encode`` without
    its two Python-level wrappers (twice a token)."""
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64url(raw: bytes) -> str:
    return b64url_bytes(raw).decode()


def _b64url_uint(value: int, length: int = 0) -> str:
    """A JWK integer: big-endian, minimal (RFC 7518 §6.3.1) or of a fixed ``length``
    (EC coordinates, §6.2.1.2: the full size of the field)."""
    raw = value.to_bytes(length or (value.bit_length() + 7) // 8 or 1, "big")
    return _b64url(raw)


def _uint_from_b64url(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def public_jwk(public_key: PublicKey, kid: str, alg: str = ALG) -> dict[str, str]:
    """The RFC 7517 JWK of ``public_key``: public members only, by construction."""
    jwk = {"kid": kid, "use": "sig", "alg": alg}
    if alg == "RS256" and isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {"kty": "RSA", **jwk, "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
    if alg == "ES256" and isinstance(public_key, ec.EllipticCurvePublicKey):
        point = public_key.public_numbers()
        return {"kty": "EC", "crv": "P-256", **jwk,
                "x": _b64url_uint(point.x, 32), "y": _b64url_uint(point.y, 32)}
    if alg == "EdDSA" and isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", **jwk, "x": _b64url(raw)}
    raise ValueError(f"a {type(public_key).__name__} cannot sign {alg}")


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
    private_key: PrivateKey
    alg: str = ALG

    def __repr__(self) -> str:
        return f"GeneratedKey(kid={self.kid!r})"

    @property
    def public_jwk(self) -> dict[str, str]:
        return public_jwk(self.private_key.public_key(), self.kid, self.alg)

    @property
    def public_jwk_text(self) -> str:
        return json.dumps(self.public_jwk, separators=(",", ":"), sort_keys=True)


def generate(bits: int, alg: str = ALG) -> GeneratedKey:
    """A new key for ``alg`` (CPU-bound for RSA: call it off the event loop).
    ``bits`` is the RSA modulus size; EC and Ed25519 keys have a fixed size."""
    if alg == "RS256":
        if bits < 2048:
            raise ValueError("RSA signing keys are at least 2048 bits (DESIGN §4)")
        return GeneratedKey(new_kid(), rsa.generate_private_key(PUBLIC_EXPONENT, bits), alg)
    if alg == "ES256":
        return GeneratedKey(new_kid(), ec.generate_private_key(ec.SECP256R1()), alg)
    if alg == "EdDSA":
        return GeneratedKey(new_kid(), ed25519.Ed25519PrivateKey.generate(), alg)
    raise ValueError(f"unknown signing algorithm {alg!r}: expected one of {ALGORITHMS}")


def jws_signer(private_key: PrivateKey, alg: str) -> Callable[[bytes], bytes]:
    """The JWS signature function of ``private_key`` for ``alg`` (RFC 7515 §5.1 step 5),
    made once per key so that signing a token is one call.

    ES256 answers the 64-byte ``R || S`` of RFC 7518 §3.4 (32 bytes each, big-endian,
    left-padded), never the DER that ``cryptography`` produces; Ed25519 signs the
    message itself (RFC 8037 §3.1, no prehash).
    """
    if alg == "RS256" and isinstance(private_key, rsa.RSAPrivateKey):
        rsa_sign, pkcs1, sha256 = private_key.sign, padding.PKCS1v15(), hashes.SHA256()
        return lambda message: rsa_sign(message, pkcs1, sha256)
    if alg == "ES256" and isinstance(private_key, ec.EllipticCurvePrivateKey):
        ec_sign, ecdsa = private_key.sign, ec.ECDSA(hashes.SHA256())

        def es256(message: bytes) -> bytes:
            r, s = decode_dss_signature(ec_sign(message, ecdsa))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        return es256
    if alg == "EdDSA" and isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign
    raise ValueError(f"a {type(private_key).__name__} cannot sign {alg}")


def seal_private(kek: Kek, kid: str, private_key: PrivateKey) -> bytes:
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return kek.seal(der, kid)


def open_private(kek: Kek, kid: str, sealed: bytes) -> PrivateKey:
    """The private key sealed for ``kid``; KeyUnsealable names the kid otherwise."""
    try:
        der = kek.open(sealed, kid)
    except SealError:
        raise KeyUnsealable(kid) from None
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                      | ed25519.Ed25519PrivateKey):
        raise KeyUnsealable(kid)
    return key
