"""Pure ASGI middleware that authenticates ``Authorization: Bearer`` requests.

Works with any ASGI framework (Starlette, FastAPI, ...) without importing one.
For an accepted token the verified :class:`~authd_verifier.claims.Claims` is put
on the connection scope under :data:`CLAIMS_SCOPE_KEY` (``"authd.claims"``);
read it in Starlette or FastAPI as ``request.scope["authd.claims"]``.

Refusals follow RFC 6750 §3:

- no credentials: 401, ``WWW-Authenticate: Bearer realm="..."`` (no error code);
- a bad token: 401, ``error="invalid_token"``;
- a malformed ``Authorization`` header: 400, ``error="invalid_request"``;
- a valid token without the required scope: 403, ``error="insufficient_scope"``
  with the ``scope`` attribute listing what is required;
- a valid token without MFA: 401, ``error="insufficient_user_authentication"``
  (RFC 9470);
- keys unavailable (authd unreachable past the stale window): 503, because the
  token is not at fault.

The body is a small JSON object ``{"error": ..., "error_description": ...}``;
the description is the exception's fixed, token-free message. WebSocket
connections are closed with code 1008 (policy violation) instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Final

from .bearer import BearerChallenge, bearer_token
from .dpop import refuse_bound_bearer
from .errors import VerificationError
from .verify import AsyncVerifier

#: The ASGI scope key under which verified claims are stored.
CLAIMS_SCOPE_KEY: Final = "authd.claims"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

class BearerAuthMiddleware:
    """Authenticate every HTTP and WebSocket request with an authd access token.

    ``require_scopes`` applies to every request; ``exempt_paths`` (exact paths,
    e.g. ``/healthz``) pass through unauthenticated.
    """

    def __init__(
        self,
        app: ASGIApp,
        verifier: AsyncVerifier,
        *,
        realm: str = "api",
        require_scopes: Iterable[str] = (),
        require_mfa: bool = False,
        exempt_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.require_scopes = frozenset(require_scopes)
        self.require_mfa = require_mfa
        self.exempt_paths = frozenset(exempt_paths)
        self._challenge = BearerChallenge(realm)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        authorizations = [value for name, value in scope["headers"] if name == b"authorization"]
        try:
            claims = await self.verifier.verify(
                bearer_token(authorizations),
                require_scopes=self.require_scopes,
                require_mfa=self.require_mfa,
            )
            # RFC 9449 §7.2: a DPoP-bound token is no bearer token (dpop_middleware.py
            # accepts it with its proof).
            refuse_bound_bearer(claims.raw)
        except VerificationError as error:
            await self._refuse(scope, send, error)
            return
        scope[CLAIMS_SCOPE_KEY] = claims
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, send: Send, error: VerificationError) -> None:
        """RFC 6750 §3, through the one BearerChallenge the other integrations use."""
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": ""})
            return
        refusal = self._challenge.refusal(error)
        headers = [(name.encode("ascii"), value.encode("ascii")) for name, value in refusal.headers]
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "http.response.body", "body": refusal.body})
