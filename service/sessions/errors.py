"""Typed errors of the sessions domain.

Login failures all share one class and one message whatever the cause (unknown email,
wrong password, locked or disabled account): telling them apart would let a caller
enumerate accounts. The operator sees the cause in the audit log and the metric.
"""

from __future__ import annotations

from service.errors import AuthdError, Conflict, InvalidGrant, InvalidRequest, NotFound


class InvalidCredentials(AuthdError):
    status = 401
    code = "invalid_credentials"
    title = "Invalid email or password"

    def __init__(self) -> None:
        super().__init__("invalid email or password",
                         headers={"WWW-Authenticate": 'Password realm="authd"'})


class InvalidEmail(InvalidRequest):
    title = "Invalid email address"


class WeakPassword(InvalidRequest):
    title = "Password not acceptable"


class UserExists(Conflict):
    title = "A user with this email exists"


class UserNotFound(NotFound):
    title = "No such user"


class RefreshRejected(InvalidGrant):
    """The refresh token is unknown, spent, expired or its family is revoked; one
    message for all, so that a stolen token's holder learns nothing."""

    def __init__(self, log_detail: str) -> None:
        super().__init__("the refresh token is invalid, expired or revoked",
                         log_detail=log_detail)
