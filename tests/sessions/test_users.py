"""E-mail normalisation (service/sessions/passwords.py ``normalise_email``), the one
spelling under which a user is stored and found."""

from __future__ import annotations

import pytest

from service.errors import InvalidRequest
from service.sessions.errors import InvalidEmail
from service.sessions.passwords import MAX_EMAIL_CHARS, normalise_email


def _address(length: int) -> str:
    """An ASCII address of exactly ``length`` characters."""
    domain = "@example.com"
    return "a" * (length - len(domain)) + domain


def _fullwidth(ascii_text: str) -> str:
    """The fullwidth forms (U+FF01..U+FF5E) of printable ASCII."""
    return "".join(chr(ord(ch) + 0xFEE0) for ch in ascii_text)


def test_surrounding_whitespace_is_trimmed() -> None:
    """Spaces, tabs and newlines around the address are dropped."""
    assert normalise_email(" \t ann@example.com\r\n ") == "ann@example.com"


def test_fullwidth_characters_are_nfkc_normalised() -> None:
    """Fullwidth letters, at sign and full stop become their ASCII forms."""
    assert normalise_email(_fullwidth("ann@example.com")) == "ann@example.com"


def test_compatibility_ligatures_are_decomposed() -> None:
    """The ``ﬁ`` ligature is NFKC-decomposed into ``fi``."""
    assert normalise_email("ﬁona@example.com") == "fiona@example.com"


def test_the_local_part_is_case_folded() -> None:
    """Upper-case letters of the local part are folded."""
    assert normalise_email("Ann.Smith@example.com") == "ann.smith@example.com"


def test_the_domain_is_case_folded() -> None:
    """Upper-case letters of the domain are folded."""
    assert normalise_email("ann@Example.COM") == "ann@example.com"


def test_case_folding_is_full_folding_not_lower() -> None:
    """``ß`` folds to ``ss``, so ``Straße`` and ``STRASSE`` are one address."""
    assert normalise_email("Straße@example.com") == normalise_email("STRASSE@example.com")


def test_normalising_is_idempotent() -> None:
    """A normalised address comes back unchanged."""
    once = normalise_email("  " + _fullwidth("ANN") + ".Straße@Example.COM ")
    assert normalise_email(once) == once


def test_an_address_of_the_maximum_length_is_accepted() -> None:
    """An address of exactly 254 characters passes."""
    address = _address(MAX_EMAIL_CHARS)
    assert normalise_email(address) == address


def test_an_address_one_character_over_the_maximum_is_refused() -> None:
    """An address of 255 characters is refused."""
    with pytest.raises(InvalidEmail):
        normalise_email(_address(MAX_EMAIL_CHARS + 1))


def test_trimmed_whitespace_does_not_count_towards_the_length() -> None:
    """A 254-character address with surrounding spaces is accepted."""
    address = _address(MAX_EMAIL_CHARS)
    assert normalise_email("   " + address + "   ") == address


def test_the_length_is_counted_after_normalisation() -> None:
    """A short input whose NFKC form is over 254 characters is refused."""
    fits = "\u3300" * 60 + "@example.com"  # each ㌀ is four katakana under NFKC
    assert len(normalise_email(fits)) == 252
    with pytest.raises(InvalidEmail):
        normalise_email("\u3300" * 61 + "@example.com")


@pytest.mark.parametrize("address", [
    "", "   ", "ann.example.com", "@example.com", "ann@", "@", "ann@@example.com",
    "ann@b@example.com",
], ids=["empty", "blank", "no-at", "empty-local", "empty-domain", "only-at", "double-at",
        "two-ats"])
def test_an_address_without_one_at_and_two_non_empty_parts_is_refused(address: str) -> None:
    """No ``@``, an empty local part or domain, or a second ``@`` is refused."""
    with pytest.raises(InvalidEmail):
        normalise_email(address)


@pytest.mark.parametrize("address", [
    "ann@.example.com", "ann@example.com.", "ann@example..com",
], ids=["leading-dot", "trailing-dot", "double-dot"])
def test_a_domain_with_an_empty_label_is_refused(address: str) -> None:
    """A domain starting or ending with a dot or holding two dots in a row is refused."""
    with pytest.raises(InvalidEmail):
        normalise_email(address)


@pytest.mark.parametrize("address", [
    "an\x00n@example.com", "ann\n@example.com", "ann@exa\tmple.com", "a\x7fnn@example.com",
    "ann\u200b@example.com", "ann@example.com\u202e", "an\ud800n@example.com",
], ids=["nul", "newline", "tab", "del", "zero-width-space", "bidi-override",
        "lone-surrogate"])
def test_an_address_with_a_control_or_invisible_character_is_refused(address: str) -> None:
    """Control, format and surrogate characters inside the address are refused."""
    with pytest.raises(InvalidEmail):
        normalise_email(address)


def test_an_address_with_an_inner_space_is_refused() -> None:
    """A space inside the address (not around it) is refused."""
    with pytest.raises(InvalidEmail):
        normalise_email("ann smith@example.com")


def test_a_character_whose_nfkc_form_holds_a_space_is_refused() -> None:
    """``¨`` (NFKC: space + combining diaeresis) cannot smuggle a space in."""
    with pytest.raises(InvalidEmail):
        normalise_email("ann\u00a8@example.com")


def test_invalid_email_is_a_client_error() -> None:
    """InvalidEmail is an InvalidRequest (a 400) and does not echo the input."""
    with pytest.raises(InvalidRequest) as caught:
        normalise_email("secret-looking-value")
    assert "secret-looking-value" not in str(caught.value)
