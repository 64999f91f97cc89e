"""TOTP credentials, recovery-code digests and login tickets in the database.

Every "use once" rule is one conditional UPDATE whose row count decides, so two
replicas (or two concurrent requests) can never both accept the same code, recovery
code or ticket: ``last_step < $2`` for TOTP steps, ``used_at IS NULL`` for the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from service.store import Connection, Database

PENDING = "pending"
ACTIVE = "active"

SELECT_TOTP = (
    "SELECT user_id, secret_sealed, state, last_step, created_at, activated_at"
    " FROM mfa_totp WHERE user_id = $1"
)
DELETE_PENDING_TOTP = "DELETE FROM mfa_totp WHERE user_id = $1 AND state = 'pending'"
INSERT_TOTP = (
    "INSERT INTO mfa_totp (user_id, secret_sealed, state, last_step, created_at)"
    " VALUES ($1, $2, 'pending', 0, $3)"
)
ACTIVATE_TOTP = (
    "UPDATE mfa_totp SET state = 'active', activated_at = $3, last_step = $2"
    " WHERE user_id = $1 AND state = 'pending' AND last_step < $2"
)
# RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the same OTP".
ACCEPT_STEP = (
    "UPDATE mfa_totp SET last_step = $2"
    " WHERE user_id = $1 AND state = 'active' AND last_step < $2"
)
DELETE_TOTP = "DELETE FROM mfa_totp WHERE user_id = $1"
DELETE_RECOVERY = "DELETE FROM mfa_recovery_codes WHERE user_id = $1"
INSERT_RECOVERY = (
    "INSERT INTO mfa_recovery_codes (user_id, digest, created_at) VALUES ($1, $2, $3)"
)
USE_RECOVERY = (
    "UPDATE mfa_recovery_codes SET used_at = $3"
    " WHERE user_id = $1 AND digest = $2 AND used_at IS NULL"
)
COUNT_RECOVERY_LEFT = (
    "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL"
)
INSERT_TICKET = (
    "INSERT INTO mfa_tickets (digest, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)"
)
SELECT_TICKET_USER = (
    "SELECT user_id FROM mfa_tickets WHERE digest = $1 AND used_at IS NULL AND expires_at > $2"
)
SPEND_TICKET = (
    "UPDATE mfa_tickets SET used_at = $2"
    " WHERE digest = $1 AND used_at IS NULL AND expires_at > $2"
)
PURGE_TICKETS = "DELETE FROM mfa_tickets WHERE expires_at < $1"


@dataclass(frozen=True, slots=True, repr=False)
class TotpRecord:
    user_id: str
    secret_sealed: bytes
    state: str
    last_step: int
    created_at: float
    activated_at: float | None

    @property
    def active(self) -> bool:
        return self.state == ACTIVE

    def __repr__(self) -> str:
        return f"TotpRecord(user_id={self.user_id!r}, state={self.state!r})"


class MfaStore(Protocol):
    async def totp(self, user_id: str) -> TotpRecord | None: ...
    async def put_pending(self, user_id: str, secret_sealed: bytes, now: float) -> bool: ...
    async def activate(self, conn: Connection, user_id: str, step: int, now: float
                       ) -> bool: ...
    async def accept_step(self, user_id: str, step: int) -> bool: ...
    async def remove(self, user_id: str) -> bool: ...
    async def replace_recovery(self, conn: Connection, user_id: str,
                               digests: Sequence[bytes], now: float) -> None: ...
    async def use_recovery(self, user_id: str, digest: bytes, now: float) -> bool: ...
    async def recovery_left(self, user_id: str) -> int: ...
    async def add_ticket(self, digest: bytes, user_id: str, now: float,
                         expires_at: float) -> None: ...
    async def ticket_user(self, digest: bytes, now: float) -> str | None: ...
    async def spend_ticket(self, digest: bytes, now: float) -> bool: ...
    async def purge_tickets(self, before: float) -> int: ...


class SqlMfaStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def totp(self, user_id: str) -> TotpRecord | None:
        row = await self.db.fetchrow(SELECT_TOTP, user_id)
        if row is None:
            return None
        return TotpRecord(**{**row, "secret_sealed": bytes(row["secret_sealed"]),
                             "last_step": int(row["last_step"])})

    async def put_pending(self, user_id: str, secret_sealed: bytes, now: float) -> bool:
        """A new pending enrolment replacing any pending one; False when one is active."""
        async with self.db.transaction() as tx:
            await tx.lock("authd.mfa.enrol")
            await tx.execute(DELETE_PENDING_TOTP, user_id)
            if await tx.fetchrow(SELECT_TOTP, user_id) is not None:
                return False
            await tx.execute(INSERT_TOTP, user_id, secret_sealed, now)
        return True

    async def activate(self, conn: Connection, user_id: str, step: int, now: float) -> bool:
        return await conn.execute(ACTIVATE_TOTP, user_id, step, now) == 1

    async def accept_step(self, user_id: str, step: int) -> bool:
        return await self.db.execute(ACCEPT_STEP, user_id, step) == 1

    async def remove(self, user_id: str) -> bool:
        """Delete the TOTP credential and every recovery code; True if there was one."""
        async with self.db.transaction() as tx:
            removed = await tx.execute(DELETE_TOTP, user_id)
            await tx.execute(DELETE_RECOVERY, user_id)
        return removed > 0

    async def replace_recovery(self, conn: Connection, user_id: str,
                               digests: Sequence[bytes], now: float) -> None:
        await conn.execute(DELETE_RECOVERY, user_id)
        for digest in digests:
            await conn.execute(INSERT_RECOVERY, user_id, digest, now)

    async def use_recovery(self, user_id: str, digest: bytes, now: float) -> bool:
        return await self.db.execute(USE_RECOVERY, user_id, digest, now) == 1

    async def recovery_left(self, user_id: str) -> int:
        return int(await self.db.fetchval(COUNT_RECOVERY_LEFT, user_id) or 0)

    async def add_ticket(self, digest: bytes, user_id: str, now: float,
                         expires_at: float) -> None:
        await self.db.execute(INSERT_TICKET, digest, user_id, now, expires_at)

    async def ticket_user(self, digest: bytes, now: float) -> str | None:
        value = await self.db.fetchval(SELECT_TICKET_USER, digest, now)
        return None if value is None else str(value)

    async def spend_ticket(self, digest: bytes, now: float) -> bool:
        return await self.db.execute(SPEND_TICKET, digest, now) == 1

    async def purge_tickets(self, before: float) -> int:
        return await self.db.execute(PURGE_TICKETS, before)
