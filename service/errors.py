"""Typed errors, keyed by the error code a client sees.

Each class carries its status and headers; ``service.http.errors`` turns any of them
into an RFC 6749 §5.2 body on ``/oauth/*`` and an RFC 9457 problem elsewhere. What
the client may read (``description``) is kept apart from what the operator needs
(``log_detail``, logged, never sent) — neither ever holds a secret.
"""

from __future__ import annotations

from collections.abc import Mapping


class AuthdError(Exception):
    status: int = 400
    code: str = "invalid_request"
    title: str = "Bad request"

    def __init__(
        self,
        description: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        log_detail: str | None = None,
    ) -> None:
        self.description = description or self.title
        self.headers: dict[str, str] = dict(headers or {})
        self.log_detail = log_detail
        super().__init__(self.description)


class InvalidRequest(AuthdError):
    pass


class InvalidClient(AuthdError):
    """RFC 6749 §5.2: client authentication failed; 401 with a challenge."""

    status = 401
    code = "invalid_client"
    title = "Client authentication failed"

    def __init__(self, description: str | None = None, *, scheme: str = "Basic", **kw: str) -> None:
        super().__init__(description, headers={"WWW-Authenticate": f'{scheme} realm="authd"'}, **kw)


class InvalidGrant(AuthdError):
    code = "invalid_grant"
    title = "The grant is invalid, expired or revoked"


class UnauthorizedClient(AuthdError):
    code = "unauthorized_client"
    title = "The client may not use this grant type"


class UnsupportedGrantType(AuthdError):
    code = "unsupported_grant_type"
    title = "Unsupported grant_type"


class InvalidScope(AuthdError):
    code = "invalid_scope"
    title = "The requested scope is invalid or exceeds what was granted"


class InvalidTarget(AuthdError):
    """RFC 8707 §2: the requested audience/resource is not one the client may use."""

    code = "invalid_target"
    title = "The requested audience is not allowed"


class InvalidToken(AuthdError):
    """RFC 6750 §3.1: the bearer token is missing, malformed, expired or revoked."""

    status = 401
    code = "invalid_token"
    title = "The access token is invalid"

    def __init__(self, description: str | None = None, **kw: str) -> None:
        super().__init__(
            description,
            headers={"WWW-Authenticate": 'Bearer realm="authd", error="invalid_token"'},
            **kw,
        )


class InsufficientScope(AuthdError):
    status = 403
    code = "insufficient_scope"
    title = "The token lacks the scope this needs"

    def __init__(self, scope: str, **kw: str) -> None:
        super().__init__(
            f"requires scope {scope}",
            headers={
                "WWW-Authenticate": (
                    f'Bearer realm="authd", error="insufficient_scope", scope="{scope}"'
                )
            },
            **kw,
        )


class CrossSiteRequest(AuthdError):
    """A request authenticated only by the refresh cookie that a browser could have
    sent from another site: not JSON, or from an origin that is neither the issuer's
    nor allow-listed (the CSRF rule, README "Browser apps")."""

    status = 403
    code = "cross_site_request"
    title = "Cross-site request refused"


class CorsRefused(AuthdError):
    """A CORS preflight for an origin, method or header this resource does not allow."""

    code = "cors_refused"
    title = "CORS preflight refused"


class NotFound(AuthdError):
    status = 404
    code = "not_found"
    title = "Not found"


class MethodNotAllowed(AuthdError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class Conflict(AuthdError):
    status = 409
    code = "conflict"
    title = "Conflict with the current state"


class StorageConflict(Conflict):
    """A unique or foreign-key constraint refused a write that no domain turned into
    an error of its own: the state changed under the request (or a random id
    collided). 409 says "look again, then retry"; the constraint (table and columns,
    never the values) goes to ``log_detail``. ``docs/constraints.md`` lists which
    constraints can end here."""

    title = "Conflict with a concurrent change"

    def __init__(self, *, log_detail: str | None = None) -> None:
        super().__init__("the change conflicts with the current state; look again and retry",
                         log_detail=log_detail)


class PayloadTooLarge(AuthdError):
    status = 413
    code = "payload_too_large"
    title = "Request body too large"


class UnsupportedMediaType(AuthdError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported content type"


class RateLimited(AuthdError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, retry_after: float, **kw: str) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(
            f"retry after {seconds} s", headers={"Retry-After": str(seconds)}, **kw
        )


class TemporarilyUnavailable(AuthdError):
    status = 503
    code = "temporarily_unavailable"
    title = "The service is temporarily unavailable"

    def __init__(self, description: str | None = None, **kw: str) -> None:
        super().__init__(description, headers={"Retry-After": "1"}, **kw)


class Overloaded(TemporarilyUnavailable):
    """The worker already has its bound of requests in flight (``http/shedding.py``):
    retry in a second, here or on another replica."""

    title = "The service is at capacity"

    def __init__(self) -> None:
        super().__init__("too many requests in flight; retry shortly")
