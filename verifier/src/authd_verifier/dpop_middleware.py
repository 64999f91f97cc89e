"""ASGI middleware for resource servers that accept DPoP-bound tokens (RFC 9449 §7).

:class:`DPoPAuthMiddleware` authenticates ``Authorization: DPoP <token>`` with its
``DPoP`` proof header (checked by a :class:`~authd_verifier.dpop.DPoPVerifier`
against the token's ``cnf.jkt``, the request's method and URL, ``ath``, ``iat`` and
the replay cache) and ``Authorization: Bearer <token>`` for tokens that are *not*
bound: a bound token sent as Bearer is refused (§7.2). Verified claims go on the
scope under ``"authd.claims"`` as with :class:`~authd_verifier.middleware.BearerAuthMiddleware`.

Challenges name both schemes (§7.1): ``WWW-Authenticate: DPoP algs="ES256 ...",
error="invalid_dpop_proof"`` for a bad proof, ``invalid_token`` on both otherwise,
403 ``insufficient_scope`` for a missing scope, 503 when keys are unavailable. A
:class:`~authd_verifier.delegation.DelegationPolicy` can require or refuse
exchanged (``act``) tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Final

from .bearer import quoted
from .delegation import DelegationPolicy
from .dpop import DPoPVerifier, InvalidDPoPProof, refuse_bound_bearer
from .errors import InsufficientScope, KeySetUnavailable, VerificationError
from .verify import AsyncVerifier

CLAIMS_SCOPE_KEY: Final = "authd.claims"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# RFC 6750 §2.1 / RFC 9449 §7.1: scheme 1*SP token68, the scheme case-insensitive.
_CREDENTIALS: Final = re.compile(rb"([Bb][Ee][Aa][Rr][Ee][Rr]|[Dd][Pp][Oo][Pp]) +"
                                 rb"([A-Za-z0-9\-._~+/]+=*)")


class _Malformed(VerificationError):
    error_code = "invalid_request"
    default_message = "expected one Authorization header with a Bearer or DPoP token"


class _Missing(VerificationError):
    error_code = ""
    default_message = "authentication is required"


class DPoPAuthMiddleware:
    """Authenticate every HTTP request with a DPoP-bound (or unbound Bearer) token.

    ``public_url`` (``https://api.example.com``) is the origin clients sign in
    ``htu`` when a proxy stands in front; otherwise the request's scheme and
    ``Host`` header are used. ``allow_bearer=False`` accepts DPoP only.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: AsyncVerifier,
        dpop: DPoPVerifier,
        *,
        realm: str = "api",
        require_scopes: Iterable[str] = (),
        require_mfa: bool = False,
        exempt_paths: Iterable[str] = (),
        delegation: DelegationPolicy | None = None,
        public_url: str | None = None,
        allow_bearer: bool = True,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.dpop = dpop
        self.require_scopes = frozenset(require_scopes)
        self.require_mfa = require_mfa
        self.exempt_paths = frozenset(exempt_paths)
        self.delegation = delegation
        self.public_url = public_url.rstrip("/") if public_url else None
        self.allow_bearer = allow_bearer
        self._bearer = f"Bearer realm={quoted(realm)}"
        algs = " ".join(sorted(dpop.algorithms))
        self._dpop = f"DPoP realm={quoted(realm)}, algs={quoted(algs)}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        try:
            claims = await self._authenticate(scope)
        except VerificationError as error:
            await self._refuse(send, error)
            return
        scope[CLAIMS_SCOPE_KEY] = claims
        await self.app(scope, receive, send)

    async def _authenticate(self, scope: Scope) -> Any:
        authorizations = [v for n, v in scope["headers"] if n == b"authorization"]
        if not authorizations:
            raise _Missing()
        match = _CREDENTIALS.fullmatch(authorizations[0]) if len(authorizations) == 1 else None
        if match is None:
            raise _Malformed()
        is_dpop = match.group(1).lower() == b"dpop"
        if not is_dpop and not self.allow_bearer:
            raise _Missing("a DPoP-bound token is required")
        token = match.group(2).decode("ascii")
        claims = await self.verifier.verify(
            token, require_scopes=self.require_scopes, require_mfa=self.require_mfa
        )
        if is_dpop:
            proofs = [v for n, v in scope["headers"] if n == b"dpop"]
            if len(proofs) > 1:
                raise InvalidDPoPProof("expected one DPoP header")
            try:
                proof = proofs[0].decode("ascii") if proofs else None
            except UnicodeDecodeError:
                raise InvalidDPoPProof() from None
            self.dpop.check_presentation(claims.raw, token, proof,
                                         method=scope.get("method", "GET"),
                                         url=self._request_url(scope))
        else:
            refuse_bound_bearer(claims.raw)
        if self.delegation is not None:
            self.delegation.check(claims.raw)
        return claims

    def _request_url(self, scope: Scope) -> str:
        """The URL the client signed as ``htu`` (no query, no fragment)."""
        path = str(scope.get("root_path", "")) + str(scope["path"])
        if self.public_url is not None:
            return self.public_url + path
        host = next((v.decode("latin-1") for n, v in scope["headers"] if n == b"host"), "")
        if not host and scope.get("server"):
            server_host, port = scope["server"]
            host = f"{server_host}:{port}"
        return f"{scope.get('scheme', 'http')}://{host}{path}"

    async def _refuse(self, send: Send, error: VerificationError) -> None:
        description = str(error)
        code = error.error_code
        extra: list[str] = []
        if isinstance(error, InsufficientScope):
            status = 403
            if error.required:
                extra.append(f"scope={quoted(' '.join(sorted(error.required)))}")
        elif isinstance(error, KeySetUnavailable):
            status = 503
        elif isinstance(error, _Malformed):
            status = 400
        else:
            status = 401
        params = [] if not code else [f"error={quoted(code)}",
                                      f"error_description={quoted(description)}"]
        params += extra
        if isinstance(error, InvalidDPoPProof):
            challenges = [", ".join([self._dpop, *params])]
        else:
            challenges = [", ".join([self._dpop, *params])]
            if self.allow_bearer:
                challenges.insert(0, ", ".join([self._bearer, *params]))
        body = json.dumps({"error": code or "unauthorized",
                           "error_description": description}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        if status == 503:
            headers.append((b"retry-after", b"5"))
        else:
            headers.extend((b"www-authenticate", c.encode("ascii")) for c in challenges)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
