"""Operator accounts: users holding the ``admin`` role (``authd users grant-admin`` /
``revoke-admin``, ``PUT``/``DELETE /admin/users/{user}/roles/admin``), each change
audited with who made it. Losing the role ends the user's console sessions at once.

The role opens the console only; the admin API keeps taking tokens or API keys with
the ``authd:admin`` scope, and the bootstrap admin API key stays the break-glass path.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from service.audit.log import AuditLog
from service.console.sessions import Account
from service.console.store import ADMIN, ConsoleStore


class UserFinder(Protocol):
    async def find(self, reference: str) -> Account: ...


class SessionEnder(Protocol):
    async def end_all(self, user_id: str) -> int: ...


class Operators:
    def __init__(self, store: ConsoleStore, users: UserFinder, sessions: SessionEnder,
                 audit: AuditLog) -> None:
        self._store = store
        self._users = users
        self._sessions = sessions
        self._audit = audit

    async def grant_admin(self, reference: str, *, actor: str, ip: str | None = None
                          ) -> dict[str, Any]:
        user = await self._users.find(reference)
        granted = await self._store.grant(user.id, ADMIN, time.time(), actor)
        await self._audit.write("user.grant_admin", "ok" if granted else "unchanged",
                                actor=actor, subject=user.id, ip=ip)
        return await self.view(user)

    async def revoke_admin(self, reference: str, *, actor: str, ip: str | None = None
                           ) -> dict[str, Any]:
        user = await self._users.find(reference)
        revoked = await self._store.revoke(user.id, ADMIN)
        ended = await self._sessions.end_all(user.id)
        await self._audit.write("user.revoke_admin", "ok" if revoked else "unchanged",
                                actor=actor, subject=user.id, ip=ip, console_sessions_ended=ended)
        return await self.view(user)

    async def roles(self, user_id: str) -> list[str]:
        return await self._store.roles(user_id)

    async def view(self, user: Account) -> dict[str, Any]:
        return {"id": user.id, "email": user.email, "roles": await self._store.roles(user.id)}

    async def operators(self) -> list[dict[str, str]]:
        return [{"id": uid, "email": email} for uid, email in await self._store.holders(ADMIN)]
