"""Operator roles and console sessions in the database (migration 0007).

A session row is keyed by the SHA-256 digest of the opaque id the browser holds, so
reading the table does not let anyone take a session over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from service.store import Database, Row

ADMIN = "admin"

SELECT_ROLES = "SELECT role FROM user_roles WHERE user_id = $1 ORDER BY role"
INSERT_ROLE = (
    "INSERT INTO user_roles (user_id, role, granted_at, granted_by) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (user_id, role) DO NOTHING"
)
DELETE_ROLE = "DELETE FROM user_roles WHERE user_id = $1 AND role = $2"
SELECT_HOLDERS = (
    "SELECT u.id, u.email FROM user_roles r JOIN users u ON u.id = r.user_id"
    " WHERE r.role = $1 ORDER BY u.email"
)

INSERT_SESSION = (
    "INSERT INTO console_sessions (digest, user_id, stage, created_at, last_seen_at)"
    " VALUES ($1, $2, $3, $4, $4)"
)
# The session, whether its user still holds the role, and the user's status: every
# console request reads this one row.
SELECT_SESSION = (
    "SELECT s.digest, s.user_id, s.stage, s.created_at, s.last_seen_at, s.fresh_mfa_at,"
    " s.ended_at, u.email, u.status,"
    " EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = s.user_id AND r.role = 'admin')"
    " AS is_admin"
    " FROM console_sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = $1"
)
TOUCH_SESSION = (
    "UPDATE console_sessions SET last_seen_at = $2 WHERE digest = $1 AND ended_at IS NULL"
)
SET_STAGE = (
    "UPDATE console_sessions SET stage = $2, last_seen_at = $3, fresh_mfa_at = $4"
    " WHERE digest = $1 AND ended_at IS NULL"
)
END_SESSION = (
    "UPDATE console_sessions SET ended_at = $2 WHERE digest = $1 AND ended_at IS NULL"
)
END_USER_SESSIONS = (
    "UPDATE console_sessions SET ended_at = $2 WHERE user_id = $1 AND ended_at IS NULL"
)
SET_FLASH = "UPDATE console_sessions SET flash_sealed = $2 WHERE digest = $1 AND ended_at IS NULL"
SELECT_FLASH = "SELECT flash_sealed FROM console_sessions WHERE digest = $1"
# Cleared only if still the value read: of two concurrent readers one gets it.
CLEAR_FLASH = (
    "UPDATE console_sessions SET flash_sealed = NULL WHERE digest = $1 AND flash_sealed = $2"
)
# The users page's search: an exact id, or emails starting with the text (LIKE's
# wildcards in it escaped). Read-only; users are written by service.sessions only.
SEARCH_USERS = (
    "SELECT id, email, status, created_at FROM users"
    " WHERE id = $1 OR email LIKE $2 ESCAPE '\\' ORDER BY email LIMIT 50"
)
# Ended and timed-out rows are kept a day for the operator's questions, then purged.
PURGE_SESSIONS = "DELETE FROM console_sessions WHERE created_at < $1"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    digest: bytes
    user_id: str
    email: str
    user_status: str
    is_admin: bool
    stage: str
    created_at: float
    last_seen_at: float
    fresh_mfa_at: float | None
    ended_at: float | None


def _session(row: Row | None) -> SessionRecord | None:
    if row is None:
        return None
    return SessionRecord(
        digest=bytes(row["digest"]), user_id=row["user_id"], email=row["email"],
        user_status=row["status"], is_admin=bool(row["is_admin"]), stage=row["stage"],
        created_at=row["created_at"], last_seen_at=row["last_seen_at"],
        fresh_mfa_at=row["fresh_mfa_at"], ended_at=row["ended_at"],
    )


class ConsoleStore(Protocol):
    async def roles(self, user_id: str) -> list[str]: ...
    async def grant(self, user_id: str, role: str, now: float, by: str | None) -> bool: ...
    async def revoke(self, user_id: str, role: str) -> bool: ...
    async def holders(self, role: str) -> list[tuple[str, str]]: ...
    async def create_session(self, digest: bytes, user_id: str, stage: str,
                             now: float) -> None: ...
    async def session(self, digest: bytes) -> SessionRecord | None: ...
    async def touch(self, digest: bytes, now: float) -> None: ...
    async def set_stage(self, digest: bytes, stage: str, now: float,
                        fresh_mfa_at: float | None) -> bool: ...
    async def end(self, digest: bytes, now: float) -> bool: ...
    async def end_all(self, user_id: str, now: float) -> int: ...
    async def purge(self, before: float) -> int: ...
    async def search_users(self, text: str) -> list[dict[str, object]]: ...
    async def set_flash(self, digest: bytes, sealed: bytes) -> None: ...
    async def take_flash(self, digest: bytes) -> bytes | None: ...


class SqlConsoleStore:
    """The one implementation: the SQL above runs unchanged on PostgreSQL and SQLite."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def roles(self, user_id: str) -> list[str]:
        return [row["role"] for row in await self._db.fetch(SELECT_ROLES, user_id)]

    async def grant(self, user_id: str, role: str, now: float, by: str | None) -> bool:
        return await self._db.execute(INSERT_ROLE, user_id, role, now, by) == 1

    async def revoke(self, user_id: str, role: str) -> bool:
        return await self._db.execute(DELETE_ROLE, user_id, role) == 1

    async def holders(self, role: str) -> list[tuple[str, str]]:
        return [(row["id"], row["email"]) for row in await self._db.fetch(SELECT_HOLDERS, role)]

    async def create_session(self, digest: bytes, user_id: str, stage: str,
                             now: float) -> None:
        await self._db.execute(INSERT_SESSION, digest, user_id, stage, now)

    async def session(self, digest: bytes) -> SessionRecord | None:
        return _session(await self._db.fetchrow(SELECT_SESSION, digest))

    async def touch(self, digest: bytes, now: float) -> None:
        await self._db.execute(TOUCH_SESSION, digest, now)

    async def set_stage(self, digest: bytes, stage: str, now: float,
                        fresh_mfa_at: float | None) -> bool:
        return await self._db.execute(SET_STAGE, digest, stage, now, fresh_mfa_at) == 1

    async def end(self, digest: bytes, now: float) -> bool:
        return await self._db.execute(END_SESSION, digest, now) == 1

    async def end_all(self, user_id: str, now: float) -> int:
        return await self._db.execute(END_USER_SESSIONS, user_id, now)

    async def purge(self, before: float) -> int:
        return await self._db.execute(PURGE_SESSIONS, before)

    async def set_flash(self, digest: bytes, sealed: bytes) -> None:
        await self._db.execute(SET_FLASH, digest, sealed)

    async def take_flash(self, digest: bytes) -> bytes | None:
        sealed = await self._db.fetchval(SELECT_FLASH, digest)
        if sealed is None or await self._db.execute(CLEAR_FLASH, digest, sealed) != 1:
            return None
        return bytes(sealed)

    async def search_users(self, text: str) -> list[dict[str, object]]:
        pattern = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = await self._db.fetch(SEARCH_USERS, text, pattern + "%")
        return [{"id": r["id"], "email": r["email"], "status": r["status"],
                 "created_at": r["created_at"]} for r in rows]
