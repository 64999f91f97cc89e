"""The API-key format of DESIGN §4."""

from __future__ import annotations

from service.apikeys import keyformat

SHAPE = keyformat.KeyShape("ak_live")


def test_generated_key_is_well_formed() -> None:
    """A freshly generated key passes the shape and checksum check."""
    assert SHAPE.well_formed(keyformat.generate("ak_live"))


def test_key_carries_at_least_160_random_bits() -> None:
    """The random body is long enough for 160 bits of base62."""
    assert keyformat.BODY_LENGTH * 5.95 >= 160


def test_one_changed_character_breaks_the_checksum() -> None:
    """Changing any body character makes the key malformed."""
    key = keyformat.generate("ak_live")
    index = len("ak_live_") + 3
    swapped = "A" if key[index] != "A" else "B"
    assert not SHAPE.well_formed(key[:index] + swapped + key[index + 1:])


def test_key_of_another_prefix_is_refused() -> None:
    """A valid ak_test key is not a key of an ak_live deployment."""
    assert not SHAPE.well_formed(keyformat.generate("ak_test"))


def test_wrong_length_and_charset_are_refused() -> None:
    """Truncated keys, padded keys and non-ASCII characters are malformed."""
    key = keyformat.generate("ak_live")
    assert not SHAPE.well_formed(key[:-1])
    assert not SHAPE.well_formed(key + "x")
    assert not SHAPE.well_formed(key[:-2] + "é" + key[-1])
    assert not SHAPE.well_formed("")


def test_display_shows_only_the_ends() -> None:
    """The display form keeps the prefix, four characters and the last four."""
    key = keyformat.generate("ak_live")
    shown = keyformat.display(key, "ak_live")
    assert shown.startswith(key[:12]) and shown.endswith(key[-4:])
    assert len(shown) < 20
