"""Server-provided DPoP nonces (RFC 9449 §8), stateless and shared by every replica.

A nonce is the current time window sealed under the KEK (AES-256-GCM, associated
data ``dpop-nonce``): any replica can check it without storage, nobody without the
KEK can forge one, and it stops being accepted two windows later.
"""

from __future__ import annotations

import base64
import binascii
import time

from service.signing.kek import Kek, SealError

WINDOW = 120.0
_ASSOCIATED = "dpop-nonce"


class NonceSource:
    def __init__(self, kek: Kek, window: float = WINDOW) -> None:
        self._kek = kek
        self._window = window
        self._current: tuple[int, str] | None = None

    def _bucket(self) -> int:
        return int(time.time() // self._window)

    def current(self) -> str:
        bucket = self._bucket()
        if self._current is None or self._current[0] != bucket:
            sealed = self._kek.seal(str(bucket).encode(), _ASSOCIATED)
            self._current = (bucket, base64.urlsafe_b64encode(sealed).rstrip(b"=").decode())
        return self._current[1]

    def valid(self, unverified_nonce: str | None) -> bool:
        """The nonce of this window or the one before."""
        if not unverified_nonce or len(unverified_nonce) > 200:
            return False
        try:
            sealed = base64.urlsafe_b64decode(unverified_nonce + "=" * (-len(unverified_nonce) % 4))
            bucket = int(self._kek.open(sealed, _ASSOCIATED).decode())
        except (binascii.Error, ValueError, SealError, UnicodeDecodeError):
            return False
        return self._bucket() - 1 <= bucket <= self._bucket()
