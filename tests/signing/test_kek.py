"""The KEK seals private keys so that only the right KEK and the right row open them."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from service.signing.errors import KeyUnsealable
from service.signing.kek import Kek, SealError
from service.signing.keys import (
    GeneratedKey,
    PrivateKey,
    generate,
    open_private,
    seal_private,
)


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def test_seal_then_open_returns_the_plaintext() -> None:
    """A value sealed under a KEK opens under the same KEK and associated data."""
    kek = Kek(os.urandom(32))
    assert kek.open(kek.seal(b"secret", "kid-1"), "kid-1") == b"secret"


def test_open_with_another_kek_fails() -> None:
    """A different KEK cannot open a sealed value."""
    sealed = Kek(os.urandom(32)).seal(b"secret", "kid-1")
    with pytest.raises(SealError):
        Kek(os.urandom(32)).open(sealed, "kid-1")


def test_open_with_swapped_associated_data_fails() -> None:
    """A blob copied onto another kid's row does not open there."""
    kek = Kek(os.urandom(32))
    with pytest.raises(SealError):
        kek.open(kek.seal(b"secret", "kid-1"), "kid-2")


def test_tampered_blob_fails() -> None:
    """Flipping one bit of the ciphertext is detected."""
    kek = Kek(os.urandom(32))
    sealed = bytearray(kek.seal(b"secret", "kid-1"))
    sealed[-1] ^= 1
    with pytest.raises(SealError):
        kek.open(bytes(sealed), "kid-1")


def test_sealed_private_key_round_trips(private_key: rsa.RSAPrivateKey) -> None:
    """A sealed private signing key opens to the same key."""
    kek = Kek(os.urandom(32))
    opened = open_private(kek, "k1", seal_private(kek, "k1", private_key))
    assert isinstance(opened, rsa.RSAPrivateKey)
    assert opened.private_numbers() == private_key.private_numbers()


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_sealed_ec_and_ed25519_keys_round_trip(alg: str) -> None:
    """ES256 and Ed25519 private keys are sealed and opened exactly as RSA keys are."""
    kek = Kek(os.urandom(32))
    key = generate(2048, alg)
    opened = open_private(kek, key.kid, seal_private(kek, key.kid, key.private_key))
    assert type(opened) is type(key.private_key)
    assert generate_jwk(opened, key) == key.public_jwk


def test_wrong_kek_names_the_kid(private_key: rsa.RSAPrivateKey) -> None:
    """Opening under the wrong KEK raises KeyUnsealable naming the kid, nothing secret."""
    sealed = seal_private(Kek(os.urandom(32)), "k1", private_key)
    with pytest.raises(KeyUnsealable) as caught:
        open_private(Kek(os.urandom(32)), "k1", sealed)
    assert caught.value.kid == "k1"
    assert "k1" in str(caught.value)
    assert "PRIVATE" not in str(caught.value)


def test_swapped_kid_cannot_open_a_private_key(private_key: rsa.RSAPrivateKey) -> None:
    """A private key sealed for one kid does not open as another kid's."""
    kek = Kek(os.urandom(32))
    with pytest.raises(KeyUnsealable):
        open_private(kek, "k2", seal_private(kek, "k1", private_key))


def test_sealed_blob_holds_no_plaintext_der(private_key: rsa.RSAPrivateKey) -> None:
    """The stored blob does not contain the private exponent in the clear."""
    kek = Kek(os.urandom(32))
    d = private_key.private_numbers().d.to_bytes(256, "big")
    assert d[:32] not in seal_private(kek, "k1", private_key)


def generate_jwk(opened: PrivateKey, key: GeneratedKey) -> dict[str, str]:
    """The public JWK of an opened key, under the generated key's kid and alg."""
    return GeneratedKey(key.kid, opened, key.alg).public_jwk
