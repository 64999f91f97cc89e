"""FastAPI integration: ``Depends(require_token(scopes=...))`` gives verified claims.

An optional extra (``pip install 'authd-verifier[fastapi]'``); nothing else in
the library imports FastAPI::

    from typing import Annotated
    from fastapi import Depends, FastAPI
    from authd_verifier import AsyncVerifier, Claims
    from authd_verifier.fastapi import BearerAuth

    verifier = AsyncVerifier.for_issuer("https://authd.example.com", audience="orders")
    auth = BearerAuth(verifier, realm="orders")
    app = FastAPI()
    auth.install(app)
    reader = auth.require_token(scopes=["orders:read"])

    @app.get("/orders")
    async def orders(claims: Annotated[Claims, Depends(reader)]):
        return {"user": claims.subject}

The dependency declares authd as an OAuth 2.0 security scheme in the app's
OpenAPI document (the ``client_credentials`` flow at ``{issuer}/oauth/token``,
with every scope a route requires), so FastAPI's docs show the lock and the
scopes on each protected route. Refusals are RFC 6750's, computed by
:mod:`authd_verifier.bearer` exactly as for the ASGI middleware; with
``auth.install(app)`` the body is the middleware's too
(``{"error", "error_description"}``), without it FastAPI's ``{"detail": ...}``
carries the same description under the same status and headers.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependency's
# ``Annotated`` parameter at run time, and it names a local security object.
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.responses import Response
from fastapi.security.base import SecurityBase

from .bearer import BearerChallenge, Refusal, bearer_token
from .claims import Claims
from .dpop import refuse_bound_bearer
from .errors import VerificationError
from .verify import AsyncVerifier

__all__ = ["BearerAuth", "BearerError", "bearer_error_handler"]


class BearerError(HTTPException):
    """A refused request; carries the complete RFC 6750 :class:`Refusal`."""

    def __init__(self, refusal: Refusal, description: str) -> None:
        headers = {
            name: value
            for name, value in refusal.headers
            if name not in ("content-type", "content-length")
        }
        super().__init__(status_code=refusal.status, detail=description, headers=headers)
        self.refusal = refusal


async def bearer_error_handler(request: Request, error: Exception) -> Response:
    """Answer a :class:`BearerError` with the same body the ASGI middleware sends."""
    if not isinstance(error, BearerError):  # registered for BearerError only
        raise error
    status, headers, body = error.refusal
    return Response(body, status_code=status, headers=dict(headers))


class _AuthdScheme(SecurityBase):
    """authd as an OAuth 2.0 scheme in OpenAPI; yields the raw ``Authorization`` values."""

    def __init__(self, token_url: str, scheme_name: str) -> None:
        self.flow = OAuthFlowClientCredentials(tokenUrl=token_url, scopes={})
        self.model = OAuth2Model(flows=OAuthFlows(clientCredentials=self.flow))
        self.scheme_name = scheme_name

    async def __call__(self, request: Request) -> list[bytes]:
        return [value for name, value in request.scope["headers"] if name == b"authorization"]


class BearerAuth:
    """Makes FastAPI dependencies that verify ``Authorization: Bearer`` with one verifier."""

    def __init__(
        self,
        verifier: AsyncVerifier,
        *,
        realm: str = "api",
        scheme_name: str = "authd",
        scope_descriptions: dict[str, str] | None = None,
    ) -> None:
        self.verifier = verifier
        self._challenge = BearerChallenge(realm)
        token_url = verifier.rules.issuer.rstrip("/") + "/oauth/token"
        self._scheme = _AuthdScheme(token_url, scheme_name)
        self._scheme.flow.scopes.update(scope_descriptions or {})

    def install(self, app: FastAPI) -> None:
        """Answer refusals with the middleware's JSON body instead of ``{"detail": ...}``."""
        app.add_exception_handler(BearerError, bearer_error_handler)

    def require_token(
        self, scopes: Iterable[str] = (), mfa: bool = False
    ) -> Callable[..., Awaitable[Claims]]:
        """A dependency returning the verified claims of a token granting ``scopes``.

        ``mfa=True`` also requires a token from a multi-factor login (RFC 9470).
        """
        required = frozenset(scopes)
        for scope in required:
            self._scheme.flow.scopes.setdefault(scope, scope)
        verifier, challenge = self.verifier, self._challenge
        security = Security(self._scheme, scopes=sorted(required))

        async def verified_claims(
            authorizations: Annotated[list[bytes], security],
        ) -> Claims:
            try:
                claims = await verifier.verify(
                    bearer_token(authorizations), require_scopes=required, require_mfa=mfa
                )
                refuse_bound_bearer(claims.raw)  # RFC 9449 §7.2: bound tokens need DPoP
                return claims
            except VerificationError as error:
                raise BearerError(challenge.refusal(error), str(error)) from None

        return verified_claims
