"""Typed errors of the API-key domain, keyed by the RFC 6749 code a caller sees."""

from __future__ import annotations

from service.errors import (
    Conflict,
    InvalidClient,
    InvalidRequest,
    NotFound,
    TemporarilyUnavailable,
)


class MalformedApiKey(InvalidClient):
    """The presented value is not an API key of this deployment (shape or checksum);
    refused before storage is touched."""

    def __init__(self, description: str = "the API key is malformed", **kw: str) -> None:
        super().__init__(description, scheme="ApiKey", **kw)


class UnknownApiKey(InvalidClient):
    def __init__(self, description: str = "the API key is unknown", **kw: str) -> None:
        super().__init__(description, scheme="ApiKey", **kw)


class RevokedApiKey(InvalidClient):
    def __init__(self, description: str = "the API key has been revoked", **kw: str) -> None:
        super().__init__(description, scheme="ApiKey", **kw)


class ExpiredApiKey(InvalidClient):
    def __init__(self, description: str = "the API key has expired", **kw: str) -> None:
        super().__init__(description, scheme="ApiKey", **kw)


class ClientDisabled(InvalidClient):
    def __init__(self, description: str = "the client is disabled", **kw: str) -> None:
        super().__init__(description, scheme="ApiKey", **kw)


class LookupDeclined(Exception):
    """Neither cached nor known to exist, presented by an address over its failed-attempt
    budget: refused without a store lookup (the exchange answers 429)."""


class ClientNotFound(NotFound):
    pass


class ApiKeyNotFound(NotFound):
    pass


class ClientExists(Conflict):
    pass


class InvalidClientSpec(InvalidRequest):
    """An operator's request to create or change a client or key is malformed."""


class RevocationNotAnnounced(TemporarilyUnavailable):
    """A key revocation or client disablement is committed, but neither channel to the
    other replicas took it (the change-cursor row could not be written and Redis
    refused the message): they would keep serving the key from their caches. The
    caller hears 503 and retries; the retry finds the row already revoked and
    announces it again (DESIGN §2: a revoked key stops on every replica within 1 s)."""

    def __init__(
        self,
        description: str = "recorded, but other replicas could not be told yet; retry",
        **kw: str,
    ) -> None:
        super().__init__(description, **kw)
