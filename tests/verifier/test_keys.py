"""VerificationKey: JWK parsing, algorithm pinning and the RSASSA-PKCS1-v1_5 check."""

from __future__ import annotations

import os

import pytest
from authd_verifier import VerificationKey
from authd_verifier.testing import TokenMinter
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

HASHES = {"RS256": hashes.SHA256(), "RS384": hashes.SHA384(), "RS512": hashes.SHA512()}


def rsa_private(minter: TokenMinter) -> rsa.RSAPrivateKey:
    """The session minter's key, which is RSA (TokenMinter's default algorithm)."""
    assert isinstance(minter.private_key, rsa.RSAPrivateKey)
    return minter.private_key


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
def test_rsa_check_accepts_what_cryptography_accepts(minter: TokenMinter, alg: str) -> None:
    """A PKCS#1 v1.5 signature made by cryptography verifies, for each RS hash."""
    key = VerificationKey.from_jwk({**minter.jwk(), "alg": alg})
    message = os.urandom(300)
    signature = rsa_private(minter).sign(message, padding.PKCS1v15(), HASHES[alg])
    assert key.checks[alg](message, signature)


def test_rsa_check_refuses_another_message(minter: TokenMinter) -> None:
    """A signature does not verify a different message."""
    key = VerificationKey.from_jwk(minter.jwk())
    signature = rsa_private(minter).sign(b"message", padding.PKCS1v15(), hashes.SHA256())
    assert not key.checks["RS256"](b"messagf", signature)


def test_rsa_check_refuses_a_signature_made_with_another_hash(minter: TokenMinter) -> None:
    """An RS384 signature is not accepted as RS256 (the DigestInfo differs)."""
    key = VerificationKey.from_jwk(minter.jwk())
    signature = rsa_private(minter).sign(b"message", padding.PKCS1v15(), hashes.SHA384())
    assert not key.checks["RS256"](b"message", signature)


def test_rsa_check_refuses_a_short_signature(minter: TokenMinter) -> None:
    """A signature shorter than the modulus (leading zero byte dropped) is refused."""
    key = VerificationKey.from_jwk(minter.jwk())
    signature = rsa_private(minter).sign(b"message", padding.PKCS1v15(), hashes.SHA256())
    assert not key.checks["RS256"](b"message", signature[1:])
    assert not key.checks["RS256"](b"message", b"\x00" + signature)


def test_rsa_check_refuses_a_pss_signature(minter: TokenMinter) -> None:
    """A PSS signature is not a PKCS#1 v1.5 signature."""
    key = VerificationKey.from_jwk(minter.jwk())
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = rsa_private(minter).sign(b"message", pss, hashes.SHA256())
    assert not key.checks["RS256"](b"message", signature)


def test_rsa_check_refuses_garbage(minter: TokenMinter) -> None:
    """Random bytes of the right length are refused."""
    key = VerificationKey.from_jwk(minter.jwk())
    assert not key.checks["RS256"](b"message", os.urandom(256))


def test_rsa_key_without_alg_allows_every_rsa_algorithm(minter: TokenMinter) -> None:
    """A JWK announcing no alg is usable with the RSA algorithms of its key type only."""
    jwk = {name: value for name, value in minter.jwk().items() if name != "alg"}
    key = VerificationKey.from_jwk(jwk)
    assert key.algorithms == {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}


def test_announced_alg_pins_the_key(minter: TokenMinter) -> None:
    """A JWK announcing RS256 is usable with RS256 alone."""
    assert VerificationKey.from_jwk(minter.jwk()).algorithms == {"RS256"}


def test_alg_that_does_not_fit_the_key_type_is_refused(minter: TokenMinter) -> None:
    """An RSA JWK announcing ES256 or HS256 is refused."""
    for alg in ("ES256", "HS256", "none"):
        with pytest.raises(ValueError, match="cannot use"):
            VerificationKey.from_jwk({**minter.jwk(), "alg": alg})


def test_ec_key_verifies_es256_through_pyjwt() -> None:
    """An ES256 key from a JWK verifies a raw (r||s) JWS signature via PyJWT's algorithm."""
    from jwt.algorithms import ECAlgorithm

    private = ec.generate_private_key(ec.SECP256R1())
    jwk = {**ECAlgorithm.to_jwk(private.public_key(), as_dict=True), "kid": "ec-1"}
    key = VerificationKey.from_jwk(jwk)
    signature = ECAlgorithm(ECAlgorithm.SHA256).sign(b"message", private)
    assert key.algorithms == {"ES256"}
    assert key.checks["ES256"](b"message", signature)
    assert not key.checks["ES256"](b"messagf", signature)
