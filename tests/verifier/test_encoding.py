"""Strict base64url and JSON: every accepted input has exactly one spelling."""

from __future__ import annotations

import base64

import pytest
from authd_verifier import MalformedToken
from authd_verifier.encoding import b64url_decode, b64url_encode, json_object


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
    [b"A", b"AAAAA", b"AR", b"AAF", b"AQ==", b"AQ=", b"A+Q", b"A/Q", b"AQ\n", b"A Q", b"\xffQ"],
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
    ],
)
def test_non_canonical_or_foreign_segments_are_malformed(segment: bytes) -> None:
    """Lengths that cannot occur, set unused bits, padding and foreign bytes are refused."""
    with pytest.raises(MalformedToken):
        b64url_decode(segment)


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
