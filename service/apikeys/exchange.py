"""The exchange of an API key for a short-lived access token (DESIGN §3, §4, §7).

Both token endpoints end here: ``POST /v1/token`` (the key in a header) and
``POST /oauth/token`` with ``grant_type=client_credentials`` (RFC 6749 §4.4, where the
client secret *is* one of the client's API keys). The order of checks is the order of
cost: the key's shape and checksum (no I/O), the cached record (no I/O when warm), the
caller address's failed-attempt budget (local; it only ever declines a lookup or a
failure, never a key that verifies), the key's own rate limit, then scope and
audience, then the one RSA signature. Nothing here writes to
storage on the request path: last use and audit are batched (``usage.py``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from service.apikeys.errors import LookupDeclined
from service.apikeys.keys import SCOPE_TOKEN, ApiKeyService
from service.apikeys.models import VerifiedKey
from service.audit.log import AuditLog
from service.config import Settings
from service.dpop.errors import DPoPRequired
from service.errors import (
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    RateLimited,
    TemporarilyUnavailable,
)
from service.observability.metrics import RATE_LIMITED
from service.ratelimit import FAILED_API_KEY_LIMIT, RateLimiter

API_KEY_LIMIT = "api_key"
_BEARER = b'","token_type":"Bearer","expires_in":'
_DPOP = b'","token_type":"DPoP","expires_in":'  # RFC 9449 §5


class IssuedTokenLike(Protocol):
    @property
    def token(self) -> str: ...

    @property
    def encoded(self) -> bytes: ...

    @property
    def issued_at(self) -> int: ...

    @property
    def expires_at(self) -> int: ...


class Issuer(Protocol):
    """What the exchange needs of ``runtime.issuer`` (service/signing/issuer.py)."""

    async def issue(
        self, *, subject: str, audience: str, scope: str, client_id: str, ttl: float,
        extra: Mapping[str, Any] | None = None,
    ) -> IssuedTokenLike: ...


class SourceMonitor(Protocol):
    """The anomaly domain's hook (service/anomaly/monitor.py): notes where a key is
    used from and raises InvalidClient when the policy refuses that source."""

    async def check(self, key_id: str, client_id: str, ip: str) -> None: ...


@dataclass(slots=True)  # built per request: frozen costs ~2 µs of object.__setattr__
class ExchangeRequest:
    """One token request, as read from HTTP. ``client_id`` is set by the OAuth form:
    the key must then belong to that client (RFC 6749 §2.3.1)."""

    unverified_key: str
    grant: str
    ip: str
    scope: str | None = None
    audience: str | None = None
    client_id: str | None = None
    # RFC 9449: the DPoP proof key's thumbprint; the token is then bound to it.
    dpop_jkt: str | None = None


class Exchange:
    def __init__(
        self,
        settings: Settings,
        apikeys: ApiKeyService,
        issuer: Issuer | None,
        limiter: RateLimiter,
        audit: AuditLog,
    ) -> None:
        self._apikeys = apikeys
        self._issuer = issuer
        self._limiter = limiter
        self._audit = audit
        self._failed_rate = settings.failed_api_key_rate
        self._default_rate = settings.api_key_default_rate
        self.monitor: SourceMonitor | None = None

    async def exchange(self, request: ExchangeRequest) -> bytes:
        """The RFC 6749 §5.1 response body, or an AuthdError."""
        verified = await self.authenticate(
            request.unverified_key, ip=request.ip, grant=request.grant,
            client_id=request.client_id,
        )
        await self.admit(verified, ip=request.ip, grant=request.grant)
        key, client = verified.key, verified.client
        scope = _narrow_scope(verified.granted, request.scope)
        audience = _audience(client.audiences, request.audience)
        if self._issuer is None:
            raise TemporarilyUnavailable("no signing key is available")
        jkt = request.dpop_jkt
        if jkt is None and client.dpop_required:
            raise DPoPRequired("this client must send a DPoP proof")
        issued = await self._issuer.issue(
            subject=client.id, audience=audience, scope=scope, client_id=client.id,
            ttl=client.token_ttl, extra=None if jkt is None else {"cnf": {"jkt": jkt}},
        )
        self._apikeys.usage.exchanged(key.id, client.id, request.grant, request.ip, time.time())
        # Every part is JSON-safe as is: a JWS compact string is base64url and dots,
        # and RFC 6749 §3.3 scope tokens exclude the quote and the backslash.
        return b"".join((
            b'{"access_token":"', issued.encoded,
            _BEARER if jkt is None else _DPOP,
            str(issued.expires_at - issued.issued_at).encode(),
            b',"scope":"', scope.encode(), b'"}',
        ))

    async def admit(self, verified: VerifiedKey, *, ip: str, grant: str) -> None:
        """What every grant that issues a token on an API key's authority runs once the
        key is authenticated (client_credentials, /v1/token, token exchange): the key's
        allowed sources (the anomaly policy) and the key's own rate limit."""
        key, client = verified.key, verified.client
        if self.monitor is not None:
            try:
                await self.monitor.check(key.id, client.id, ip)
            except InvalidClient as exc:
                await self.refused(ip, grant, exc.code, "source_not_allowed")
                raise
        retry = await self._limiter.hit(API_KEY_LIMIT, key.id, key.rate or self._default_rate)
        if retry is not None:
            raise RateLimited(retry)

    async def authenticate(
        self, unverified_key: str, *, ip: str, grant: str, client_id: str | None = None
    ) -> VerifiedKey:
        """Client authentication by API key (token endpoints, ``/oauth/revoke``,
        ``/oauth/introspect``). With ``client_id`` the key must belong to that client
        (RFC 6749 §2.3.1).

        The caller's failed-attempt budget (DESIGN §2) never refuses a key that
        verifies: an address over it is refused (429) only an attempt that would need
        the store lookup of a key this replica neither caches nor knows to exist, or
        one that fails. Under budget, a failure spends it and is audited."""
        wait = self._limiter.over(FAILED_API_KEY_LIMIT, ip, self._failed_rate)
        try:
            verified = await self._apikeys.verify(unverified_key, unknown_lookup=wait is None)
            if client_id is not None and client_id != verified.client.id:
                raise InvalidClient("the client secret does not belong to client_id")
        except LookupDeclined:
            raise self._over_budget(wait) from None
        except InvalidClient as exc:
            if wait is not None:
                raise self._over_budget(wait) from None
            await self.refused(ip, grant, exc.code, type(exc).__name__)
            raise
        return verified

    @staticmethod
    def _over_budget(wait: float | None) -> RateLimited:
        RATE_LIMITED.labels(FAILED_API_KEY_LIMIT).inc()
        return RateLimited(wait or 1.0)

    async def refused(self, ip: str, grant: str, error: str, reason: str) -> None:
        """Count a failed authentication against the caller's address and audit it;
        the failure that spends the budget is audited as such, once a window."""
        await self._limiter.hit(FAILED_API_KEY_LIMIT, ip, self._failed_rate)
        self._audit.record("apikey.exchange", "failure", ip=ip, grant=grant, error=error,
                           reason=reason)
        if self._limiter.over(FAILED_API_KEY_LIMIT, ip, self._failed_rate) is not None:
            self._audit.record("ratelimit.exhausted", "failure", ip=ip,
                               limit=FAILED_API_KEY_LIMIT, grant=grant)


def _narrow_scope(granted: frozenset[str], requested: str | None) -> str:
    """RFC 6749 §3.3: no scope asks for everything the key holds; more is refused.

    A client asks for the same scope with the same key on every request, so the
    answers are remembered (bounded in number and length; refusals are recomputed,
    they are rare)."""
    known = _NARROWED.get((granted, requested))
    if known is not None:
        return known
    narrowed = _narrowed(granted, requested)
    if requested is not None and len(requested) > _NARROWED_LENGTH:
        return narrowed
    if len(_NARROWED) >= _NARROWED_MAX:
        _NARROWED.clear()
    _NARROWED[(granted, requested)] = narrowed
    return narrowed


_NARROWED: dict[tuple[frozenset[str], str | None], str] = {}
_NARROWED_MAX = 4096
_NARROWED_LENGTH = 256


def _narrowed(granted: frozenset[str], requested: str | None) -> str:
    if requested is None or not requested.strip():
        return " ".join(sorted(granted))
    tokens = requested.split(" ")
    wanted = set()
    for token in tokens:
        if not token:
            continue
        if not SCOPE_TOKEN.fullmatch(token):
            raise InvalidScope("scope holds an invalid scope token")
        wanted.add(token)
    if not wanted <= granted:
        raise InvalidScope("the requested scope exceeds the key's scopes")
    return " ".join(sorted(wanted))


def _audience(allowed: tuple[str, ...], requested: str | None) -> str:
    """RFC 8707: the audience must be one the client may use; none means the default."""
    if requested is None or requested == "":
        return allowed[0]
    if requested not in allowed:
        raise InvalidTarget("the requested audience is not allowed for this client")
    return requested


def pick_audience(audience: str | None, resource: str | None) -> str | None:
    """``audience`` and RFC 8707 ``resource`` name the same thing here; both, differing,
    is ambiguous."""
    if audience and resource and audience != resource:
        raise InvalidRequest("audience and resource differ")
    return audience or resource
