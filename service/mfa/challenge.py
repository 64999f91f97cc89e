"""The second step of a login: the ticket between a correct password and the code.

``after_password`` decides whether a login needs the second factor and, if so, hands
out a ticket: ``mt_`` + 256 random bits, stored as a SHA-256 digest, valid for five
minutes and spent by the one completion that succeeds. ``complete`` takes the ticket
with a TOTP code or a recovery code and starts the session with ``amr`` ``pwd otp``.

When is the second factor needed? For an enrolled user, on every login under the
default policy (``log``). Under ``step_up`` it is needed when the login is not
familiar — a network or device family not among the user's recent completed logins,
a rapid change of networks, or no history at all — and skipped for a familiar one
(risk-based MFA: the operator trades a prompt on every login for a prompt on every
unusual one). A user without TOTP cannot be stepped up; the anomaly is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time

from service.anomaly.monitor import LoginMonitor
from service.audit.log import AuditLog
from service.mfa.errors import MfaRejected
from service.mfa.factors import OTP, RECOVERY_CODE, Factors
from service.mfa.store import MfaStore
from service.sessions.login import MfaChallenge
from service.sessions.refresh import RefreshService, SessionTokens
from service.sessions.store import UserStore

TICKET_TTL = 300
TICKET_PREFIX = "mt_"
_TICKET = re.compile(r"^mt_[A-Za-z0-9_-]{43}$")
MFA_AMR = "pwd otp"


def _ticket_digest(unverified_ticket: str) -> bytes | None:
    if not _TICKET.match(unverified_ticket):
        return None
    return hashlib.sha256(unverified_ticket.encode()).digest()


class LoginSecondFactor:
    """The sessions domain's ``SecondFactor`` (service/sessions/login.py)."""

    def __init__(self, store: MfaStore, factors: Factors, users: UserStore,
                 refresh: RefreshService, monitor: LoginMonitor, audit: AuditLog, *,
                 policy: str) -> None:
        self._store = store
        self._factors = factors
        self._users = users
        self._refresh = refresh
        self._monitor = monitor
        self._audit = audit
        self._policy = policy

    async def after_password(self, user_id: str, *, ip: str, user_agent: str
                             ) -> MfaChallenge | None:
        assessment = await self._monitor.assess(user_id, ip=ip, user_agent=user_agent)
        if not await self._factors.enrolled(user_id):
            return None
        if self._policy == "step_up" and assessment.familiar:
            return None
        ticket = TICKET_PREFIX + base64.urlsafe_b64encode(
            secrets.token_bytes(32)).rstrip(b"=").decode()
        now = time.time()
        await self._store.add_ticket(hashlib.sha256(ticket.encode()).digest(), user_id, now,
                                     now + TICKET_TTL)
        return MfaChallenge(ticket, TICKET_TTL, (OTP, RECOVERY_CODE))

    async def logged_in(self, user_id: str, *, ip: str, user_agent: str, amr: str,
                        sid: str) -> None:
        await self._monitor.record(user_id, ip=ip, user_agent=user_agent, amr=amr)

    async def complete(self, unverified_ticket: str, *, code: str | None,
                       recovery_code: str | None, ip: str, user_agent: str,
                       dpop_jkt: str | None = None) -> SessionTokens:
        """``POST /v1/login/mfa``: one answer (MfaRejected) for every failure."""
        digest = _ticket_digest(unverified_ticket)
        now = time.time()
        user_id = None if digest is None else await self._store.ticket_user(digest, now)
        if digest is None or user_id is None:
            await self._factors.refuse_unknown(ip)
            self._audit.record("login.mfa", "invalid_ticket", ip=ip)
            raise MfaRejected()
        await self._factors.not_blocked(user_id, ip)
        user = await self._users.by_id(user_id)
        if user is None or user.status == "disabled" or user.locked_at(now):
            self._audit.record("login.mfa", "account_unusable", subject=user_id, ip=ip)
            raise MfaRejected()
        method = await self._factors.check(user_id, code=code, recovery_code=recovery_code,
                                           ip=ip, purpose="login")
        if method is None:
            raise MfaRejected()
        if not await self._store.spend_ticket(digest, time.time()):
            self._audit.record("login.mfa", "ticket_spent", subject=user_id, ip=ip)
            raise MfaRejected()
        await self._users.reset_failures(user_id, time.time())
        tokens = await self._refresh.start_family(user_id, amr=MFA_AMR, dpop_jkt=dpop_jkt)
        self._audit.record("login", "ok", subject=user_id, ip=ip, user_agent=user_agent,
                           sid=tokens.sid, amr=MFA_AMR, method=method)
        await self.logged_in(user_id, ip=ip, user_agent=user_agent, amr=MFA_AMR, sid=tokens.sid)
        return tokens
