"""TOTP (RFC 6238) on top of pyotp: 30 s steps, 6 digits, SHA-1 (what every
authenticator app implements), one step of drift either way (§5.2).

The one thing pyotp does not give is *which* step a code matched; replay protection
needs it (the step of the last accepted code is stored and a code is accepted only
for a later step), so the candidate steps are compared here, in constant time.
"""

from __future__ import annotations

import hmac
import re

import pyotp

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
_CODE = re.compile(r"^[0-9]{6}$")


def new_secret() -> str:
    """160 random bits, base32 (RFC 4226 §4 recommends 160)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads from a QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer)


def step_at(now: float) -> int:
    return int(now // STEP_SECONDS)


def well_formed(unverified_code: str) -> bool:
    return bool(_CODE.match(unverified_code))


def matching_step(secret: str, unverified_code: str, now: float) -> int | None:
    """The latest step within the drift window whose code equals the given one."""
    if not well_formed(unverified_code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = step_at(now)
    matched: int | None = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), unverified_code):
            matched = step
    return matched
