"""Typed errors of the revocation domain."""

from __future__ import annotations

from service.errors import InvalidRequest


class BadCursor(InvalidRequest):
    """The feed cursor is not one this service handed out."""

    title = "Invalid revocation feed cursor"


class InvalidSubject(InvalidRequest):
    """A subject to revoke that no token of ours can carry as ``sub``."""

    title = "Invalid subject"
