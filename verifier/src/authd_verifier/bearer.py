"""RFC 6750 in one place: reading ``Authorization: Bearer`` and answering refusals.

The ASGI middleware, the FastAPI dependency and the WSGI middleware and
decorator all take the token from the request and answer a refusal through
:class:`BearerChallenge`, so a client sees the same statuses, challenges and
bodies whichever integration a service uses (RFC 6750 §3):

- no credentials: 401, ``WWW-Authenticate: Bearer realm="..."`` (no error code);
- a malformed ``Authorization`` header (or several): 400, ``error="invalid_request"``;
- a bad token: 401, ``error="invalid_token"``;
- a valid token without the required scope: 403, ``error="insufficient_scope"``
  with the ``scope`` attribute listing what is required;
- a valid token without MFA: 401, ``error="insufficient_user_authentication"``
  (RFC 9470);
- keys unavailable (authd unreachable past the stale window): 503 with
  ``Retry-After``, because the token is not at fault.

The body is ``{"error": ..., "error_description": ...}``; the description is the
exception's fixed, token-free message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Final, NamedTuple

from .errors import InsufficientScope, KeySetUnavailable, VerificationError

# RFC 6750 §2.1: "Bearer" 1*SP b64token, where b64token is the token68 alphabet.
_BEARER: Final = re.compile(rb"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)")
_QUOTED_SAFE: Final = re.compile(r"[\x20-\x7e]*")

#: Seconds a client is asked to wait when the keys are unavailable.
RETRY_AFTER_SECONDS: Final = 5


class MissingCredentials(VerificationError):
    """The request carries no ``Authorization`` header (RFC 6750 §3.1: no error code)."""

    error_code = ""
    default_message = "authentication is required"


class InvalidRequest(VerificationError):
    """The ``Authorization`` header is not exactly one ``Bearer`` token."""

    error_code = "invalid_request"
    default_message = "expected one Authorization: Bearer header"


class Refusal(NamedTuple):
    """A complete refusal: status, headers (names in lower case) and JSON body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def quoted(value: str) -> str:
    """``value`` as an RFC 7230 quoted-string; only printable ASCII is accepted."""
    if _QUOTED_SAFE.fullmatch(value) is None:
        raise ValueError("WWW-Authenticate parameters must be printable ASCII")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bearer_token(authorizations: Sequence[bytes]) -> str:
    """The token of the request's ``Authorization`` values; raise why there is none."""
    if not authorizations:
        raise MissingCredentials()
    match = _BEARER.fullmatch(authorizations[0]) if len(authorizations) == 1 else None
    if match is None:
        raise InvalidRequest()
    return match.group(1).decode("ascii")


class BearerChallenge:
    """Builds the RFC 6750 refusal for one protection realm."""

    __slots__ = ("_realm",)

    def __init__(self, realm: str = "api") -> None:
        self._realm = f"Bearer realm={quoted(realm)}"

    def refusal(self, error: VerificationError) -> Refusal:
        """The status, headers and body that answer ``error``."""
        extra: list[str] = []
        if isinstance(error, InvalidRequest):
            status = 400
        elif isinstance(error, InsufficientScope):
            status = 403
            if error.required:
                extra.append(f"scope={quoted(' '.join(sorted(error.required)))}")
        elif isinstance(error, KeySetUnavailable):
            status = 503
        else:
            status = 401
        description = str(error)
        body = json.dumps(
            {"error": error.error_code or "unauthorized", "error_description": description}
        ).encode()
        headers = [
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            ("cache-control", "no-store"),
        ]
        if status == 503:
            headers.append(("retry-after", str(RETRY_AFTER_SECONDS)))
        else:
            challenge = [self._realm]
            if error.error_code:
                challenge.append(f"error={quoted(error.error_code)}")
                challenge.append(f"error_description={quoted(description)}")
            challenge.extend(extra)
            headers.append(("www-authenticate", ", ".join(challenge)))
        return Refusal(status, headers, body)
