"""Verify authd access tokens locally: :class:`Verifier` and :class:`AsyncVerifier`.

The order of checks is deliberate. Everything that needs no key — size, the
compact structure, canonical base64url, the header — is checked first and
cheaply, so garbage never reaches a JWKS lookup (and never triggers a fetch).
The signature is checked before the payload's JSON is parsed, so an attacker's
JSON only meets the parser when the issuer signed it. Then the claims
(:class:`~authd_verifier.claims.ClaimRules`), revocation, and last the caller's
authorization requirements (scopes, MFA).

Verification choices are explicit and pinned: the algorithm must be both allowed
by the caller (default ``RS256``, ``ES256`` and ``EdDSA``, what authd signs with) and
announced by the JWKS key the token names; ``none`` and HMAC can be neither.

A token accepted twice is remembered (:mod:`authd_verifier.token_cache`,
``token_cache_size`` entries, 0 for none): its later uses skip the parsing and
the signature but not the checks that can change — the key still published,
the clock, revocation, scopes and MFA.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, ClassVar, Final, Protocol, Required, Self, TypedDict, Unpack

from .cache_policy import CachePolicy
from .claims import DEFAULT_LEEWAY_SECONDS, AnyAudience, ClaimRules, Claims
from .encoding import b64url_decode, json_object
from .errors import (
    DisallowedAlgorithm,
    InvalidSignature,
    MalformedToken,
    TokenRevoked,
    UnknownKey,
)
from .header import HeaderParser, check_algorithms
from .jwks import AsyncJWKSCache, JWKSCache, jwks_url
from .keys import VerificationKey
from .token_cache import DEFAULT_TOKEN_CACHE_SIZE, VerifiedTokens

#: Tokens longer than this are refused before any parsing. authd's tokens are
#: well under 1 KB; the cap bounds the work an unauthenticated request can cause.
DEFAULT_MAX_TOKEN_BYTES: Final = 8 * 1024

#: The default algorithm allow-list: what authd signs with (DESIGN §4). Each token
#: must also use exactly the algorithm its key announces in the JWKS, so allowing
#: all three lets authd move between them by rotation without a verifier update.
DEFAULT_ALGORITHMS: Final = ("RS256", "ES256", "EdDSA")


class KeySource(Protocol):
    """Where a :class:`Verifier` finds public keys (``JWKSCache``, ``testing.StaticJWKS``)."""

    def get_key(self, kid: str) -> VerificationKey | None:
        """The key published as ``kid``, or ``None``."""
        ...


class AsyncKeySource(Protocol):
    """Where an :class:`AsyncVerifier` finds public keys (``AsyncJWKSCache``, ...)."""

    async def get_key(self, kid: str) -> VerificationKey | None:
        """The key published as ``kid``, or ``None``."""
        ...


class RevocationCheck(Protocol):
    """Answers whether authd revoked a token (``revocation.RevocationList`` and feeds)."""

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether the token with these (verified) claims is revoked."""
        ...


class CheckOptions(TypedDict, total=False):
    """Optional keyword settings of a verifier; each defaults to the safe choice."""

    algorithms: Iterable[str]
    leeway: int
    require_scopes: Iterable[str]
    require_mfa: bool
    max_token_bytes: int
    revocations: RevocationCheck | None
    clock: Callable[[], float]
    token_cache_size: int


class VerifierOptions(CheckOptions, total=False):
    """Keyword options shared by :class:`Verifier` and :class:`AsyncVerifier`.

    ``issuer`` and ``audience`` are required: a verifier that accepts any issuer
    or any audience accepts tokens minted for someone else.
    """

    issuer: Required[str]
    audience: Required[str | Iterable[str] | AnyAudience]


_NO_SCOPES: Final = frozenset[str]()
# Membership of an int in bytes is a plain byte search; ``b"." in segment`` first
# tries to read its operand as an int and raises (and clears) a TypeError per call.
_DOT: Final = ord(".")

# ((kid, alg), signing input, signature, payload segment)
_Parsed = tuple[tuple[str, str], bytes, bytes, bytes]


class _VerifierCore:
    """Everything about verification except how keys are awaited (or not)."""

    #: What ``for_issuer`` fetches keys with; each subclass names its own flavour.
    _jwks_cache_type: ClassVar[type[JWKSCache] | type[AsyncJWKSCache]]

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Iterable[str] | AnyAudience,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: int = DEFAULT_LEEWAY_SECONDS,
        require_scopes: Iterable[str] = (),
        require_mfa: bool = False,
        max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
        revocations: RevocationCheck | None = None,
        clock: Callable[[], float] = time.time,
        token_cache_size: int = DEFAULT_TOKEN_CACHE_SIZE,
    ) -> None:
        self.rules = ClaimRules(issuer, audience, leeway, require_scopes, require_mfa)
        self.algorithms = check_algorithms(algorithms)
        self._headers = HeaderParser(self.algorithms)
        self._header_cache = self._headers.cache
        self._max_token_bytes = max_token_bytes
        self._revocations = revocations
        self._clock = clock
        self._always_authorize = self.rules.authorizes
        # Tokens seen before skip the signature; see token_cache for what a hit re-checks.
        self._verified = VerifiedTokens(
            max_entries=token_cache_size, rules=self.rules, revocations=revocations, clock=clock
        )
        self._remembered, self._recheck = self._verified.get, self._verified.recheck

    @classmethod
    def for_issuer(
        cls,
        issuer: str,
        audience: str | Iterable[str],
        *,
        policy: CachePolicy | None = None,
        allow_insecure_http: bool = False,
        **options: Unpack[CheckOptions],
    ) -> Self:
        """A verifier fetching keys from ``{issuer}/.well-known/jwks.json``."""
        cache = cls._jwks_cache_type(
            jwks_url(issuer), policy=policy, allow_insecure_http=allow_insecure_http
        )
        # Each flavour's own __init__ takes ``keys``, typed as the source it speaks.
        return cls(keys=cache, issuer=issuer, audience=audience, **options)  # type: ignore[call-arg]

    def _parse(self, token: str) -> _Parsed:
        if len(token) > self._max_token_bytes:
            raise MalformedToken("the access token is too large")
        try:
            raw = token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedToken() from None
        signing_input, _, signature_segment = raw.rpartition(b".")
        header_segment, _, payload_segment = signing_input.partition(b".")
        if not payload_segment or _DOT in payload_segment:
            raise MalformedToken("the access token is not a signed JWT")
        header = self._header_cache.get(header_segment)
        if header is None:
            header = self._headers.parse(header_segment)
        if not signature_segment:
            raise InvalidSignature("the access token is not signed")
        return header, signing_input, b64url_decode(signature_segment), payload_segment

    def _finish(
        self,
        key: VerificationKey | None,
        parsed: _Parsed,
        require_scopes: Iterable[str],
        require_mfa: bool,
    ) -> Claims:
        if key is None:
            raise UnknownKey()
        (_, alg), signing_input, signature, payload_segment = parsed
        check = key.checks.get(alg)
        if check is None:
            raise DisallowedAlgorithm()
        payload = b64url_decode(payload_segment)
        if not check(signing_input, signature):
            raise InvalidSignature()
        claims = json_object(payload)
        rules = self.rules
        rules.check(claims, self._clock())
        if self._revocations is not None and self._revocations.is_revoked(claims):
            raise TokenRevoked()
        if require_scopes or require_mfa or self._always_authorize:
            required_scopes = frozenset(require_scopes) if require_scopes else _NO_SCOPES
            rules.authorize(claims, required_scopes, require_mfa)
        return Claims(claims)


class Verifier(_VerifierCore):
    """Verifies authd access tokens in synchronous code.

    ``verify`` returns :class:`Claims` or raises a
    :class:`~authd_verifier.errors.VerificationError` subclass. Thread-safe.
    """

    _jwks_cache_type = JWKSCache

    def __init__(self, *, keys: KeySource, **options: Unpack[VerifierOptions]) -> None:
        # Each flavour declares its own key source (one awaits, one does not), so
        # the attribute is typed exactly in each rather than as a union in the core.
        self.keys: KeySource = keys
        super().__init__(**options)

    def verify(
        self, token: str, *, require_scopes: Iterable[str] = (), require_mfa: bool = False
    ) -> Claims:
        """Verify ``token`` and return its claims; raise why it is not acceptable."""
        seen = self._remembered(token)
        if seen is not None and self.keys.get_key(seen.key.kid) is seen.key:
            return self._recheck(token, seen, require_scopes, require_mfa)
        parsed = self._parse(token)
        key = self.keys.get_key(parsed[0][0])
        claims = self._finish(key, parsed, require_scopes, require_mfa)
        self._verified.remember(token, key, claims)  # type: ignore[arg-type]
        return claims

    def close(self) -> None:
        """Close the key source if it holds resources (a ``JWKSCache`` does)."""
        if isinstance(self.keys, JWKSCache):
            self.keys.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncVerifier(_VerifierCore):
    """Verifies authd access tokens in asyncio code; the twin of :class:`Verifier`.

    Only fetching keys awaits; the signature check itself takes tens of
    microseconds and runs inline.
    """

    _jwks_cache_type = AsyncJWKSCache

    def __init__(self, *, keys: AsyncKeySource, **options: Unpack[VerifierOptions]) -> None:
        # Each flavour declares its own key source (one awaits, one does not), so
        # the attribute is typed exactly in each rather than as a union in the core.
        self.keys: AsyncKeySource = keys
        super().__init__(**options)

    async def verify(
        self, token: str, *, require_scopes: Iterable[str] = (), require_mfa: bool = False
    ) -> Claims:
        """Verify ``token`` and return its claims; raise why it is not acceptable."""
        seen = self._remembered(token)
        if seen is not None and await self.keys.get_key(seen.key.kid) is seen.key:
            return self._recheck(token, seen, require_scopes, require_mfa)
        parsed = self._parse(token)
        key = await self.keys.get_key(parsed[0][0])
        claims = self._finish(key, parsed, require_scopes, require_mfa)
        self._verified.remember(token, key, claims)  # type: ignore[arg-type]
        return claims

    async def aclose(self) -> None:
        """Close the key source if it holds resources (an ``AsyncJWKSCache`` does)."""
        if isinstance(self.keys, AsyncJWKSCache):
            await self.keys.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
