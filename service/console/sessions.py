"""Console sign-in and the server-side console session.

The browser holds only an opaque id (``cs_`` + 256 random bits) in a ``__Host-``
cookie; the row is found by its SHA-256 digest. A session lives until the first of:
sign-out, ``AUTHD_CONSOLE_IDLE_TIMEOUT`` without a request,
``AUTHD_CONSOLE_ABSOLUTE_TIMEOUT`` after sign-in, a subject revocation of its user
(the operator's "log out everywhere", also part of disabling a user), the user being
disabled or losing the ``admin`` role. Each of these is checked on every request.

Sign-in is the password (with every budget and lockout of ``/v1/login``), then a TOTP
code; an operator without TOTP is taken to enrolment first. A destructive action
takes a fresh code: the one entered with it, accepted once (the MFA domain's replay
rule), never one remembered from earlier.

The CSRF token is HMAC-SHA256 of a fixed label under the session id: bound to the
session, stored nowhere, and telling nothing about the id it derives from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from service.audit.log import AuditLog
from service.console.errors import CsrfRejected, FreshCodeRequired, NotOperator, SignInRequired
from service.console.store import ADMIN, ConsoleStore, SessionRecord
from service.mfa.factors import Enrolment

SESSION_PREFIX = "cs_"
# A session between the password and the code (or during enrolment) lasts at most
# this long: the second step is taken at once or not at all.
PENDING_LIFETIME = 600.0
ACTIVE = "active"
TOTP = "totp"
ENROL = "enrol"


class Account(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def email(self) -> str: ...


class PasswordCheck(Protocol):
    """What sign-in needs of the sessions domain (``LoginService.verify_password``)."""

    async def verify_password(self, unverified_email: str, unverified_password: str, *,
                              ip: str, user_agent: str | None) -> Account: ...


class SecondFactors(Protocol):
    """What sign-in needs of the MFA domain (``service.mfa.factors.Factors``)."""

    async def enrolled(self, user_id: str) -> bool: ...

    async def enrol(self, user_id: str, account: str, *, ip: str | None) -> Enrolment: ...

    async def confirm(self, user_id: str, unverified_code: str, *, ip: str) -> list[str]: ...

    async def verify(self, user_id: str, *, code: str | None, recovery_code: str | None,
                     ip: str, purpose: str) -> str: ...


class Sealer(Protocol):
    """AES-GCM under the KEK (``service.signing.kek.Kek``)."""

    def seal(self, plaintext: bytes, associated: str) -> bytes: ...

    def open(self, sealed: bytes, associated: str) -> bytes: ...


class SubjectRevocations(Protocol):
    async def is_revoked(self, claims: Mapping[str, Any]) -> bool: ...


@dataclass(frozen=True, slots=True, repr=False)
class ConsoleSession:
    """A live session as one request sees it. ``csrf_token`` goes into every form."""

    digest: bytes
    user_id: str
    email: str
    stage: str
    created_at: float
    csrf_token: str

    def __repr__(self) -> str:
        return f"ConsoleSession(user_id={self.user_id!r}, stage={self.stage!r})"


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def csrf_token_for(session_id: str) -> str:
    mac = hmac.new(session_id.encode(), b"authd console csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


class ConsoleSessions:
    def __init__(
        self, store: ConsoleStore, passwords: PasswordCheck, factors: SecondFactors,
        revocations: SubjectRevocations, sealer: Sealer, audit: AuditLog, *,
        idle_timeout: float,
        absolute_timeout: float, clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._factors = factors
        self._revocations = revocations
        self._sealer = sealer
        self._audit = audit
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout
        self._clock = clock

    # --- sign-in --------------------------------------------------------------------

    async def sign_in(self, unverified_email: str, unverified_password: str, *, ip: str,
                      user_agent: str | None) -> tuple[str, ConsoleSession]:
        """A new session after a correct password, at stage ``totp`` (or ``enrol`` for an
        operator without TOTP). InvalidCredentials, RateLimited or NotOperator else."""
        user = await self._passwords.verify_password(
            unverified_email, unverified_password, ip=ip, user_agent=user_agent)
        if ADMIN not in await self._store.roles(user.id):
            await self._audit.write("console.sign_in", "not_an_operator", subject=user.id,
                                    ip=ip)
            raise NotOperator("this account does not hold the admin role")
        stage = TOTP if await self._factors.enrolled(user.id) else ENROL
        session_id = SESSION_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        await self._store.create_session(_digest(session_id), user.id, stage, now)
        await self._audit.write("console.sign_in", "password_ok", actor=user.id,
                                subject=user.id, ip=ip, next_step=stage)
        return session_id, ConsoleSession(_digest(session_id), user.id, user.email, stage,
                                          now, csrf_token_for(session_id))

    async def complete_totp(self, session: ConsoleSession, unverified_code: str, *,
                            ip: str) -> None:
        """The second step: InvalidCode (counted against the user and address) else."""
        await self._factors.verify(session.user_id, code=unverified_code.strip(),
                                   recovery_code=None, ip=ip, purpose="console")
        await self._promote(session, ip, "otp")

    async def start_enrolment(self, session: ConsoleSession, *, ip: str) -> Enrolment:
        return await self._factors.enrol(session.user_id, session.email, ip=ip)

    async def confirm_enrolment(self, session: ConsoleSession, unverified_code: str, *,
                                ip: str) -> list[str]:
        """The recovery codes (shown once); the session is signed in."""
        codes = await self._factors.confirm(session.user_id, unverified_code.strip(), ip=ip)
        await self._promote(session, ip, "otp_enrolled")
        return codes

    async def _promote(self, session: ConsoleSession, ip: str, method: str) -> None:
        now = self._clock()
        if not await self._store.set_stage(session.digest, ACTIVE, now, now):
            raise SignInRequired("the session ended")
        await self._audit.write("console.sign_in", "ok", actor=session.user_id,
                                subject=session.user_id, ip=ip, method=method)

    # --- every request --------------------------------------------------------------

    async def resolve(self, session_id: str | None, *, stages: tuple[str, ...] = (ACTIVE,)
                      ) -> ConsoleSession:
        """The live session behind the cookie, at one of ``stages``; SignInRequired
        (pointing at the right step) otherwise. Touches its idle clock."""
        if not session_id or not session_id.startswith(SESSION_PREFIX) or len(session_id) > 64:
            raise SignInRequired()
        record = await self._store.session(_digest(session_id))
        now = self._clock()
        if record is None:
            raise SignInRequired()
        reason = await self._ended_because(record, now)
        if reason is not None:
            if record.ended_at is None:
                await self._store.end(record.digest, now)
                self._audit.record("console.session_end", reason, actor=record.user_id,
                                   subject=record.user_id)
            raise SignInRequired(f"the console session ended ({reason.replace('_', ' ')})")
        if record.stage not in stages:
            raise SignInRequired(to=_step_of(record.stage))
        await self._store.touch(record.digest, now)
        return ConsoleSession(record.digest, record.user_id, record.email, record.stage,
                              record.created_at, csrf_token_for(session_id))

    async def _ended_because(self, record: SessionRecord, now: float) -> str | None:
        lifetime = self.absolute_timeout if record.stage == ACTIVE else PENDING_LIFETIME
        if record.ended_at is not None:
            return "signed_out"
        if now - record.created_at >= lifetime:
            return "absolute_timeout"
        if now - record.last_seen_at >= self.idle_timeout:
            return "idle_timeout"
        if record.user_status == "disabled":
            return "user_disabled"
        if not record.is_admin:
            return "role_revoked"
        if await self._revocations.is_revoked({"sub": record.user_id,
                                               "iat": record.created_at}):
            return "subject_revoked"
        return None

    def check_csrf(self, session: ConsoleSession, unverified_token: str | None) -> None:
        if not unverified_token or not hmac.compare_digest(
                unverified_token.encode(), session.csrf_token.encode()):
            raise CsrfRejected("the form's CSRF token is missing or does not match the session")

    async def require_fresh_code(self, session: ConsoleSession, unverified_code: str | None,
                                 *, ip: str, action: str) -> None:
        """A destructive action proceeds only with a TOTP code entered with it."""
        code = (unverified_code or "").strip()
        if not code:
            raise FreshCodeRequired(f"{action} needs a current authenticator code")
        await self._factors.verify(session.user_id, code=code, recovery_code=None, ip=ip,
                                   purpose="console_confirm")

    async def hold_once(self, session: ConsoleSession, text: str) -> None:
        """Keep ``text`` (a new API key) for the one next page that shows it: across
        the redirect after the POST, so a reload shows it no more and re-sends nothing."""
        sealed = self._sealer.seal(text.encode(), "console-flash:" + session.digest.hex())
        await self._store.set_flash(session.digest, sealed)

    async def take_once(self, session: ConsoleSession) -> str | None:
        sealed = await self._store.take_flash(session.digest)
        if sealed is None:
            return None
        return self._sealer.open(sealed, "console-flash:" + session.digest.hex()).decode()

    async def sign_out(self, session: ConsoleSession, *, ip: str) -> None:
        await self._store.end(session.digest, self._clock())
        await self._audit.write("console.sign_out", "ok", actor=session.user_id,
                                subject=session.user_id, ip=ip)

    async def end_all(self, user_id: str) -> int:
        return await self._store.end_all(user_id, self._clock())

    async def purge(self) -> int:
        """Rows of sessions that cannot be live any more (kept a day for questions)."""
        return await self._store.purge(self._clock() - self.absolute_timeout - 86400.0)


def _step_of(stage: str) -> str:
    return {TOTP: "/console/login/code", ENROL: "/console/enrol"}.get(stage, "/console")
