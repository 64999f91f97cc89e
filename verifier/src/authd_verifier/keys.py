"""Public keys from a JWKS, parsed once and pinned to the algorithms they announce.

A :class:`VerificationKey` is built when a JWKS document arrives, not per token:
parsing a JWK into a ``cryptography`` key object costs far more than verifying a
signature with it. Each key carries the set of algorithms it may be used with —
the one its JWK announces (RFC 7517 §4.4), or, when it announces none, those its
key type supports — so a token can never choose a weaker or different algorithm
than the key's owner published. HMAC and ``none`` are never among them: a JWKS
holds public keys, and a public key is not a shared secret.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256
from jwt.algorithms import get_default_algorithms

from .encoding import json_object
from .errors import MalformedToken

logger = logging.getLogger("authd_verifier")

#: Algorithms this library can verify with. Asymmetric only, by construction.
SUPPORTED_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

#: A ``kid`` is looked up, logged and used as a cache key; keep it boring.
KID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: RSA keys shorter than this are refused even if published (DESIGN §4).
MIN_RSA_BITS: Final = 2048

_ALGORITHMS_FOR_KEY_TYPE: Final[Mapping[tuple[str, str | None], frozenset[str]]] = {
    ("RSA", None): frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
    ("EC", "P-256"): frozenset({"ES256"}),
    ("EC", "P-384"): frozenset({"ES384"}),
    ("EC", "P-521"): frozenset({"ES512"}),
    ("OKP", "Ed25519"): frozenset({"EdDSA"}),
}
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_PYJWT_ALGORITHMS: Final = get_default_algorithms()
_PKCS1V15: Final = PKCS1v15()
# RSASSA-PKCS1-v1_5 (RFC 7518 §3.3): the hash and the DER DigestInfo prefix that
# precedes the digest in the encoded message (RFC 8017 §9.2, note 1).
_RSA_PKCS1_DIGESTS: Final[Mapping[str, tuple[Callable[[bytes], Any], bytes]]] = {
    "RS256": (hashlib.sha256, bytes.fromhex("3031300d060960864801650304020105000420")),
    "RS384": (hashlib.sha384, bytes.fromhex("3041300d060960864801650304020205000430")),
    "RS512": (hashlib.sha512, bytes.fromhex("3051300d060960864801650304020305000440")),
}

#: The order n of the P-256 group (SEC 2 §2.4.2): ES256's r and s lie in [1, n - 1].
P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

SignatureCheck = Callable[[bytes, bytes], bool]


class VerificationKey:
    """One published public key, ready to verify signatures.

    ``checks`` maps each usable algorithm name to a function
    ``(signing_input, signature) -> bool``; an algorithm absent from it is not
    pinned for this key.
    """

    __slots__ = ("algorithms", "checks", "kid", "public_key")

    def __init__(self, kid: str, public_key: Any, algorithms: frozenset[str]) -> None:
        self.kid = kid
        self.public_key = public_key
        self.algorithms = algorithms
        self.checks: dict[str, SignatureCheck] = {
            name: _bind(name, public_key) for name in algorithms
        }

    def __repr__(self) -> str:
        return f"VerificationKey(kid={self.kid!r}, algorithms={sorted(self.algorithms)!r})"

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> VerificationKey:
        """Parse one public JWK; raise ``ValueError`` naming why it cannot be used."""
        kid = jwk.get("kid")
        if not isinstance(kid, str) or KID_PATTERN.fullmatch(kid) is None:
            raise ValueError("missing or unsafe kid")
        if _PRIVATE_MEMBERS & jwk.keys():
            raise ValueError("JWK contains private or symmetric key material")
        use = jwk.get("use", "sig")
        key_ops = jwk.get("key_ops", ["verify"])
        if use != "sig" or not isinstance(key_ops, list) or "verify" not in key_ops:
            raise ValueError("JWK is not meant for signature verification")
        kty = jwk.get("kty")
        crv = jwk.get("crv") if kty != "RSA" else None
        by_type = _ALGORITHMS_FOR_KEY_TYPE.get((str(kty), crv if isinstance(crv, str) else None))
        if by_type is None:
            raise ValueError("unsupported key type")
        announced = jwk.get("alg")
        if announced is None:
            algorithms = by_type
        elif isinstance(announced, str) and announced in by_type:
            algorithms = frozenset({announced})
        else:
            raise ValueError("JWK announces an algorithm its key type cannot use")
        try:
            public_key = jwt.PyJWK(dict(jwk), algorithm=min(algorithms)).key
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise ValueError("JWK cannot be parsed") from error
        if isinstance(public_key, RSAPublicKey) and public_key.key_size < MIN_RSA_BITS:
            raise ValueError("RSA key is too short")
        return cls(kid, public_key, algorithms)


def _bind(name: str, public_key: Any) -> SignatureCheck:
    rsa_pkcs1 = _RSA_PKCS1_DIGESTS.get(name)
    if rsa_pkcs1 is not None and isinstance(public_key, RSAPublicKey):
        return _bind_rsa_pkcs1(public_key, *rsa_pkcs1)
    if name == "ES256" and isinstance(public_key, EllipticCurvePublicKey):
        return _bind_es256(public_key)
    if name == "EdDSA" and isinstance(public_key, Ed25519PublicKey):
        return _bind_ed25519(public_key)
    algorithm = _PYJWT_ALGORITHMS[name]

    def check(signing_input: bytes, signature: bytes) -> bool:
        return algorithm.verify(signing_input, public_key, signature)

    return check


def _bind_rsa_pkcs1(
    public_key: RSAPublicKey, digest: Callable[[bytes], Any], digest_info: bytes
) -> SignatureCheck:
    """RSASSA-PKCS1-v1_5 verification as RFC 8017 §8.2.2 specifies it.

    OpenSSL (through ``cryptography``) performs the RSA public operation and
    checks the ``00 01 FF..FF 00`` padding; we then compare what it encloses
    with the expected ``DigestInfo || H(message)`` byte for byte — the
    "encode and compare" method of §8.2.2 step 3-4, which leaves no room for
    lenient DigestInfo parsing. The result is the same as ``RSAPublicKey.verify``
    but avoids its per-call hash context, which measurably matters for the
    first-seen-token rate (DESIGN §7). Step 1 (signature length = modulus
    length) is checked here because the recover primitive does not insist on it.
    Every other algorithm goes through PyJWT's implementation.
    """
    recover = public_key.recover_data_from_signature
    modulus_bytes = (public_key.key_size + 7) // 8

    def check(signing_input: bytes, signature: bytes) -> bool:
        if len(signature) != modulus_bytes:
            return False
        try:
            enclosed = recover(signature, _PKCS1V15, None)
        except (InvalidSignature, ValueError):
            return False
        expected: bytes = digest_info + digest(signing_input).digest()
        # Plain comparison: everything compared here is public, nothing to leak.
        return enclosed == expected

    return check


def _bind_es256(public_key: EllipticCurvePublicKey) -> SignatureCheck:
    """ECDSA P-256 with SHA-256 as RFC 7518 §3.4 encodes it: exactly 64 bytes, the
    big-endian ``R || S``, each in ``[1, n - 1]`` (SEC 1 §4.1.4 step 1).

    Everything else — DER (what ``cryptography`` itself speaks), a shorter or longer
    string, a zero or out-of-range integer — is refused here, before any library
    sees it, so no library's leniency about encodings can make a second spelling of
    a signature verify.
    """
    verify = public_key.verify
    ecdsa = ECDSA(SHA256())

    def check(signing_input: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not (0 < r < P256_ORDER and 0 < s < P256_ORDER):
            return False
        try:
            verify(encode_dss_signature(r, s), signing_input, ecdsa)
        except InvalidSignature:
            return False
        return True

    return check


def _bind_ed25519(public_key: Ed25519PublicKey) -> SignatureCheck:
    """Ed25519 (RFC 8037 §3.1): exactly 64 bytes, checked by OpenSSL, which refuses a
    non-canonical ``S`` (not below the group order, RFC 8032 §5.1.7 step 1)."""
    verify = public_key.verify

    def check(signing_input: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            verify(signature, signing_input)
        except InvalidSignature:
            return False
        return True

    return check


def parse_jwks(document: bytes) -> dict[str, VerificationKey]:
    """Parse a JWKS document (RFC 7517 §5) into usable keys by ``kid``.

    Keys that cannot be used (unknown type, private material, too short, a
    ``kid`` published twice) are skipped with a log line rather than failing the
    whole set: one odd key must not take the others down. A document that is not
    a JWKS at all raises ``ValueError`` so the caller keeps its previous keys.
    """
    try:
        parsed = json_object(document)
    except MalformedToken as error:
        raise ValueError("JWKS is not a JSON object") from error
    entries = parsed.get("keys")
    if not isinstance(entries, list):
        raise ValueError("JWKS has no 'keys' array")
    keys: dict[str, VerificationKey] = {}
    duplicated: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        try:
            key = VerificationKey.from_jwk(entry)
        except ValueError as error:
            logger.warning("skipping unusable JWK: %s", error)
            continue
        if key.kid in keys:
            duplicated.add(key.kid)
        keys[key.kid] = key
    for kid in duplicated:
        logger.warning("skipping kid %s: published more than once", kid)
        del keys[kid]
    return keys
