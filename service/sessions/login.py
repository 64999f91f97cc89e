"""Password login (``POST /v1/login``): no enumeration, rate limits and lockout.

An unknown email, a wrong password, a locked and a disabled account all cost one
Argon2id verification (against a dummy hash when there is no account) and all get
the same answer. Failed attempts count against the caller's IP and against the
account (keyed by a digest of the email, so unknown emails are limited alike) in the
shared rate limiter; an existing account is also locked after
``AUTHD_LOGIN_MAX_FAILURES`` failures, for ``AUTHD_LOGIN_LOCKOUT`` doubled with each
further failure (capped at a day). The operator sees the lock (user status, audit).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Protocol

from service.audit.log import AuditLog
from service.config import Rate
from service.errors import RateLimited
from service.observability.metrics import LOGIN_ATTEMPTS
from service.ratelimit import FAILED_LOGIN_LIMIT, RateLimiter
from service.sessions.errors import InvalidCredentials
from service.sessions.passwords import PasswordHasher, normalise_email, normalise_password
from service.sessions.refresh import RefreshService, SessionTokens
from service.sessions.store import User, UserStore

MAX_LOCKOUT = 86400.0
MAX_USER_AGENT = 256


# An id no user can have (ids are generated with a prefix and random characters).
NO_SUCH_USER = "-"


@dataclass(frozen=True, slots=True, repr=False)
class MfaChallenge:
    """The answer to a correct password when a second factor is still needed: a
    single-use ticket for ``POST /v1/login/mfa``; no token of any kind yet."""

    ticket: str
    expires_in: int
    methods: tuple[str, ...]

    def __repr__(self) -> str:
        return f"MfaChallenge(expires_in={self.expires_in})"


class SecondFactor(Protocol):
    """What the login needs of the MFA domain (service/mfa), attached when it is wired."""

    async def after_password(self, user_id: str, *, ip: str, user_agent: str
                             ) -> MfaChallenge | None:
        """None to finish the login now, or the challenge to answer instead."""
        ...

    async def logged_in(self, user_id: str, *, ip: str, user_agent: str, amr: str,
                        sid: str) -> None:
        """A login completed (history for the anomaly signals)."""
        ...


class LoginService:
    def __init__(
        self, users: UserStore, hasher: PasswordHasher, refresh: RefreshService,
        limiter: RateLimiter, audit: AuditLog, *, failed_rate: Rate, max_failures: int,
        lockout: float, password_max_bytes: int,
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._refresh = refresh
        self._limiter = limiter
        self._audit = audit
        self._failed_rate = failed_rate
        self._max_failures = max_failures
        self._lockout = lockout
        self._max_bytes = password_max_bytes
        self.second_factor: SecondFactor | None = None

    def lockout_for(self, failures: int) -> float:
        """How long the ``failures``-th consecutive failure locks the account."""
        extra = min(max(0, failures - self._max_failures), 20)
        return min(self._lockout * float(1 << extra), MAX_LOCKOUT)

    async def login(self, unverified_email: str, unverified_password: str, *, ip: str,
                    user_agent: str | None, dpop_jkt: str | None = None
                    ) -> SessionTokens | MfaChallenge:
        agent = (user_agent or "")[:MAX_USER_AGENT]
        user = await self.verify_password(unverified_email, unverified_password, ip=ip,
                                          user_agent=agent)
        challenge = None if self.second_factor is None else (
            await self.second_factor.after_password(user.id, ip=ip, user_agent=agent))
        if challenge is not None:
            self._audit.record("login", "mfa_required", subject=user.id, ip=ip,
                               user_agent=agent)
            return challenge
        await self._reset(user)
        tokens = await self._refresh.start_family(user.id, dpop_jkt=dpop_jkt)
        self._audit.record("login", "ok", subject=user.id, ip=ip, user_agent=agent,
                           sid=tokens.sid, amr="pwd")
        if self.second_factor is not None:
            await self.second_factor.logged_in(user.id, ip=ip, user_agent=agent, amr="pwd",
                                               sid=tokens.sid)
        return tokens

    async def verify_password(self, unverified_email: str, unverified_password: str, *,
                              ip: str, user_agent: str | None) -> User:
        """The user whose password this is, with every budget, lockout and audit rule
        of the login; InvalidCredentials otherwise. No token is issued: the operator
        console (service/console) signs in with this and a TOTP code.

        The failure count is not reset here: a caller who holds the password must not
        clear the lockout between code guesses, so the second factor resets it."""
        password = normalise_password(unverified_password, self._max_bytes)
        email = normalise_email(unverified_email)
        account = hashlib.sha256(email.encode()).hexdigest()[:32]
        agent = (user_agent or "")[:MAX_USER_AGENT]
        for limit, subject in ((FAILED_LOGIN_LIMIT, ip), ("login_account", account)):
            wait = self._limiter.blocked(limit, subject, self._failed_rate)
            if wait is not None:
                LOGIN_ATTEMPTS.labels("rate_limited").inc()
                self._audit.record("login", "rate_limited", ip=ip, user_agent=agent,
                                   account=account, limit=limit)
                raise RateLimited(wait)
        user = await self._users.by_email(email)
        now = time.time()
        if user is None:
            await self._hasher.verify_dummy(password)
            result = "unknown_email"
        else:
            matches = await self._hasher.verify(user.password_hash, password)
            if user.status == "disabled":
                result = "disabled"
            elif user.locked_at(now):
                result = "locked"
            else:
                result = "ok" if matches else "wrong_password"
        LOGIN_ATTEMPTS.labels(result).inc()
        if user is None or result != "ok":
            await self._failed(user, result, account, ip, agent, now)
            raise InvalidCredentials()
        await self._succeeded(user, password, now)
        return user

    async def _failed(self, user: User | None, result: str, account: str, ip: str,
                      agent: str, now: float) -> None:
        await self._limiter.hit(FAILED_LOGIN_LIMIT, ip, self._failed_rate)
        await self._limiter.hit("login_account", account, self._failed_rate)
        self._audit.record("login", result, subject=user.id if user else None, ip=ip,
                           user_agent=agent, account=account)
        if user is None or result != "wrong_password":
            # The same round trip a wrong password makes, touching no row: the
            # failure bookkeeping must not tell an unknown, locked or disabled
            # account from a known one by its timing.
            await self._users.record_failure(NO_SUCH_USER, now)
            return
        failures = await self._users.record_failure(user.id, now)
        if failures >= self._max_failures:
            until = now + self.lockout_for(failures)
            await self._users.lock(user.id, until, now)
            self._audit.record("user.locked", "ok", subject=user.id, ip=ip,
                               failures=failures, locked_until=until)

    async def _reset(self, user: User) -> None:
        if user.failed_logins or user.status == "locked":
            await self._users.reset_failures(user.id, time.time())

    async def _succeeded(self, user: User, password: str, now: float) -> None:
        if self._hasher.needs_rehash(user.password_hash):
            # Parameters changed since this hash was made: upgrade it now that the
            # plain password is at hand (the only moment it ever is).
            await self._users.set_password_hash(user.id, await self._hasher.hash(password), now)
