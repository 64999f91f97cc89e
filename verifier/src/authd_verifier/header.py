"""The JOSE header of an authd access token, checked strictly and remembered.

authd writes exactly ``{"alg": ..., "typ": "at+jwt", "kid": ...}``. Anything
more is refused rather than ignored: ``jku``, ``x5u``, ``jwk`` and ``x5c`` offer
the verifier a key chosen by whoever wrote the token (RFC 8725 §3.10 — we never
fetch or use them, and a token that carries them is not one authd issued);
``crit`` demands we understand an extension (RFC 7515 §4.1.11) we do not; other
members (``cty``, ``zip``, ``b64``) change how the payload is read.

All tokens signed by one key share one header, byte for byte. The parsed result
is therefore cached by the raw segment, so a verifier parses each header once
rather than once per token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from .encoding import b64url_decode, json_object
from .errors import DisallowedAlgorithm, MalformedToken, WrongType
from .keys import KID_PATTERN, SUPPORTED_ALGORITHMS

#: The members authd puts in every access token header.
ISSUED_HEADER_MEMBERS: Final = frozenset({"alg", "typ", "kid"})

#: Members accepted but never used: certificate thumbprints some issuers add next
#: to ``kid``. They name a key, never supply one, and keys are selected by ``kid``.
HARMLESS_HEADER_MEMBERS: Final = frozenset({"x5t", "x5t#S256"})

_KEY_SUPPLYING_MEMBERS: Final = frozenset({"jku", "x5u", "jwk", "x5c"})

#: RFC 9068 §2.1 / §4: ``typ`` is ``at+jwt``; media types compare case-insensitively
#: and the ``application/`` prefix may be present (RFC 7515 §4.1.9).
ACCESS_TOKEN_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})

_CACHE_LIMIT: Final = 256


def check_algorithms(algorithms: Iterable[str]) -> frozenset[str]:
    """Validate a caller's algorithm allow-list; ``none`` and HMAC are never allowed."""
    allowed = frozenset(algorithms)
    if not allowed:
        raise ValueError("at least one algorithm must be allowed")
    unsupported = allowed - SUPPORTED_ALGORITHMS
    if unsupported:
        raise ValueError(
            f"unsupported algorithms {sorted(unsupported)}: only asymmetric algorithms "
            f"{sorted(SUPPORTED_ALGORITHMS)} can verify authd tokens"
        )
    return allowed


class HeaderParser:
    """Parses header segments for one algorithm allow-list, caching valid results."""

    __slots__ = ("_allowed", "cache")

    def __init__(self, allowed_algorithms: frozenset[str]) -> None:
        self._allowed = allowed_algorithms
        #: Raw header segment -> ``(kid, alg)`` of headers that passed every check;
        #: callers on the hot path may look here before calling :meth:`parse`.
        self.cache: dict[bytes, tuple[str, str]] = {}

    def parse(self, segment: bytes) -> tuple[str, str]:
        """Return ``(kid, alg)`` of a header segment, or raise why it is unacceptable."""
        cached = self.cache.get(segment)
        if cached is not None:
            return cached
        unverified_header = json_object(b64url_decode(segment))
        members = unverified_header.keys()
        if members & _KEY_SUPPLYING_MEMBERS:
            raise MalformedToken("the access token header supplies its own key")
        if "crit" in members:
            raise MalformedToken("the access token header has critical extensions")
        if not members <= ISSUED_HEADER_MEMBERS | HARMLESS_HEADER_MEMBERS:
            raise MalformedToken("the access token header has unexpected members")
        typ = unverified_header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise WrongType()
        alg = unverified_header.get("alg")
        if not isinstance(alg, str):
            raise MalformedToken("the access token header has no algorithm")
        if alg not in self._allowed:
            raise DisallowedAlgorithm()
        kid = unverified_header.get("kid")
        if not isinstance(kid, str) or KID_PATTERN.fullmatch(kid) is None:
            raise MalformedToken("the access token header has a missing or invalid kid")
        if len(self.cache) >= _CACHE_LIMIT:
            # Valid headers are few (one per published key); a full cache means
            # someone is sending many distinct ones. Start over rather than evict.
            self.cache.clear()
        result = (kid, alg)
        self.cache[segment] = result
        return result
