"""RFC 7662 introspection and RFC 7009 revocation of any token authd issued.

Access tokens are JWTs checked by signature (``runtime.keys``) and then against the
denylist; refresh tokens (``rt_…``) belong to the sessions domain, reached through
the small ``RefreshTokenAuthority`` protocol so that this module never touches their
storage.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from service.errors import InvalidToken
from service.revocation.service import RevocationService

REFRESH_PREFIX = "rt_"
MAX_TOKEN_CHARS = 8192
INACTIVE: dict[str, Any] = {"active": False}
# Claims an introspection answer repeats from a valid access token (RFC 7662 §2.2).
_ECHOED = ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "sid",
           "act", "cnf")


class TokenVerifier(Protocol):
    def verify(self, unverified_token: str) -> dict[str, Any]: ...


class RefreshTokenAuthority(Protocol):
    async def introspect(self, unverified_token: str) -> dict[str, Any] | None:
        """RFC 7662 members for a live refresh token, or None when it is not live."""
        ...

    async def revoke(self, unverified_token: str) -> bool:
        """Revoke the token's whole family; False when the token is unknown."""
        ...


class TokenInspector:
    def __init__(
        self,
        keys: TokenVerifier | None,
        revocations: RevocationService,
        refresh: RefreshTokenAuthority | None = None,
    ) -> None:
        self._keys = keys
        self._revocations = revocations
        self.refresh = refresh

    async def _verified_access_claims(self, unverified_token: str) -> dict[str, Any] | None:
        if self._keys is None:
            return None
        try:
            return self._keys.verify(unverified_token)
        except InvalidToken:
            return None

    async def introspect(self, unverified_token: str) -> dict[str, Any]:
        """RFC 7662 §2.2: ``active: false`` for anything expired, revoked by any kind,
        malformed or not ours; otherwise the token's claims. ``token_type_hint`` is
        not needed: the two token kinds cannot be confused by shape."""
        if not unverified_token or len(unverified_token) > MAX_TOKEN_CHARS:
            return dict(INACTIVE)
        if unverified_token.startswith(REFRESH_PREFIX):
            if self.refresh is None:
                return dict(INACTIVE)
            described = await self.refresh.introspect(unverified_token)
            return dict(INACTIVE) if described is None else {"active": True, **described}
        claims = await self._verified_access_claims(unverified_token)
        if claims is None or await self._revocations.is_revoked(claims):
            return dict(INACTIVE)
        # RFC 9449 §6.2: a DPoP-bound token is introspected with its cnf.jkt.
        answer: dict[str, Any] = {"active": True,
                                  "token_type": "DPoP" if "cnf" in claims else "Bearer"}
        answer.update({name: claims[name] for name in _ECHOED if name in claims})
        return answer

    async def revoke(self, unverified_token: str) -> str | None:
        """RFC 7009 §2.1: revoke a refresh token (its whole family and the family's
        access tokens, via its ``sid``) or one access token (its ``jti``). Unknown,
        invalid and expired tokens are not an error (§2.2: the client's goal is met).
        Returns the kind revoked, or None."""
        if not unverified_token or len(unverified_token) > MAX_TOKEN_CHARS:
            return None
        if unverified_token.startswith(REFRESH_PREFIX):
            if self.refresh is not None and await self.refresh.revoke(unverified_token):
                return "refresh_token"
            return None
        claims = await self._verified_access_claims(unverified_token)
        if claims is None:
            return None
        jti, exp = claims.get("jti"), claims.get("exp")
        if not isinstance(jti, str) or not isinstance(exp, int | float) or exp < time.time():
            return None
        await self._revocations.revoke_token(jti, float(exp))
        return "access_token"
