"""Strict base64url and JSON: every accepted input has exactly one spelling."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from authd_verifier import MalformedToken
from authd_verifier.encoding import b64url_decode, b64url_encode, json_object
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize("size", range(0, 10))
def test_every_length_round_trips(size: int) -> None:
    """Whatever the length of the data, its unpadded encoding decodes back to it."""
    data = bytes(range(200, 200 + size))
    encoded = b64url_encode(data).encode()
    if size == 0:
        with pytest.raises(MalformedToken):  # an empty segment is never part of a token
            b64url_decode(encoded)
    else:
        assert b64url_decode(encoded) == data


@pytest.mark.parametrize(
    "segment",
    [
        b"A",
        b"AAAAA",
        b"AR",
        b"AAF",
        b"AQ==",
        b"AQ=",
        b"A+Q",
        b"A/Q",
        b"AQ\n",
        b"A Q",
        b"\xffQ",
        b"AA  AA",
        b"AA\n\nAA",
        b"AA==AA",
    ],
    ids=[
        "one-char",
        "five-chars",
        "two-chars-low-bits-set",
        "three-chars-low-bits-set",
        "padded",
        "half-padded",
        "plus",
        "slash",
        "newline",
        "space",
        "non-ascii",
        "two-spaces-inside",
        "two-newlines-inside",
        "padding-inside",
    ],
)
def test_non_canonical_or_foreign_segments_are_malformed(segment: bytes) -> None:
    """Lengths that cannot occur, set unused bits, padding and foreign bytes are refused."""
    with pytest.raises(MalformedToken):
        b64url_decode(segment)


_URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _strict_reference(segment: bytes) -> bytes | None:
    """RFC 4648 §5 without padding, canonical (§3.5), by the standard library's strict mode."""
    if len(segment) % 4 == 1 or not segment:
        return None
    try:
        text = segment.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in text):
        return None
    padded = text.translate(str.maketrans("-_", "+/")) + "=" * (-len(text) % 4)
    try:
        data = base64.b64decode(padded, validate=True)
    except ValueError:
        return None
    return data if base64.urlsafe_b64encode(data).rstrip(b"=") == segment else None


@given(
    st.one_of(
        st.binary(max_size=12),
        st.text(_URL_ALPHABET, max_size=12).map(str.encode),
        st.text("AQgw+/=*-_ \n.\x00\xff", max_size=8).map(lambda t: t.encode("latin-1")),
    )
)
def test_b64url_decode_accepts_exactly_the_canonical_unpadded_segments(segment: bytes) -> None:
    """Every byte string decodes as the strict reference decodes it, or is refused
    where the reference refuses it."""
    expected = _strict_reference(segment)
    if expected is None:
        with pytest.raises(MalformedToken):
            b64url_decode(segment)
    else:
        assert b64url_decode(segment) == expected


def test_lenient_decoders_accept_what_this_one_refuses() -> None:
    """The refusal above is a choice: the standard library reads 'AR' as the byte 0x01."""
    assert base64.urlsafe_b64decode(b"AR==") == b"\x01" == b64url_decode(b"AQ")


@pytest.mark.parametrize(
    "document",
    [
        b'{"a":1,"a":2}',
        b'{"a" :1,"a":2}',
        b'{"a":{"b":1,"b":2}}',
        b'{"a":[{"b":1,"b":2}]}',
        b'{"a":NaN}',
        b'{"a":1} ',
        b' {"a":1}',
        b'[{"a":1}]',
        b'{"a":"\\ud800"',
        b'{"a":1}{"b":2}',
        b'{"a":"x,y","a":2}',
        b'{"a":1,"b":[1,2],"a":3}',
        b'{"a":{"b":1,"b":2},"c":"d"}',
        b'{"a":{"b":1,"b":2},"c":"d","e":"f"}',
    ],
    ids=[
        "duplicate",
        "duplicate-after-whitespace",
        "nested-duplicate",
        "duplicate-in-array",
        "nan",
        "trailing-space",
        "leading-space",
        "not-an-object",
        "unterminated",
        "two-documents",
        "duplicate-beside-a-comma-in-a-string",
        "duplicate-beside-a-list",
        "nested-duplicate-beside-a-member",
        "nested-duplicate-beside-two-members",
    ],
)
def test_json_with_a_second_reading_is_malformed(document: bytes) -> None:
    """Duplicate members, non-standard numbers, stray bytes and non-objects are refused."""
    with pytest.raises(MalformedToken):
        json_object(document)


def test_json_object_reads_a_compact_token_payload() -> None:
    """A compact object of the kind authd signs is read member for member."""
    assert json_object(b'{"sub":"u","exp":2,"aud":["a","b"],"scope":"x:y z"}') == {
        "sub": "u",
        "exp": 2,
        "aud": ["a", "b"],
        "scope": "x:y z",
    }


_NAMES = st.sampled_from(["a", "b", "c", "sub", "scope"])
_SCALARS = st.one_of(st.integers(), st.sampled_from(["", ",", "x,y", ":", "{", "}"]))
# Member lists that may repeat a name, at any depth, spelled compactly.
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.lists(st.tuples(_NAMES, inner), max_size=4)
    ),
    max_leaves=8,
)


def _spell(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(item, tuple) for item in value):
        return "{" + ",".join(f"{json.dumps(n)}:{_spell(v)}" for n, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_spell(item) for item in value) + "]"
    return json.dumps(value, separators=(",", ":"))


def _has_duplicate(value: Any) -> bool:
    if isinstance(value, list) and all(isinstance(item, tuple) for item in value):
        names = [name for name, _ in value]
        return len(set(names)) != len(names) or any(_has_duplicate(v) for _, v in value)
    if isinstance(value, list):
        return any(_has_duplicate(item) for item in value)
    return False


@given(st.lists(st.tuples(_NAMES, _VALUES), max_size=6))
def test_json_object_refuses_every_duplicate_and_reads_the_rest(
    members: list[tuple[str, Any]],
) -> None:
    """Whichever scan reads a document (the plain one settles uniqueness by counting
    commas), a repeated name at any depth is refused and anything else is read as
    ``json.loads`` reads it."""
    text = _spell(members)
    if _has_duplicate(members):
        with pytest.raises(MalformedToken):
            json_object(text.encode())
    else:
        assert json_object(text.encode()) == json.loads(text)
