"""Verify authd access tokens locally, in any Python service.

Typical use in an asyncio service::

    from authd_verifier import AsyncVerifier

    verifier = AsyncVerifier.for_issuer("https://authd.example.com", audience="orders")
    claims = await verifier.verify(token, require_scopes={"orders:read"})

Keys come from authd's JWKS (cached, refreshed in the background, rate-limited
refetch on an unknown ``kid``); see :mod:`authd_verifier.jwks`. Every refusal
is a :class:`VerificationError` subclass with a message that is safe to show.
The ASGI middleware lives in :mod:`authd_verifier.middleware`, test helpers in
:mod:`authd_verifier.testing`; neither is imported here.
"""

from .cache_policy import CachePolicy
from .claims import DEFAULT_LEEWAY_SECONDS, Claims
from .delegation import DelegationPolicy, DelegationRefused
from .dpop import (
    DPoPBindingMismatch,
    DPoPVerifier,
    InvalidDPoPProof,
    MemoryReplayCache,
    jwk_thumbprint,
)
from .errors import (
    DisallowedAlgorithm,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidSignature,
    KeySetUnavailable,
    MalformedToken,
    TokenExpired,
    TokenNotYetValid,
    TokenRevoked,
    UnknownKey,
    VerificationError,
    WrongAudience,
    WrongIssuer,
    WrongType,
)
from .jwks import AsyncJWKSCache, JWKSCache, jwks_url
from .keys import VerificationKey
from .revocation import AsyncRevocationFeed, RevocationFeed, RevocationList
from .verify import DEFAULT_MAX_TOKEN_BYTES, AsyncVerifier, Verifier

__all__ = [
    "DEFAULT_LEEWAY_SECONDS",
    "DEFAULT_MAX_TOKEN_BYTES",
    "AsyncJWKSCache",
    "AsyncRevocationFeed",
    "AsyncVerifier",
    "CachePolicy",
    "Claims",
    "DPoPBindingMismatch",
    "DPoPVerifier",
    "DelegationPolicy",
    "DelegationRefused",
    "DisallowedAlgorithm",
    "InsufficientScope",
    "InsufficientUserAuthentication",
    "InvalidDPoPProof",
    "InvalidSignature",
    "JWKSCache",
    "KeySetUnavailable",
    "MalformedToken",
    "MemoryReplayCache",
    "RevocationFeed",
    "RevocationList",
    "TokenExpired",
    "TokenNotYetValid",
    "TokenRevoked",
    "UnknownKey",
    "VerificationError",
    "VerificationKey",
    "Verifier",
    "WrongAudience",
    "WrongIssuer",
    "WrongType",
    "jwk_thumbprint",
    "jwks_url",
]
