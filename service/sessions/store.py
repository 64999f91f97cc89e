"""Users, refresh families and refresh tokens in the database.

The refresh spend is the one place where concurrency matters: ``SELECT … FOR UPDATE``
takes the token's row lock (SQLite: the ``BEGIN IMMEDIATE`` write lock), so two
concurrent uses of one token are decided one after the other, and the spend itself
is guarded by ``spent_at IS NULL`` as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from service.store import Connection, Database, Row

SELECT_USER_BY_EMAIL = (
    "SELECT id, email, password_hash, status, failed_logins, locked_until, created_at"
    " FROM users WHERE email = $1"
)
SELECT_USER_BY_ID = (
    "SELECT id, email, password_hash, status, failed_logins, locked_until, created_at"
    " FROM users WHERE id = $1"
)
INSERT_USER = (
    "INSERT INTO users (id, email, password_hash, status, failed_logins, created_at, updated_at)"
    " VALUES ($1, $2, $3, 'active', 0, $4, $4)"
)
SET_HASH = "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1"
RECORD_FAILURE = (
    "UPDATE users SET failed_logins = failed_logins + 1, updated_at = $2"
    " WHERE id = $1 RETURNING failed_logins"
)
LOCK_USER = (
    "UPDATE users SET status = 'locked', locked_until = $2, updated_at = $3"
    " WHERE id = $1 AND status <> 'disabled'"
)
RESET_FAILURES = (
    "UPDATE users SET failed_logins = 0, locked_until = NULL, updated_at = $2,"
    " status = CASE WHEN status = 'locked' THEN 'active' ELSE status END"
    " WHERE id = $1 AND (failed_logins <> 0 OR status = 'locked')"
)
SET_STATUS = (
    "UPDATE users SET status = $2, failed_logins = 0, locked_until = NULL, updated_at = $3"
    " WHERE id = $1"
)

INSERT_FAMILY = (
    "INSERT INTO refresh_families (id, user_id, client_id, scopes, created_at, expires_at, amr)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
INSERT_REFRESH = (
    "INSERT INTO refresh_tokens (digest, family_id, generation, issued_at)"
    " VALUES ($1, $2, $3, $4)"
)
_REFRESH_VIEW = (
    "SELECT t.digest, t.family_id, t.generation, t.issued_at, t.spent_at,"
    " t.successor_digest, t.successor_sealed, f.user_id, f.client_id, f.scopes,"
    " f.created_at AS family_created_at, f.expires_at AS family_expires_at,"
    " f.revoked_at AS family_revoked_at, u.status AS user_status, f.amr"
    " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
    " JOIN users u ON u.id = f.user_id WHERE t.digest = $1"
)
SELECT_REFRESH = _REFRESH_VIEW
SELECT_REFRESH_FOR_SPEND = _REFRESH_VIEW + " FOR UPDATE"
SELECT_SPENT_AT = "SELECT spent_at FROM refresh_tokens WHERE digest = $1"
SPEND = (
    "UPDATE refresh_tokens SET spent_at = $2, successor_digest = $3, successor_sealed = $4"
    " WHERE digest = $1 AND spent_at IS NULL"
)
REVOKE_FAMILY = (
    "UPDATE refresh_families SET revoked_at = $2, revoke_reason = $3"
    " WHERE id = $1 AND revoked_at IS NULL"
)
REVOKE_USER_FAMILIES = (
    "UPDATE refresh_families SET revoked_at = $2, revoke_reason = $3"
    " WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 RETURNING id"
)
ERASE_FAMILY_SEALED = (
    "UPDATE refresh_tokens SET successor_sealed = NULL"
    " WHERE family_id = $1 AND successor_sealed IS NOT NULL"
)
# Sealed successors exist only to answer a retry inside the grace window.
ERASE_OLD_SEALED = (
    "UPDATE refresh_tokens SET successor_sealed = NULL"
    " WHERE successor_sealed IS NOT NULL AND spent_at < $1"
)
COUNT_FAMILY = "SELECT COUNT(*) FROM refresh_tokens WHERE family_id = $1"


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    password_hash: str
    status: str
    failed_logins: int
    locked_until: float | None
    created_at: float

    def locked_at(self, now: float) -> bool:
        return self.status == "locked" and (self.locked_until is None or self.locked_until > now)

    def public(self) -> dict[str, object]:
        return {"id": self.id, "email": self.email, "status": self.status,
                "failed_logins": self.failed_logins, "locked_until": self.locked_until,
                "created_at": self.created_at}


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    digest: bytes
    family_id: str
    generation: int
    issued_at: float
    spent_at: float | None
    successor_digest: bytes | None
    successor_sealed: bytes | None
    user_id: str
    client_id: str
    scopes: str
    family_created_at: float
    family_expires_at: float
    family_revoked_at: float | None
    user_status: str
    amr: str = "pwd"  # RFC 8176 methods of the family's login, space separated


def _user(row: Row | None) -> User | None:
    return None if row is None else User(**row)


def _record(row: Row | None) -> RefreshRecord | None:
    if row is None:
        return None
    values = dict(row)
    for name in ("digest", "successor_digest", "successor_sealed"):
        if values[name] is not None:
            values[name] = bytes(values[name])
    values["client_id"] = values["client_id"] or ""
    return RefreshRecord(**values)


class UserStore(Protocol):
    async def by_email(self, email: str) -> User | None: ...
    async def by_id(self, user_id: str) -> User | None: ...
    async def create(self, user_id: str, email: str, password_hash: str, now: float) -> bool: ...
    async def set_password_hash(self, user_id: str, password_hash: str, now: float) -> bool: ...
    async def record_failure(self, user_id: str, now: float) -> int: ...
    async def lock(self, user_id: str, until: float, now: float) -> None: ...
    async def reset_failures(self, user_id: str, now: float) -> None: ...
    async def set_status(self, conn: Connection, user_id: str, status: str, now: float
                         ) -> bool: ...


class SqlUserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def by_email(self, email: str) -> User | None:
        return _user(await self.db.fetchrow(SELECT_USER_BY_EMAIL, email))

    async def by_id(self, user_id: str) -> User | None:
        return _user(await self.db.fetchrow(SELECT_USER_BY_ID, user_id))

    async def create(self, user_id: str, email: str, password_hash: str, now: float) -> bool:
        """False when the email is taken (checked under a lock, so two concurrent
        creations of one email cannot both pass the check)."""
        async with self.db.transaction() as tx:
            await tx.lock("authd.users.create")
            if await tx.fetchrow(SELECT_USER_BY_EMAIL, email) is not None:
                return False
            await tx.execute(INSERT_USER, user_id, email, password_hash, now)
        return True

    async def set_password_hash(self, user_id: str, password_hash: str, now: float) -> bool:
        return await self.db.execute(SET_HASH, user_id, password_hash, now) == 1

    async def record_failure(self, user_id: str, now: float) -> int:
        return int(await self.db.fetchval(RECORD_FAILURE, user_id, now) or 0)

    async def lock(self, user_id: str, until: float, now: float) -> None:
        await self.db.execute(LOCK_USER, user_id, until, now)

    async def reset_failures(self, user_id: str, now: float) -> None:
        await self.db.execute(RESET_FAILURES, user_id, now)

    async def set_status(self, conn: Connection, user_id: str, status: str, now: float) -> bool:
        return await conn.execute(SET_STATUS, user_id, status, now) == 1


class RefreshStore(Protocol):
    async def create_family(
        self, conn: Connection, family_id: str, user_id: str, client_id: str, scopes: str,
        now: float, expires_at: float, amr: str = "pwd",
    ) -> None: ...
    async def insert_token(self, conn: Connection, digest: bytes, family_id: str,
                           generation: int, now: float) -> None: ...
    async def get(self, digest: bytes) -> RefreshRecord | None: ...
    async def get_for_spend(self, conn: Connection, digest: bytes) -> RefreshRecord | None: ...
    async def spent_at(self, conn: Connection, digest: bytes) -> float | None: ...
    async def spend(self, conn: Connection, digest: bytes, now: float, successor: bytes,
                    successor_sealed: bytes) -> bool: ...
    async def revoke_family(self, conn: Connection, family_id: str, reason: str,
                            now: float) -> bool: ...
    async def revoke_user_families(self, conn: Connection, user_id: str, reason: str,
                                   now: float) -> list[str]: ...
    async def erase_sealed_before(self, cutoff: float) -> int: ...
    async def count_family_tokens(self, family_id: str) -> int: ...


class SqlRefreshStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_family(
        self, conn: Connection, family_id: str, user_id: str, client_id: str, scopes: str,
        now: float, expires_at: float, amr: str = "pwd",
    ) -> None:
        await conn.execute(INSERT_FAMILY, family_id, user_id, client_id, scopes, now, expires_at,
                           amr)

    async def insert_token(self, conn: Connection, digest: bytes, family_id: str,
                           generation: int, now: float) -> None:
        await conn.execute(INSERT_REFRESH, digest, family_id, generation, now)

    async def get(self, digest: bytes) -> RefreshRecord | None:
        return _record(await self.db.fetchrow(SELECT_REFRESH, digest))

    async def get_for_spend(self, conn: Connection, digest: bytes) -> RefreshRecord | None:
        return _record(await conn.fetchrow(SELECT_REFRESH_FOR_SPEND, digest))

    async def spent_at(self, conn: Connection, digest: bytes) -> float | None:
        row = await conn.fetchrow(SELECT_SPENT_AT, digest)
        return None if row is None else row["spent_at"]

    async def spend(self, conn: Connection, digest: bytes, now: float, successor: bytes,
                    successor_sealed: bytes) -> bool:
        return await conn.execute(SPEND, digest, now, successor, successor_sealed) == 1

    async def revoke_family(self, conn: Connection, family_id: str, reason: str,
                            now: float) -> bool:
        revoked = await conn.execute(REVOKE_FAMILY, family_id, now, reason) == 1
        await conn.execute(ERASE_FAMILY_SEALED, family_id)
        return revoked

    async def revoke_user_families(self, conn: Connection, user_id: str, reason: str,
                                   now: float) -> list[str]:
        rows = await conn.fetch(REVOKE_USER_FAMILIES, user_id, now, reason)
        for row in rows:
            await conn.execute(ERASE_FAMILY_SEALED, row["id"])
        return [str(row["id"]) for row in rows]

    async def erase_sealed_before(self, cutoff: float) -> int:
        return await self.db.execute(ERASE_OLD_SEALED, cutoff)

    async def count_family_tokens(self, family_id: str) -> int:
        return int(await self.db.fetchval(COUNT_FAMILY, family_id))
