"""Key generation and the public JWK."""

from __future__ import annotations

import json

import pytest

from service.signing.keys import PUBLIC_MEMBERS, generate, new_kid, public_key_from_jwk

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


def test_public_jwk_has_only_public_members() -> None:
    """The JWK of a generated key has exactly kty, kid, use, alg, n, e."""
    key = generate(2048)
    jwk = json.loads(key.public_jwk_text)
    assert set(jwk) == set(PUBLIC_MEMBERS)
    assert jwk["kty"] == "RSA" and jwk["use"] == "sig" and jwk["alg"] == "RS256"
    assert not set(PRIVATE_MEMBERS) & set(jwk)


def test_public_jwk_round_trips_to_the_public_key() -> None:
    """The n and e of the JWK rebuild the key's public half."""
    key = generate(2048)
    rebuilt = public_key_from_jwk(key.public_jwk)
    assert rebuilt.public_numbers() == key.private_key.public_key().public_numbers()


def test_keys_are_at_least_2048_bits() -> None:
    """RSA keys below 2048 bits are refused."""
    with pytest.raises(ValueError, match="2048"):
        generate(1024)


def test_repr_shows_no_key_material() -> None:
    """A generated key's repr names only its kid."""
    key = generate(2048)
    assert repr(key) == f"GeneratedKey(kid={key.kid!r})"
