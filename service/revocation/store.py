"""Revocation entries in the database: the source of truth for the denylist.

``seq`` orders the entries and is the feed cursor. Inserts take a named lock so that
sequence numbers become visible in the order they were drawn: without it, two
concurrent PostgreSQL transactions could commit seq 11 before seq 10, and a verifier
that read up to 11 would never see 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from service.store import Connection, Database, Row

Kind = Literal["jti", "sid", "sub"]
INSERT_LOCK = "authd.revocations.insert"

INSERT = (
    "INSERT INTO revocations (kind, value, not_before, created_at, expires_at)"
    " VALUES ($1, $2, $3::double precision, $4, $5) RETURNING seq"
)
# One indexed probe per kind; a subject entry covers tokens issued before not_before.
MATCHES = (
    "SELECT 1 FROM revocations WHERE expires_at > $5 AND ("
    " (kind = 'jti' AND value = $1::text)"
    " OR (kind = 'sid' AND value = $2::text)"
    " OR (kind = 'sub' AND value = $3::text AND not_before > $4::double precision)"
    ") LIMIT 1"
)
SINCE = (
    "SELECT seq, kind, value, not_before, created_at, expires_at FROM revocations"
    " WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3"
)
PURGE = "DELETE FROM revocations WHERE expires_at <= $1"


@dataclass(frozen=True, slots=True)
class Revocation:
    """One denylist entry. For ``sub`` a token is covered when its ``iat`` is earlier
    than ``not_before``; ``jti`` and ``sid`` entries cover every token carrying them."""

    seq: int
    kind: Kind
    value: str
    not_before: float | None
    created_at: float
    expires_at: float

    def as_feed_entry(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "value": self.value,
            "not_before": None if self.not_before is None else int(self.not_before),
            "expires_at": int(self.expires_at),
        }


def _entry(row: Row) -> Revocation:
    return Revocation(
        seq=int(row["seq"]), kind=row["kind"], value=row["value"],
        not_before=row["not_before"], created_at=row["created_at"],
        expires_at=row["expires_at"],
    )


class RevocationStore(Protocol):
    async def add(
        self, conn: Connection, kind: Kind, value: str, not_before: float | None,
        created_at: float, expires_at: float,
    ) -> Revocation: ...

    async def matches(
        self, jti: str | None, sid: str | None, sub: str | None, iat: float, now: float
    ) -> bool: ...

    async def since(self, seq: int, now: float, limit: int) -> list[Revocation]: ...

    async def purge(self, now: float) -> int: ...


class SqlRevocationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self, conn: Connection, kind: Kind, value: str, not_before: float | None,
        created_at: float, expires_at: float,
    ) -> Revocation:
        """Insert inside the caller's transaction (so a family revocation and its
        ``sid`` entry commit together)."""
        await conn.lock(INSERT_LOCK)
        seq = await conn.fetchval(INSERT, kind, value, not_before, created_at, expires_at)
        return Revocation(int(seq), kind, value, not_before, created_at, expires_at)

    async def matches(
        self, jti: str | None, sid: str | None, sub: str | None, iat: float, now: float
    ) -> bool:
        return await self.db.fetchval(MATCHES, jti, sid, sub, iat, now) is not None

    async def since(self, seq: int, now: float, limit: int) -> list[Revocation]:
        return [_entry(r) for r in await self.db.fetch(SINCE, seq, now, limit)]

    async def purge(self, now: float) -> int:
        return await self.db.execute(PURGE, now)
