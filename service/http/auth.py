"""Who is calling an admin or introspection endpoint, and may they?

``require_scope(request, scope)`` accepts either an access token
(``Authorization: Bearer``, RFC 6750 §2.1: signature with a published key, then the
revocation check; a DPoP-bound token as ``Authorization: DPoP`` with its proof, RFC
9449 §7, and never as Bearer) or an API key (``X-API-Key`` or ``Authorization: ApiKey``), and
requires ``scope`` among the caller's scopes. It answers 401 ``invalid_token`` when
the caller cannot be authenticated and 403 ``insufficient_scope`` when they can but
lack the scope (RFC 6750 §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from service.dpop.errors import InvalidDPoPProof
from service.errors import InsufficientScope, InvalidClient, InvalidToken
from service.http.context import runtime_of

if TYPE_CHECKING:
    from service.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. ``subject`` is what the audit log records as actor."""

    subject: str
    client_id: str | None
    scopes: frozenset[str]
    method: str  # "bearer" or "api_key"


async def authenticate(request: Request) -> Principal:
    runtime = runtime_of(request)
    authorization = request.headers.get("authorization")
    header_key = request.headers.get("x-api-key")
    scheme, _, credential = (authorization or "").partition(" ")
    scheme = scheme.lower()
    credential = credential.strip()
    if header_key is not None or scheme == "apikey":
        if header_key is not None and scheme == "apikey" and header_key != credential:
            raise InvalidToken("X-API-Key and Authorization carry different keys")
        unverified_key = header_key if header_key is not None else credential
        try:
            principal = await runtime.apikeys.authenticate(unverified_key)
        except InvalidClient as exc:
            raise InvalidToken(exc.description) from None
        return Principal(
            subject=principal.client_id, client_id=principal.client_id,
            scopes=principal.scopes, method="api_key",
        )
    if scheme in ("bearer", "dpop") and credential:
        claims = await verified_claims(runtime, credential, request)
        scope = claims.get("scope")
        return Principal(
            subject=str(claims.get("sub", "")),
            client_id=None if claims.get("client_id") is None else str(claims["client_id"]),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            method="bearer",
        )
    raise InvalidToken("authentication is required (Bearer token or API key)")


def bearer_token(request: Request) -> str | None:
    """The access token of ``Authorization: Bearer …`` (RFC 6750 §2.1) or
    ``Authorization: DPoP …`` (RFC 9449 §7.1), or None."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() in ("bearer", "dpop") and credential else None


async def verified_claims(runtime: Runtime, unverified_token: str,
                          request: Request) -> dict[str, Any]:
    """The claims of an access token signed with a published key, not on the
    denylist, and presented as its binding demands (a DPoP-bound token only with a
    proof by its key for this request); InvalidToken otherwise. The one access-token
    check: every endpoint that takes one goes through it, so none can skip the
    revocation step or accept a bound token as Bearer."""
    claims = runtime.keys.verify(unverified_token)
    if await runtime.revocations.is_revoked(claims):
        raise InvalidToken("the access token has been revoked")
    scheme = request.headers.get("authorization", "").partition(" ")[0].lower()
    await runtime.dpop.check_presentation(
        claims, unverified_token, scheme, request.headers.getlist("dpop"),
        method=request.method, path=request.url.path,
    )
    return claims


async def dpop_key(request: Request, path: str) -> str | None:
    """The thumbprint of the key of the request's DPoP proof for ``POST path`` (RFC
    9449 §5: a token request binding what it gets), or None without a proof."""
    proofs = request.headers.getlist("dpop")
    if not proofs:
        return None
    if len(proofs) > 1:
        raise InvalidDPoPProof("the DPoP header appears more than once")
    return await runtime_of(request).dpop.bind(proofs[0], method="POST", path=path)


async def require_scope(request: Request, scope: str) -> Principal:
    """The authenticated caller, who holds ``scope``; otherwise 401 or 403."""
    principal = await authenticate(request)
    if scope not in principal.scopes:
        raise InsufficientScope(scope)
    return principal
