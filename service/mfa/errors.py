"""Typed errors of the MFA domain.

At login every failure of the second step (unknown, expired or spent ticket, wrong
code, locked account) is one error with one message, as for the password step: the
caller learns nothing about which part was wrong. The audit log says which.
"""

from __future__ import annotations

from service.errors import AuthdError, Conflict, InvalidRequest


class MfaRejected(AuthdError):
    status = 401
    code = "mfa_rejected"
    title = "The MFA ticket or code is invalid"

    def __init__(self) -> None:
        super().__init__(
            "the MFA ticket or code is invalid, expired or already used",
            headers={"WWW-Authenticate": 'Password realm="authd", error="mfa_rejected"'},
        )


class InvalidCode(InvalidRequest):
    """A signed-in user's TOTP or recovery code is wrong, malformed or already used."""

    code = "invalid_code"
    title = "The code is invalid"


class NotEnrolled(Conflict):
    title = "No TOTP enrolment"


class AlreadyEnrolled(Conflict):
    title = "TOTP is already enrolled"


class UserTokenRequired(AuthdError):
    """The endpoint acts on the signed-in user: a client's token has no user."""

    status = 403
    code = "user_token_required"
    title = "A user's access token is required"
