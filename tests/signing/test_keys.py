"""Key generation and the public JWK."""

from __future__ import annotations

import base64
import json

import pytest
from authd_verifier import VerificationKey
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from service.signing.keys import (
    ALGORITHMS,
    PUBLIC_MEMBERS,
    b64url_bytes,
    generate,
    jws_signer,
    new_kid,
    public_key_from_jwk,
)

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")


def test_kids_are_random_and_long() -> None:
    """Key ids carry at least 128 random bits and never repeat."""
    kids = {new_kid() for _ in range(1000)}
    assert len(kids) == 1000
    assert all(len(kid) >= 22 for kid in kids)


def test_no_kid_starts_like_a_command_line_option() -> None:
    """About one kid in 64 would begin with '-' and break ``authd keys revoke KID``;
    5,000 draws would meet one with near certainty if the guard were missing."""
    assert not any(new_kid().startswith("-") for _ in range(5000))


@pytest.mark.parametrize(
    ("alg", "members"),
    [
        ("RS256", {"kty": "RSA"}),
        ("ES256", {"kty": "EC", "crv": "P-256"}),
        ("EdDSA", {"kty": "OKP", "crv": "Ed25519"}),
    ],
)
def test_public_jwk_has_only_public_members(alg: str, members: dict[str, str]) -> None:
    """The JWK of a generated key has its kty (and crv), kid, use sig, its alg and
    public members only (RSA n, e; EC x, y; OKP x)."""
    key = generate(2048, alg)
    jwk = json.loads(key.public_jwk_text)
    assert set(jwk) <= set(PUBLIC_MEMBERS)
    assert {name: jwk[name] for name in members} == members
    assert jwk["use"] == "sig" and jwk["alg"] == alg and jwk["kid"] == key.kid
    assert not set(PRIVATE_MEMBERS) & set(jwk)


def test_ec_coordinates_are_full_length() -> None:
    """ES256 x and y are always 32 bytes (RFC 7518 §6.2.1.2), even with leading zeros."""
    for _ in range(64):  # about one key in 128 has a coordinate below 2**248
        jwk = generate(2048, "ES256").public_jwk
        assert len(jwk["x"]) == len(jwk["y"]) == 43


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_signatures_verify_with_the_published_jwk(alg: str) -> None:
    """A signature of the key's JWS signer verifies under its own published JWK."""
    key = generate(2048, alg)
    signature = jws_signer(key.private_key, alg)(b"header.payload")
    check = VerificationKey.from_jwk(key.public_jwk).checks[alg]
    assert check(b"header.payload", signature)
    assert not check(b"header.payloaD", signature)


def test_es256_signatures_are_raw_r_and_s() -> None:
    """An ES256 signature is the 64-byte R || S of RFC 7518 §3.4, never DER."""
    key = generate(2048, "ES256")
    signature = jws_signer(key.private_key, "ES256")(b"x")
    assert len(signature) == 64
    with pytest.raises(ValueError):
        decode_dss_signature(signature)


def test_unknown_algorithm_is_refused() -> None:
    """Generating a key for an algorithm authd does not offer is a ValueError."""
    with pytest.raises(ValueError, match="unknown signing algorithm"):
        generate(2048, "HS256")


def test_public_jwk_round_trips_to_the_public_key() -> None:
    """The n and e of the JWK rebuild the key's public half."""
    key = generate(2048)
    rebuilt = public_key_from_jwk(key.public_jwk)
    assert isinstance(key.private_key, rsa.RSAPrivateKey)
    assert rebuilt.public_numbers() == key.private_key.public_key().public_numbers()


def test_keys_are_at_least_2048_bits() -> None:
    """RSA keys below 2048 bits are refused."""
    with pytest.raises(ValueError, match="2048"):
        generate(1024)


def test_repr_shows_no_key_material() -> None:
    """A generated key's repr names only its kid."""
    key = generate(2048)
    assert repr(key) == f"GeneratedKey(kid={key.kid!r})"


@given(st.binary(max_size=300))
def test_b64url_is_the_standard_librarys_without_padding(raw: bytes) -> None:
    """RFC 7515 §2 base64url, as ``base64.urlsafe_b64encode`` writes it, unpadded."""
    assert b64url_bytes(raw) == base64.urlsafe_b64encode(raw).rstrip(b"=")


def test_b64url_uses_the_url_safe_alphabet() -> None:
    assert b64url_bytes(b"\xfb\xff\xbf") == b"-_-_"
