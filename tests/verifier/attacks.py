"""The attack catalogue: forged and malformed tokens that no check of an authd token may accept.

Each :class:`Forgery` builds its token from two minters: ``trusted`` holds the key the
checker trusts (a static JWKS in the verifier's suite, a real deployment's active key
on the server), ``attacker`` a key of the same algorithm that nobody trusts. The same
catalogue runs in two places, so the server can never accept a token string the
verifier refuses (issue 13 §3):

- ``tests/verifier/test_attacks.py``: authd-verifier refuses each one with its own error;
- ``tests/revocation/test_e2e_introspect_attacks.py``: a real server's
  ``/oauth/introspect`` answers ``{"active": false}`` for each one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authd_verifier import (
    DisallowedAlgorithm,
    InvalidSignature,
    MalformedToken,
    TokenExpired,
    UnknownKey,
    VerificationError,
    WrongAudience,
    WrongIssuer,
    WrongType,
)
from authd_verifier.testing import MINTABLE_ALGORITHMS, TokenMinter
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

Build = Callable[[TokenMinter, TokenMinter], str]

# The order of P-256 (SEC 2 §2.4.2) and of the Ed25519 base point (RFC 8032 §5.1).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493
ALL = frozenset(MINTABLE_ALGORITHMS)


@dataclass(frozen=True)
class Forgery:
    """One attack: its id, what it is, and the verifier error that refuses it."""

    name: str
    description: str
    refused_as: type[VerificationError]
    build: Build
    match: str | None = None
    algorithms: frozenset[str] = ALL
    # False for the one check that is the resource server's, not the issuer's: the
    # audience (authd answers for tokens of every audience, RFC 7662 §2.2).
    issuer_refuses: bool = True


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _signing_input(minter: TokenMinter, **header: Any) -> str:
    return f"{b64(compact(minter.header(**header)))}.{b64(compact(minter.claims()))}"


def _with_signature(minter: TokenMinter, signature: bytes) -> str:
    return f"{_signing_input(minter)}.{b64(signature)}"


def _es256_raw(minter: TokenMinter) -> tuple[str, int, int]:
    """A valid ES256 token's signing input and its signature's (r, s)."""
    header, payload, signature = minter.mint().split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    return f"{header}.{payload}", int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")


def _es256_with(r: int | None = None, s: int | None = None) -> Build:
    def build(trusted: TokenMinter, attacker: TokenMinter) -> str:
        signing_input, valid_r, valid_s = _es256_raw(trusted)
        raw = (valid_r if r is None else r).to_bytes(32, "big") + (
            valid_s if s is None else s
        ).to_bytes(32, "big")
        return f"{signing_input}.{b64(raw)}"

    return build


def _es256_der(trusted: TokenMinter, attacker: TokenMinter) -> str:
    signing_input = _signing_input(trusted)
    key = trusted.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    assert decode_dss_signature(der)  # well-formed DER, just not the JWS encoding
    return f"{signing_input}.{b64(der)}"


def _resized_signature(delta: int) -> Build:
    def build(trusted: TokenMinter, attacker: TokenMinter) -> str:
        header, payload, signature = trusted.mint().split(".")
        raw = base64.urlsafe_b64decode(signature + "==")
        raw = raw + b"\x00" * delta if delta > 0 else raw[:delta]
        return f"{header}.{payload}.{b64(raw)}"

    return build


def _ed25519_non_canonical_s(trusted: TokenMinter, attacker: TokenMinter) -> str:
    """The same signature with S + L for S: it verifies under a lax check (RFC 8032 §5.1.7)."""
    header, payload, signature = trusted.mint().split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    s = int.from_bytes(raw[32:], "little") + ED25519_ORDER
    return f"{header}.{payload}.{b64(raw[:32] + s.to_bytes(32, 'little'))}"


def _hs256_with_public_key(trusted: TokenMinter, attacker: TokenMinter) -> str:
    pem = trusted.private_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _signing_input(trusted, alg="HS256")
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def _rs384_with_the_trusted_key(trusted: TokenMinter, attacker: TokenMinter) -> str:
    key = trusted.private_key
    assert isinstance(key, rsa.RSAPrivateKey)
    signing_input = _signing_input(trusted, alg="RS384")
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA384())
    return f"{signing_input}.{b64(signature)}"


def _other_algorithm(trusted: TokenMinter, attacker: TokenMinter) -> str:
    """A token naming the trusted kid with another algorithm authd signs with, signed
    by a key of that algorithm: the key's announced algorithm must win."""
    other = next(alg for alg in MINTABLE_ALGORITHMS if alg != trusted.algorithm)
    impostor = TokenMinter(issuer=trusted.issuer, audience=trusted.audience,
                           kid=trusted.kid, algorithm=other)
    return impostor.mint()


def _padded(trusted: TokenMinter, attacker: TokenMinter) -> str:
    return trusted.mint() + "=="


def _tampered(trusted: TokenMinter, attacker: TokenMinter) -> str:
    header, _, signature = trusted.mint(subject="alice").split(".")
    forged = b64(compact(trusted.claims(subject="admin", scope="orders:admin")))
    return f"{header}.{forged}.{signature}"


def _non_canonical_base64(trusted: TokenMinter, attacker: TokenMinter) -> str:
    header, payload, signature = trusted.mint().split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # RSA-2048 (256 bytes), ES256 and Ed25519 (64 bytes) signatures all leave two
    # characters in the last quantum: the last one carries 2 data bits, 4 unused.
    assert len(signature) % 4 == 2
    altered = signature[:-1] + alphabet[alphabet.index(signature[-1]) | 1]
    assert base64.urlsafe_b64decode(altered + "==") == base64.urlsafe_b64decode(signature + "==")
    return f"{header}.{payload}.{altered}"


def _standard_alphabet(trusted: TokenMinter, attacker: TokenMinter) -> str:
    token = trusted.mint()
    while "-" not in token and "_" not in token:
        token = trusted.mint()
    return token.replace("-", "+").replace("_", "/")


def _duplicate_claims(trusted: TokenMinter, attacker: TokenMinter) -> str:
    payload = compact(trusted.claims(subject="alice"))[:-1] + b',"sub":"admin"}'
    return trusted.sign(compact(trusted.header()), payload)


def _duplicate_header_members(trusted: TokenMinter, attacker: TokenMinter) -> str:
    header = compact(trusted.header())[:-1] + b',"alg":"none"}'
    return trusted.sign(header, compact(trusted.claims()))


def _expired(trusted: TokenMinter, attacker: TokenMinter) -> str:
    now = int(time.time())
    return trusted.mint(iat=now - 1000, nbf=now - 1000, exp=now - 100)


def _untyped(trusted: TokenMinter, attacker: TokenMinter) -> str:
    header = compact({"alg": trusted.algorithm, "kid": trusted.kid})
    return trusted.sign(header, compact(trusted.claims()))


def _with_header(**members: Any) -> Build:
    return lambda trusted, attacker: trusted.mint(header=members)


def _with_claims(**claims: Any) -> Build:
    return lambda trusted, attacker: trusted.mint(**claims)


def _unsigned(alg: str) -> Build:
    return lambda trusted, attacker: (
        f"{b64(compact(trusted.header(alg=alg)))}.{b64(compact(trusted.claims()))}."
    )


FORGERIES: tuple[Forgery, ...] = (
    *(
        Forgery(f"alg-{alg}", f"An unsigned token with alg {alg!r} is a disallowed algorithm.",
                DisallowedAlgorithm, _unsigned(alg))
        for alg in ("none", "None", "NONE", "nOnE")
    ),
    Forgery("hs256-keyed-with-the-public-key",
            "An HS256 token keyed with the trusted public key's PEM (key confusion) is refused.",
            DisallowedAlgorithm, _hs256_with_public_key),
    Forgery("rs384-with-the-rs256-key",
            "RS384 signed by the trusted RSA key is refused: the key announces RS256.",
            DisallowedAlgorithm, _rs384_with_the_trusted_key, algorithms=frozenset({"RS256"})),
    Forgery("another-algorithm-for-the-kid",
            "A token naming the trusted kid with another algorithm (its own key) is refused.",
            DisallowedAlgorithm, _other_algorithm),
    *(
        Forgery(f"kid-{label}", "A kid outside [A-Za-z0-9_-]{1,64} is malformed.",
                MalformedToken, _with_header(kid=kid))
        for label, kid in (
            ("path", "../../../etc/passwd"), ("sql-quote", "x' OR '1'='1"),
            ("sql-comment", "key; DROP TABLE keys;--"), ("slash", "a/b"),
            ("too-long", "k" * 65), ("empty", ""),
        )
    ),
    *(
        Forgery(f"{member}-header", f"A {member} header pointing at an attacker's URL is refused.",
                MalformedToken, _with_header(**{member: "https://attacker.example/keys"}),
                match="supplies its own key")
        for member in ("jku", "x5u")
    ),
    Forgery("embedded-jwk",
            "A token carrying its own signing key in a jwk header is refused.",
            MalformedToken,
            lambda trusted, attacker: attacker.mint(
                header={"jwk": attacker.jwk(), "kid": trusted.kid}),
            match="supplies its own key"),
    Forgery("embedded-x5c", "An x5c header (a key supplied by the token) is refused.",
            MalformedToken, _with_header(x5c=["MIIB"]), match="supplies its own key"),
    Forgery("unknown-crit",
            "A crit header naming an extension nobody implements is refused (RFC 7515 §4.1.11).",
            MalformedToken, _with_header(crit=["http://example.invalid/ext"]),
            match="critical extensions"),
    Forgery("oversized", "A validly signed 16 KiB token is refused by the size cap.",
            MalformedToken, _with_claims(padding="x" * 16 * 1024),
            match=r"^the access token is too large$"),
    Forgery("duplicate-claims",
            "A validly signed payload naming sub twice is refused.",
            MalformedToken, _duplicate_claims, match="duplicate"),
    Forgery("duplicate-header-members", "A header naming alg twice is refused.",
            MalformedToken, _duplicate_header_members, match="duplicate"),
    Forgery("string-exp", "An exp given as a string of digits is malformed.",
            MalformedToken,
            lambda trusted, attacker: trusted.mint(exp=str(int(time.time()) + 600))),
    Forgery("absurd-exp", "An exp of 10**30 is malformed, not a token that never expires.",
            MalformedToken, _with_claims(exp=10**30)),
    Forgery("boolean-nbf", "nbf: true is not an integer.", MalformedToken, _with_claims(nbf=True)),
    Forgery("float-exp", "An exp given as a float is refused.",
            MalformedToken, lambda trusted, attacker: trusted.mint(exp=time.time() + 600.5)),
    Forgery("nan-in-payload", "A payload using the non-standard JSON constant NaN is refused.",
            MalformedToken,
            lambda trusted, attacker: trusted.sign(
                compact(trusted.header()), compact(trusted.claims())[:-1] + b',"x":NaN}')),
    Forgery("padded-signature", "A signature segment with '==' padding is refused.",
            MalformedToken, _padded),
    Forgery("non-canonical-base64",
            "A signature whose unused trailing bits are set (a second spelling) is refused.",
            MalformedToken, _non_canonical_base64),
    Forgery("standard-base64-alphabet", "A token spelled with '+' or '/' is refused.",
            MalformedToken, _standard_alphabet),
    Forgery("non-ascii", "A token with a non-ASCII character is malformed.",
            MalformedToken, lambda trusted, attacker: trusted.mint() + "é"),
    Forgery("no-signature-segment", "A two-segment token is malformed.",
            MalformedToken, lambda trusted, attacker: trusted.mint().rpartition(".")[0]),
    Forgery("stripped-signature", "A token whose signature segment was emptied is refused.",
            InvalidSignature, lambda trusted, attacker: trusted.mint().rpartition(".")[0] + "."),
    Forgery("tampered-payload", "Changing the payload of a signed token breaks its signature.",
            InvalidSignature, _tampered),
    Forgery("same-kid-another-key",
            "A token naming the trusted kid but signed with another key is refused.",
            InvalidSignature,
            lambda trusted, attacker: attacker.mint(header={"kid": trusted.kid})),
    Forgery("unknown-kid", "A token naming a kid nobody published is refused.",
            UnknownKey,
            lambda trusted, attacker: trusted.mint(header={"kid": secrets.token_urlsafe(12)})),
    Forgery("expired", "A token whose exp is past (beyond the leeway) is expired.",
            TokenExpired, _expired),
    Forgery("wrong-issuer", "A token of another issuer is refused even with a trusted key.",
            WrongIssuer, _with_claims(iss="https://evil.example")),
    Forgery("wrong-audience", "A token meant for another service is refused by that service.",
            WrongAudience, _with_claims(aud=["billing", "payments"]), issuer_refuses=False),
    *(
        Forgery(f"typ-{typ}", f"A token typed {typ!r}, not at+jwt, is refused.",
                WrongType, _with_header(typ=typ))
        for typ in ("JWT", "id_token+jwt", "at+jwt+x")
    ),
    Forgery("no-typ", "A token with no typ header is refused.", WrongType, _untyped),
    # ES256 (RFC 7518 §3.4): the signature is exactly R || S, 32 bytes each, with
    # 0 < r, s < n; anything else is refused before any library sees it.
    Forgery("es256-der-signature", "An ES256 signature in DER form is refused.",
            InvalidSignature, _es256_der, algorithms=frozenset({"ES256"})),
    *(
        Forgery(f"{alg.lower()}-signature-{label}",
                f"An {alg} signature of {label} bytes is refused.",
                InvalidSignature, _resized_signature(delta), algorithms=frozenset({alg}))
        for alg in ("ES256", "EdDSA")
        for label, delta in (("63", -1), ("65", 1))
    ),
    *(
        Forgery(f"es256-{label}", f"An ES256 signature with {label} is refused.",
                InvalidSignature, build, algorithms=frozenset({"ES256"}))
        for label, build in (
            ("r-zero", _es256_with(r=0)), ("s-zero", _es256_with(s=0)),
            ("r-equal-to-the-order", _es256_with(r=P256_ORDER)),
            ("s-equal-to-the-order", _es256_with(s=P256_ORDER)),
            ("r-above-the-order", _es256_with(r=2**256 - 1)),
            ("s-above-the-order", _es256_with(s=2**256 - 1)),
        )
    ),
    Forgery("eddsa-non-canonical-s",
            "An Ed25519 signature with S + L in place of S is refused (RFC 8032 §5.1.7).",
            InvalidSignature, _ed25519_non_canonical_s, algorithms=frozenset({"EdDSA"})),
)


def forgeries_for(algorithm: str, *, issuer_side: bool = False) -> list[Forgery]:
    """The forgeries that apply to a trusted key of ``algorithm`` (and to authd itself)."""
    return [
        forgery for forgery in FORGERIES
        if algorithm in forgery.algorithms and (forgery.issuer_refuses or not issuer_side)
    ]
