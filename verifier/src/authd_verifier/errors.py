"""Why a token was refused, as distinct exception types.

Every failure is a subclass of :class:`VerificationError`, so a caller that only
cares about "accepted or not" catches one type, while a caller that answers
differently (an expired token invites a refresh, a bad signature does not) can
tell the cases apart. Messages are fixed strings chosen here: they never contain
the token, its claims or anything else taken from the request, so they are safe
to log and to return to the client as an ``error_description``.
"""

from __future__ import annotations


class VerificationError(Exception):
    """The token must not be accepted; ``str(error)`` is a safe, fixed description.

    ``error_code`` is the RFC 6750 §3.1 error code a resource server answers with.
    """

    error_code = "invalid_token"
    default_message = "the access token is invalid"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message if message is not None else self.default_message)


class MalformedToken(VerificationError):
    """The token is not a well-formed authd access token (structure, encoding, claims)."""

    default_message = "the access token is malformed"


class InvalidSignature(VerificationError):
    """The signature does not verify with the key the token names."""

    default_message = "the access token signature is invalid"


class DisallowedAlgorithm(InvalidSignature):
    """The header names an algorithm that is not pinned for this key and caller.

    A subclass of :class:`InvalidSignature`: a token whose algorithm we refuse to
    use carries no signature we accept (``none``, HMAC with a public key, ...).
    """

    default_message = "the access token uses an algorithm that is not accepted"


class UnknownKey(VerificationError):
    """No published signing key has the token's ``kid`` (after a rate-limited refetch)."""

    default_message = "the access token was signed by an unknown key"


class KeySetUnavailable(VerificationError):
    """No usable key set: authd's JWKS could not be fetched and no cached copy is valid.

    This is the verifier's problem, not the token's; a resource server answers
    503 rather than 401 so that clients do not throw away good tokens.
    """

    error_code = "temporarily_unavailable"
    default_message = "the signing keys are temporarily unavailable"


class TokenExpired(VerificationError):
    """``exp`` has passed (beyond the leeway); the client should get a new token."""

    default_message = "the access token has expired"


class TokenNotYetValid(VerificationError):
    """``nbf`` or ``iat`` lies in the future (beyond the leeway)."""

    default_message = "the access token is not valid yet"


class WrongIssuer(VerificationError):
    """``iss`` is not the issuer this verifier trusts."""

    default_message = "the access token was issued by an untrusted issuer"


class WrongAudience(VerificationError):
    """``aud`` does not name this service."""

    default_message = "the access token is not meant for this audience"


class WrongType(VerificationError):
    """The ``typ`` header is not ``at+jwt`` (RFC 9068 §2.1): e.g. an ID token."""

    default_message = "the token is not an access token"


class TokenRevoked(VerificationError):
    """authd's revocation feed lists this token, its session or its subject."""

    default_message = "the access token has been revoked"


class InsufficientScope(VerificationError):
    """The token is valid but lacks a required scope (RFC 6750 §3.1: HTTP 403)."""

    error_code = "insufficient_scope"
    default_message = "the access token lacks a required scope"

    def __init__(self, required: frozenset[str] = frozenset(), message: str | None = None) -> None:
        super().__init__(message)
        #: The scopes the caller asked for (from configuration, never from the
        #: token), for the RFC 6750 §3 ``scope`` attribute of ``WWW-Authenticate``.
        self.required = required


class InsufficientUserAuthentication(VerificationError):
    """The token is valid but the user did not pass MFA (RFC 9470 step-up)."""

    error_code = "insufficient_user_authentication"
    default_message = "a multi-factor authenticated token is required"
