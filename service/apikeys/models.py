"""The records of the API-key domain, immutable once read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from service.config import Rate

ACTIVE = "active"
DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Client:
    """A service account. ``audiences[0]`` is the default audience of its tokens;
    ``exchange_audiences`` are those it may obtain by RFC 8693 token exchange (none
    by default); ``dpop_required`` makes its token requests need a DPoP proof."""

    id: str
    name: str
    scopes: frozenset[str]
    audiences: tuple[str, ...]
    token_ttl: float
    status: str
    created_at: float
    updated_at: float
    exchange_audiences: tuple[str, ...] = ()
    dpop_required: bool = False

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "audiences": list(self.audiences),
            "token_ttl": self.token_ttl,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "exchange_audiences": list(self.exchange_audiences),
            "dpop_required": self.dpop_required,
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's record; the key itself is never stored, only its digest."""

    id: str
    client_id: str
    display: str
    scopes: frozenset[str]
    rate: Rate | None
    status: str
    expires_at: float | None
    last_used_at: float | None
    replaces: str | None
    created_at: float
    revoked_at: float | None

    def usable_at(self, now: float) -> bool:
        return self.status == ACTIVE and (self.expires_at is None or now < self.expires_at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_id": self.client_id,
            "display": self.display,
            "scopes": sorted(self.scopes),
            "rate_limit": None if self.rate is None else str(self.rate),
            "status": self.status,
            "expires_at": self.expires_at,
            "last_used_at": self.last_used_at,
            "replaces": self.replaces,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    """A key whose digest matched a record, with its client: what the cache holds."""

    key: ApiKey
    client: Client
    # The scopes a token on this key may carry: the key's within its client's. Made
    # once with the record, not on every exchange of a cached key.
    granted: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "granted", self.key.scopes & self.client.scopes)


@dataclass(frozen=True, slots=True)
class ApiKeyPrincipal:
    """Who presented a valid API key (the cross-domain interface of the contract)."""

    client_id: str
    key_id: str
    scopes: frozenset[str]


def split_scopes(text: str) -> frozenset[str]:
    return frozenset(text.split())


def join_scopes(scopes: frozenset[str] | set[str]) -> str:
    return " ".join(sorted(scopes))
