"""Users: creation, passwords, and the operator's disable / unlock.

Disabling a user revokes everything of theirs: every refresh family (in the same
transaction as the status change) and, through a subject revocation, every access
token issued before now.
"""

from __future__ import annotations

import secrets
import time

from service.audit.log import AuditLog
from service.revocation.service import RevocationService
from service.sessions.errors import UserExists, UserNotFound
from service.sessions.passwords import PasswordHasher, check_new_password, normalise_email
from service.sessions.store import RefreshStore, User, UserStore
from service.store import Database


class UserService:
    def __init__(
        self, db: Database, users: UserStore, refresh: RefreshStore, hasher: PasswordHasher,
        revocations: RevocationService, audit: AuditLog, *, password_max_bytes: int,
    ) -> None:
        self._db = db
        self._users = users
        self._refresh = refresh
        self._hasher = hasher
        self._revocations = revocations
        self._audit = audit
        self._max_bytes = password_max_bytes

    async def find(self, reference: str) -> User:
        """By id, or by email when the reference contains ``@``."""
        user = (await self._users.by_email(normalise_email(reference)) if "@" in reference
                else await self._users.by_id(reference))
        if user is None:
            raise UserNotFound("no such user")
        return user

    async def create(self, unverified_email: str, password: str, *, actor: str | None,
                     ip: str | None = None) -> User:
        email = normalise_email(unverified_email)
        password = check_new_password(password, self._max_bytes)
        password_hash = await self._hasher.hash(password)
        user_id = "usr_" + secrets.token_urlsafe(12)
        if not await self._users.create(user_id, email, password_hash, time.time()):
            await self._audit.write("user.create", "conflict", actor=actor, ip=ip)
            raise UserExists("a user with this email already exists")
        await self._audit.write("user.create", "ok", actor=actor, subject=user_id, ip=ip)
        return await self.find(user_id)

    async def set_password(self, reference: str, password: str, *, actor: str | None,
                           ip: str | None = None) -> User:
        user = await self.find(reference)
        password = check_new_password(password, self._max_bytes)
        await self._users.set_password_hash(user.id, await self._hasher.hash(password),
                                            time.time())
        await self._audit.write("user.set_password", "ok", actor=actor, subject=user.id, ip=ip)
        return await self.find(user.id)

    async def disable(self, reference: str, *, actor: str | None, ip: str | None = None
                      ) -> User:
        user = await self.find(reference)
        now = time.time()
        async with self._db.transaction() as tx:
            await self._users.set_status(tx, user.id, "disabled", now)
            families = await self._refresh.revoke_user_families(tx, user.id, "user_disabled", now)
        await self._revocations.revoke_subject(user.id, now)
        await self._audit.write("user.disable", "ok", actor=actor, subject=user.id, ip=ip,
                                families_revoked=len(families))
        return await self.find(user.id)

    async def unlock(self, reference: str, *, actor: str | None, ip: str | None = None
                     ) -> User:
        """Clear a lockout (a disabled user stays disabled: that takes ``enable``).
        One conditional statement, so a disable committed meanwhile is never undone."""
        user = await self.find(reference)
        await self._users.reset_failures(user.id, time.time())
        await self._audit.write("user.unlock", "ok", actor=actor, subject=user.id, ip=ip)
        return await self.find(user.id)
