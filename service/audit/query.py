"""What an operator may ask of the audit log, validated once for the API and the CLI."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from service.errors import InvalidRequest
from service.http.requests import whole_number

MAX_LIMIT = 1000
_ACTION = re.compile(r"^[a-z0-9_.]{1,64}$")
# Printable only: a NUL or control character is no subject we ever record, and
# PostgreSQL refuses NUL in text outright.
_SUBJECT = re.compile(r"^[^\x00-\x1f\x7f]{1,256}\Z")


@dataclass(frozen=True, slots=True)
class AuditQuery:
    action: str | None = None
    subject: str | None = None
    after_id: int = 0
    limit: int = 100

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> AuditQuery:
        unknown = set(params) - {"action", "subject", "after_id", "limit"}
        if unknown:
            raise InvalidRequest(f"unknown parameter {sorted(unknown)[0]}")
        return cls.of(
            action=params.get("action"), subject=params.get("subject"),
            after_id=params.get("after_id", "0"), limit=params.get("limit", "100"),
        )

    @classmethod
    def of(cls, *, action: str | None, subject: str | None, after_id: str | int,
           limit: str | int) -> AuditQuery:
        if action is not None and not _ACTION.match(action):
            raise InvalidRequest("action is a dotted name such as apikey.revoke")
        if subject is not None and not _SUBJECT.match(subject):
            raise InvalidRequest("subject is 1 to 256 printable characters")
        return cls(action, subject, whole_number("after_id", after_id, 0, 2**62),
                   whole_number("limit", limit, 1, MAX_LIMIT))
