"""RFC 8693 token exchange, delegation only (DESIGN §3, §4; docs/service-to-service.md).

A service that received a token (the *subject token*) trades it for one addressed
to the next service down the line: same ``sub``, an audience its client is allowed
to exchange for (``Client.exchange_audiences``, none by default), a scope no wider
than the subject token's nor than what the caller itself may request, an ``exp`` no
later than the subject token's, and the caller recorded as the actor (``act``,
§4.1), nesting the subject token's own ``act``. The subject token's ``sid`` is
carried over, so logging the user out (revoking the session) revokes every token
derived from the session as well.

Impersonation (an exchanged token without ``act``) and ``actor_token`` are not
offered. Every check runs before anything is issued; a refusal changes nothing
and is audited, as is every exchange.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from service.apikeys.exchange import Issuer
from service.apikeys.keys import SCOPE_TOKEN
from service.apikeys.models import Client
from service.audit.log import AuditLog
from service.dpop.errors import DPoPRequired
from service.errors import (
    AuthdError,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    InvalidToken,
    TemporarilyUnavailable,
    UnauthorizedClient,
)
from service.observability.metrics import TOKEN_EXCHANGES

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a URN
# Claims describing the subject's own authentication, carried to the new token so
# that a service down the chain can still demand MFA (RFC 8176, RFC 9470).
_CARRIED = ("sid", "amr", "acr")
# Deeper delegation chains are refused: the verifier library refuses them too.
MAX_ACTOR_DEPTH = 8
MIN_TTL = 1
# A refused request's audience is the caller's input: audited, but bounded.
MAX_AUDIT_AUDIENCE = 256


class SubjectTokenVerifier(Protocol):
    """``runtime.keys``: a token's claims after the strict checks, or InvalidToken."""

    def verify(self, unverified_token: str) -> dict[str, Any]: ...


class RevocationCheck(Protocol):
    async def is_revoked(self, claims: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True, slots=True)
class DelegationRequest:
    """One exchange, the caller already authenticated (its API key's scopes are
    what it may request at all)."""

    caller: Client
    caller_scopes: frozenset[str]
    unverified_subject_token: str
    audience: str | None
    scope: str | None
    ip: str
    dpop_jkt: str | None = None


class TokenExchange:
    def __init__(
        self, keys: SubjectTokenVerifier | None, revocations: RevocationCheck,
        issuer: Issuer | None, audit: AuditLog,
    ) -> None:
        self._keys = keys
        self._revocations = revocations
        self._issuer = issuer
        self._audit = audit

    async def exchange(self, request: DelegationRequest) -> bytes:
        """The RFC 8693 §2.2.1 response body, or an AuthdError (audited either way)."""
        try:
            body, details = await self._exchange(request)
        except AuthdError as refused:
            TOKEN_EXCHANGES.labels(refused.code).inc()
            self._audit.record("token.exchange", "failure", ip=request.ip,
                               actor=request.caller.id,
                               audience=(request.audience or "")[:MAX_AUDIT_AUDIENCE],
                               error=refused.code)
            raise
        TOKEN_EXCHANGES.labels("issued").inc()
        self._audit.record("token.exchange", "ok", ip=request.ip, **details)
        return body

    async def _exchange(self, request: DelegationRequest) -> tuple[bytes, dict[str, Any]]:
        caller = request.caller
        if caller.dpop_required and request.dpop_jkt is None:
            raise DPoPRequired("this client must send a DPoP proof")
        if not caller.exchange_audiences:
            raise UnauthorizedClient("this client may not exchange tokens")
        if not request.audience:
            raise InvalidRequest("audience or resource is required")
        if request.audience not in caller.exchange_audiences:
            raise InvalidTarget("this client may not exchange tokens for that audience")
        subject = await self._subject_claims(request.unverified_subject_token)
        bound = _bound_key(subject)
        if bound is not None and bound != request.dpop_jkt:
            raise InvalidGrant("the subject token is DPoP-bound: send a proof by its key")
        actors = _actor_chain(subject)
        if len(actors) >= MAX_ACTOR_DEPTH:
            raise InvalidGrant("the subject token's delegation chain is too long")
        subject_scopes = frozenset(str(subject.get("scope", "")).split())
        scope = _narrow(subject_scopes & request.caller_scopes & caller.scopes, request.scope)
        ttl = min(caller.token_ttl, int(subject["exp"]) - time.time())
        if ttl < MIN_TTL:
            raise InvalidGrant("the subject token is about to expire")
        act: dict[str, Any] = {"sub": caller.id}
        if "act" in subject:
            act["act"] = subject["act"]
        extra: dict[str, Any] = {"act": act}
        extra.update({name: subject[name] for name in _CARRIED if name in subject})
        if request.dpop_jkt is not None:
            extra["cnf"] = {"jkt": request.dpop_jkt}
        if self._issuer is None:
            raise TemporarilyUnavailable("no signing key is available")
        issued = await self._issuer.issue(
            subject=str(subject["sub"]), audience=request.audience, scope=scope,
            client_id=caller.id, ttl=ttl, extra=extra,
        )
        body = {
            "access_token": issued.token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "DPoP" if request.dpop_jkt is not None else "Bearer",
            "expires_in": issued.expires_at - issued.issued_at,
            "scope": scope,
        }
        details = {"subject": str(subject["sub"]), "actor": caller.id,
                   "audience": request.audience, "scope": scope,
                   "actors": [caller.id, *actors], "dpop": request.dpop_jkt is not None}
        return json.dumps(body, separators=(",", ":")).encode(), details

    async def _subject_claims(self, unverified_token: str) -> dict[str, Any]:
        """The subject token's claims after the checks every authd token gets
        (signature by a published key, ``typ``, ``iss``, times), not revoked."""
        if self._keys is None:
            raise TemporarilyUnavailable("no signing key is loaded")
        try:
            claims = self._keys.verify(unverified_token)
        except InvalidToken as refused:
            raise InvalidGrant(f"subject_token: {refused.description}") from None
        if await self._revocations.is_revoked(claims):
            raise InvalidGrant("subject_token: the token has been revoked")
        return claims


def _bound_key(claims: Mapping[str, Any]) -> str | None:
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str):
        raise InvalidGrant("the subject token's cnf claim is not understood")
    return jkt


def _actor_chain(claims: Mapping[str, Any]) -> list[str]:
    actors: list[str] = []
    act = claims.get("act")
    while act is not None and len(actors) <= MAX_ACTOR_DEPTH:
        if not isinstance(act, dict) or not isinstance(act.get("sub"), str):
            raise InvalidGrant("the subject token's act claim is malformed")
        actors.append(act["sub"])
        act = act.get("act")
    return actors


def _narrow(allowed: frozenset[str], requested: str | None) -> str:
    """RFC 8693 §2.1 / RFC 6749 §3.3: the scope can only narrow; none asked means all
    that may be delegated."""
    if requested is None or not requested.strip():
        return " ".join(sorted(allowed))
    wanted = set()
    for token in requested.split(" "):
        if not token:
            continue
        if not SCOPE_TOKEN.fullmatch(token):
            raise InvalidScope("scope holds an invalid scope token")
        wanted.add(token)
    if not wanted <= allowed:
        raise InvalidScope(
            "the requested scope exceeds the subject token's scope or the client's"
        )
    return " ".join(sorted(wanted))
