"""Audit events in the database: appended in batches, read by the operator."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from service.store import Database, Row

INSERT = (
    "INSERT INTO audit_events (at, action, actor, subject, ip, outcome, details)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
QUERY = (
    "SELECT id, at, action, actor, subject, ip, outcome, details FROM audit_events"
    " WHERE id > $1 AND ($2::text IS NULL OR action = $2::text)"
    " AND ($3::text IS NULL OR subject = $3::text)"
    " ORDER BY id DESC LIMIT $4"
)

# The console's audit page (service/console): every filter optional, newest first,
# paged by ``before_id`` (0: from the newest).
SEARCH = (
    "SELECT id, at, action, actor, subject, ip, outcome, details FROM audit_events"
    " WHERE ($1::bigint = 0 OR id < $1::bigint)"
    " AND ($2::text IS NULL OR action = $2::text)"
    " AND ($3::text IS NULL OR actor = $3::text)"
    " AND ($4::text IS NULL OR subject = $4::text)"
    " AND ($5::double precision IS NULL OR at >= $5::double precision)"
    " AND ($6::double precision IS NULL OR at < $6::double precision)"
    " ORDER BY id DESC LIMIT $7"
)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    at: float
    action: str
    outcome: str
    actor: str | None = None
    subject: str | None = None
    ip: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "action": self.action,
            "outcome": self.outcome,
            "actor": self.actor,
            "subject": self.subject,
            "ip": self.ip,
            "details": self.details,
        }


class AuditStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        async with self._db.transaction() as tx:
            for e in events:
                await tx.execute(
                    INSERT, e.at, e.action, e.actor, e.subject, e.ip, e.outcome,
                    json.dumps(e.details, separators=(",", ":"), default=str),
                )

    async def query(
        self,
        *,
        action: str | None = None,
        subject: str | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[AuditEvent]:
        rows = await self._db.fetch(QUERY, after_id, action, subject, limit)
        return _events(rows)

    async def search(
        self, *, action: str | None = None, actor: str | None = None,
        subject: str | None = None, since: float | None = None, until: float | None = None,
        before_id: int = 0, limit: int = 100,
    ) -> list[AuditEvent]:
        rows = await self._db.fetch(SEARCH, before_id, action, actor, subject, since, until,
                                    limit)
        return _events(rows)


def _events(rows: Sequence[Row]) -> list[AuditEvent]:
    return [
        AuditEvent(
            id=r["id"], at=r["at"], action=r["action"], outcome=r["outcome"],
            actor=r["actor"], subject=r["subject"], ip=r["ip"],
            details=json.loads(r["details"]),
        )
        for r in rows
    ]
