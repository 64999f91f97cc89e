"""Recovery codes: ten single-use codes shown once, stored as digests.

A code is 16 characters of the RFC 4648 base32 alphabet (80 random bits) in four
groups, ``abcd-efgh-ijkl-mnop``. 80 bits make a plain SHA-256 digest safe at rest
(no offline search of a leaked table is feasible), and the user id is hashed in so a
digest means nothing on another user's row. Input is forgiving about case, spaces
and dashes, since people type these from paper.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

COUNT = 10
_CHARS = re.compile(r"^[a-z2-7]{16}$")


def new_codes(count: int = COUNT) -> list[str]:
    codes = []
    for _ in range(count):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    return codes


def normalise(unverified_code: str) -> str | None:
    """The code's 16 characters, or None for anything that cannot be a code."""
    text = unverified_code.strip().lower().replace("-", "").replace(" ", "")
    return text if _CHARS.match(text) else None


def digest(user_id: str, code: str) -> bytes:
    """Digest of a normalised code, bound to its user."""
    return hashlib.sha256(f"{user_id}:{code}".encode()).digest()
