"""Strict decoding of the JOSE compact serialisation: base64url and JSON.

Generic decoders are lenient in ways an attacker can use: they accept padding,
non-canonical trailing bits, characters outside the alphabet, duplicate JSON
members (where "last one wins" in one library and "first one wins" in another),
``NaN`` and ``Infinity``. Here every input has exactly one accepted spelling
(RFC 7515 §2 / §7.1 base64url without padding; RFC 8259 JSON with unique
member names, RFC 7515 §5.2 step 4), so what we verify is what every other
implementation would read.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable
from typing import Any, Final

from .errors import MalformedToken

# One translation table turns base64url into standard base64 *and* poisons every
# byte that may not appear in an unpadded base64url segment ('+', '/', '=' and
# everything else outside the alphabet) with '*', which binascii's strict mode
# rejects. So the alphabet check costs nothing beyond the translate we need anyway.
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_TO_STANDARD = bytes(
    byte
    if byte in _ALPHABET
    else ord("+")
    if byte == ord("-")
    else ord("/")
    if byte == ord("_")
    else ord("*")
    for byte in range(256)
)
# In a canonical encoding the bits of the last character that carry no data are
# zero (RFC 4648 §3.5). With 2 characters left over, only the top 2 bits of the
# last character are data; with 3 left over, the top 4; with none left over, all
# 6. One character left over is never valid. Indexed by ``len(segment) % 4``:
# (the padding that completes the last quantum, the characters that may end it).
_TAIL: Final[tuple[tuple[bytes, frozenset[int]], ...]] = (
    (b"", frozenset(_ALPHABET + b"-_")),
    (b"", frozenset()),
    (b"==", frozenset(b"AQgw")),
    (b"=", frozenset(b"AEIMQUYcgkosw048")),
)
_a2b = binascii.a2b_base64


def b64url_decode(segment: bytes) -> bytes:
    """Decode one unpadded, canonical base64url segment; anything else is malformed."""
    padding, last_allowed = _TAIL[len(segment) & 3]
    try:
        if segment[-1] in last_allowed:
            return _a2b(segment.translate(_TO_STANDARD) + padding, strict_mode=True)
    except (IndexError, binascii.Error):
        pass
    raise MalformedToken("the access token has an invalid base64url segment")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise MalformedToken("the access token has duplicate JSON members")
    return members


def _reject_constant(name: str) -> Any:
    raise MalformedToken("the access token has a non-standard JSON number")


# The decoders' scanners (what ``JSONDecoder.raw_decode`` calls, the C one in
# CPython) are called directly: ``json.loads`` would build a decoder per call and
# ``decode`` / ``raw_decode`` add Python frames, a measurable share of one
# token verification. A scan of one document is complete and self-contained.
# Two of them: the plain one builds dicts in C; the strict one hands every
# object's member list to ``_unique_members``, a Python call per object (about
# a third of a microsecond per token).
_SCAN_PLAIN: Final[Callable[[str, int], tuple[Any, int]]] = vars(
    json.JSONDecoder(parse_constant=_reject_constant)
)["scan_once"]
_SCAN_STRICT: Final[Callable[[str, int], tuple[Any, int]]] = vars(
    json.JSONDecoder(object_pairs_hook=_unique_members, parse_constant=_reject_constant)
)["scan_once"]


def json_object(data: bytes) -> dict[str, Any]:
    """Parse ``data`` as one UTF-8 JSON object with unique member names.

    Leading or trailing whitespace is refused: authd never emits it, and a
    signed document has no reason to contain bytes that carry no meaning.

    The plain scan settles uniqueness when the text holds exactly one comma
    fewer than the object has members: ``n`` members written take at least
    ``n - 1`` commas at the top level, so no comma is left for a second
    member of one name, nor for a nested object of two members. Any other
    count (nested lists or objects, commas inside strings, a duplicate) is
    read again by the strict scan. An access token's claims (flat, one
    ``scope`` string) take the first path.
    """
    try:
        text = data.decode("utf-8")
        value, end = _SCAN_PLAIN(text, 0)
        if type(value) is dict and text.count(",") + 1 != len(value):
            value, end = _SCAN_STRICT(text, 0)
    except (UnicodeDecodeError, ValueError, RecursionError, StopIteration):
        raise MalformedToken("the access token has an invalid JSON segment") from None
    if end != len(text) or type(value) is not dict:
        raise MalformedToken("the access token has an invalid JSON segment")
    return value


def b64url_encode(data: bytes) -> str:
    """Encode ``data`` as unpadded base64url (used by :mod:`authd_verifier.testing`)."""
    return (
        binascii.b2a_base64(data, newline=False)
        .rstrip(b"=")
        .translate(bytes.maketrans(b"+/", b"-_"))
        .decode("ascii")
    )
