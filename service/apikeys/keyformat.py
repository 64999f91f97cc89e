"""The API-key format of DESIGN §4: ``<prefix>_<body><checksum>``.

The body is 30 base62 characters from ``secrets`` (≈178 bits, above the 160 the design
asks for); the checksum is the CRC32 of ``<prefix>_<body>`` in six base62 characters.
The checksum is not a security measure: it lets a secret scanner recognise a leaked
key and lets the service refuse a typo or garbage without a storage lookup. Keys are
stored only as their SHA-256 digest (high-entropy secrets need no slow hash, DESIGN §2)
plus a display form that shows the first and last four characters of the body.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import zlib

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
BODY_LENGTH = 30
CHECKSUM_LENGTH = 6
_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def checksum(head: str) -> str:
    """Six base62 characters encoding CRC32(head); 62**6 > 2**32, so no collisions."""
    return _base62(zlib.crc32(head.encode("ascii")), CHECKSUM_LENGTH)


def generate(prefix: str) -> str:
    """A new API key; the only moment its plaintext exists on the server."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    head = f"{prefix}_{body}"
    return head + checksum(head)


def new_id(prefix: str, length: int = 16) -> str:
    """Public identifiers: ``cl_…`` for clients, ``key_…`` for keys."""
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))


class KeyShape:
    """Checks that a presented value can be a key of this deployment, without I/O."""

    __slots__ = ("_pattern", "_prefix_length", "length")

    def __init__(self, prefix: str) -> None:
        self._prefix_length = len(prefix) + 1
        self.length = self._prefix_length + BODY_LENGTH + CHECKSUM_LENGTH
        self._pattern = re.compile(
            f"{re.escape(prefix)}_[0-9A-Za-z]{{{BODY_LENGTH + CHECKSUM_LENGTH}}}"
        )

    def well_formed(self, unverified_key: str) -> bool:
        if len(unverified_key) != self.length or not self._pattern.fullmatch(unverified_key):
            return False
        head = unverified_key[: -CHECKSUM_LENGTH]
        return secrets.compare_digest(checksum(head), unverified_key[-CHECKSUM_LENGTH:])


def digest(key: str) -> bytes:
    """SHA-256 of the key. Any presented string has one (its cache lookup comes before
    the shape check): a key is ASCII, whose UTF-8 is the same bytes."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def display(key: str, prefix: str) -> str:
    """``ak_live_AbCd…wxyz``: enough to tell keys apart in a listing, useless to use."""
    start = len(prefix) + 1
    return f"{key[: start + 4]}…{key[-4:]}"
