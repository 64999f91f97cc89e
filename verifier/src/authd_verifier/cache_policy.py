"""How long a fetched JWKS is trusted, and what a fetch result turns into.

This is the I/O-free half of the JWKS cache, shared by the sync and the async
cache: the HTTP caching rules (RFC 9111 ``max-age`` / ``Age``, RFC 9110 ETag
revalidation) and the operator's bounds on them. authd's rotation (DESIGN §5)
relies on verifiers honouring ``max-age``: a ``next`` key is published at least
one cache lifetime before it signs, so a verifier that refreshes in time never
meets an unknown ``kid``. The floor and ceiling only protect against a
misconfigured or hostile ``max-age`` (0 would mean a fetch per request,
a year would mean never seeing a revoked key go).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from .keys import VerificationKey, parse_jwks

_MAX_AGE: Final = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE: Final = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$|=)", re.IGNORECASE)

#: A JWKS larger than this is refused: authd publishes a handful of keys.
MAX_JWKS_BYTES: Final = 512 * 1024


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Bounds on JWKS caching; every duration is in seconds.

    - ``min_ttl`` / ``max_ttl``: the floor and ceiling applied to ``max-age``.
    - ``default_ttl``: used when the response carries no ``max-age``.
    - ``refresh_ahead``: the fraction of the lifetime, before expiry, at which a
      background refresh starts, so requests never wait for a fetch.
    - ``stale_if_error``: how long past expiry cached keys keep serving while
      authd cannot be reached (RFC 5861 vocabulary). Past it, verification fails
      with :class:`~authd_verifier.errors.KeySetUnavailable`. Tokens live 15
      minutes by default, so serving much longer than that buys little.
    - ``refetch_interval``: the minimum time between two fetches of any kind —
      an unknown ``kid``, a background refresh or a retry after a failure — so
      a flood of forged ``kid`` values cannot become a flood of requests to authd.
    """

    min_ttl: float = 30.0
    max_ttl: float = 86_400.0
    default_ttl: float = 300.0
    refresh_ahead: float = 0.2
    stale_if_error: float = 3_600.0
    refetch_interval: float = 10.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_ttl <= self.default_ttl <= self.max_ttl:
            raise ValueError("need 0 <= min_ttl <= default_ttl <= max_ttl")
        if not 0 <= self.refresh_ahead < 1:
            raise ValueError("refresh_ahead is a fraction in [0, 1)")
        if self.stale_if_error < 0 or self.refetch_interval < 0:
            raise ValueError("stale_if_error and refetch_interval must not be negative")

    def lifetime(self, headers: Mapping[str, str]) -> float:
        """The freshness lifetime of a response, clamped to this policy."""
        cache_control = headers.get("cache-control", "")
        max_age = _MAX_AGE.search(cache_control)
        if _NO_CACHE.search(cache_control):
            ttl = 0.0
        elif max_age is not None:
            ttl = float(max_age.group(1)) - _age(headers)
        else:
            ttl = self.default_ttl
        return min(max(ttl, self.min_ttl), self.max_ttl)


def _age(headers: Mapping[str, str]) -> float:
    age = headers.get("age", "0").strip()
    return float(age) if age.isdigit() and len(age) <= 10 else 0.0


@dataclass(frozen=True, slots=True)
class KeySetSnapshot:
    """One fetched key set and its timers, replaced as a whole after each fetch.

    Readers take one reference and use it; they never see half an update.
    """

    keys: Mapping[str, VerificationKey] = field(default_factory=dict)
    etag: str | None = None
    refresh_at: float = -math.inf
    expires_at: float = -math.inf
    usable_until: float = -math.inf

    @property
    def has_keys(self) -> bool:
        """Whether a JWKS has ever been fetched successfully (it may be empty)."""
        return self.usable_until > -math.inf

    def request_headers(self) -> dict[str, str]:
        """Headers for the next fetch: revalidate with ``If-None-Match`` when we can."""
        headers = {"Accept": "application/jwk-set+json, application/json"}
        if self.etag is not None and self.has_keys:
            headers["If-None-Match"] = self.etag
        return headers

    def after_response(
        self, policy: CachePolicy, status: int, headers: Mapping[str, str], body: bytes, now: float
    ) -> KeySetSnapshot:
        """The snapshot a response leads to; ``ValueError`` if it carries no usable JWKS."""
        if status == 304 and self.has_keys:
            keys: Mapping[str, VerificationKey] = self.keys
        elif status == 200:
            keys = parse_jwks(body)
        else:
            raise ValueError(f"unexpected HTTP status {status}")
        ttl = policy.lifetime(headers)
        return KeySetSnapshot(
            keys=keys,
            etag=headers.get("etag", self.etag if status == 304 else None),
            refresh_at=now + ttl * (1.0 - policy.refresh_ahead),
            expires_at=now + ttl,
            usable_until=now + ttl + policy.stale_if_error,
        )
