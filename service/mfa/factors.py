"""A user's second factors: TOTP enrolment, verification, disabling, recovery codes.

Failed codes are expensive for the guesser, whichever endpoint they arrive at: each
one counts against the user (``MFA_FAILED_RATE``, 5 per 5 minutes) and against the
caller's address (``AUTHD_FAILED_AUTH_RATE``, shared with password logins) in the
shared rate limiter, and towards the account lockout of the password login
(``AUTHD_LOGIN_MAX_FAILURES``, doubling lock times up to a day). With ±1 step a guess
hits one of 3 codes in 10^6, so a guesser needs ~333,000 guesses for even odds; the
limiter alone allows 1,440 a day and the lockout far fewer, so 1 % of the code space
(10,000 guesses) is out of reach.

Neither secrets nor codes ever leave this module except the enrolment answer itself:
audit events and logs carry the user id, the outcome and a reason word.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from service.audit.log import AuditLog
from service.config import Rate
from service.errors import RateLimited
from service.mfa import recovery, totp
from service.mfa.errors import AlreadyEnrolled, InvalidCode, NotEnrolled
from service.mfa.store import MfaStore, TotpRecord
from service.ratelimit import FAILED_LOGIN_LIMIT, RateLimiter
from service.sessions.store import UserStore
from service.signing.kek import Kek, SealError
from service.store import Database

log = structlog.get_logger("authd.mfa")

MFA_FAILED_RATE = Rate(5, 300.0)
USER_LIMIT = "mfa_user"
IP_LIMIT = FAILED_LOGIN_LIMIT  # the address budget password logins spend too

OTP = "otp"
RECOVERY_CODE = "recovery_code"


def _associated(user_id: str) -> str:
    """Associated data of a sealed TOTP secret: the user it belongs to."""
    return f"totp:{user_id}"


@dataclass(frozen=True, slots=True, repr=False)
class Enrolment:
    """A pending enrolment at the one moment its secret is shown."""

    secret: str
    uri: str

    def as_dict(self) -> dict[str, Any]:
        return {"secret": self.secret, "otpauth_uri": self.uri, "state": "pending",
                "digits": totp.DIGITS, "period": totp.STEP_SECONDS, "algorithm": "SHA1"}

    def __repr__(self) -> str:
        return "Enrolment(**********)"


class Factors:
    def __init__(
        self, db: Database, store: MfaStore, users: UserStore, kek: Kek, limiter: RateLimiter,
        audit: AuditLog, *, issuer_name: str, failed_rate: Rate, max_failures: int,
        lockout_for: Callable[[int], float],
    ) -> None:
        self._db = db
        self._store = store
        self._users = users
        self._kek = kek
        self._limiter = limiter
        self._audit = audit
        self._issuer_name = issuer_name
        self._failed_rate = failed_rate
        self._max_failures = max_failures
        self._lockout_for = lockout_for

    async def enrolled(self, user_id: str) -> bool:
        record = await self._store.totp(user_id)
        return record is not None and record.active

    async def status(self, user_id: str) -> dict[str, Any]:
        record = await self._store.totp(user_id)
        return {
            "totp": "none" if record is None else record.state,
            "activated_at": None if record is None else record.activated_at,
            "recovery_codes_left": await self._store.recovery_left(user_id),
        }

    async def enrol(self, user_id: str, account: str, *, ip: str | None) -> Enrolment:
        """Start (or restart) an enrolment; it counts only once a code confirms it."""
        secret = totp.new_secret()
        sealed = self._kek.seal(secret.encode(), _associated(user_id))
        if not await self._store.put_pending(user_id, sealed, time.time()):
            raise AlreadyEnrolled("TOTP is already enrolled; disable it first")
        await self._audit.write("mfa.enrol", "pending", actor=user_id, subject=user_id, ip=ip)
        return Enrolment(secret, totp.provisioning_uri(secret, account, self._issuer_name))

    async def confirm(self, user_id: str, unverified_code: str, *, ip: str) -> list[str]:
        """Complete a pending enrolment with its first valid code; return the recovery
        codes (shown this once)."""
        await self.not_blocked(user_id, ip)
        record = await self._store.totp(user_id)
        if record is None or record.active:
            raise NotEnrolled("no pending TOTP enrolment") if record is None else \
                AlreadyEnrolled("TOTP is already enrolled")
        now = time.time()
        step = totp.matching_step(self._secret(record), unverified_code, now)
        codes = recovery.new_codes()
        activated = False
        if step is not None:
            async with self._db.transaction() as tx:
                activated = await self._store.activate(tx, user_id, step, now)
                if activated:
                    await self._store.replace_recovery(
                        tx, user_id, [recovery.digest(user_id, recovery.normalise(c) or "")
                                      for c in codes], now)
        if not activated:
            await self._failed(user_id, ip, "enrol", "wrong_code")
            raise InvalidCode("the code does not match the enrolled secret")
        await self._audit.write("mfa.enrol", "ok", actor=user_id, subject=user_id, ip=ip)
        return codes

    async def check(self, user_id: str, *, code: str | None, recovery_code: str | None,
                    ip: str, purpose: str) -> str | None:
        """The method that matched (``otp`` or ``recovery_code``), each code accepted
        at most once; None (after counting the failure) when nothing matched.
        Raises RateLimited while the user or the address is over its budget."""
        await self.not_blocked(user_id, ip)
        record = await self._store.totp(user_id)
        now = time.time()
        if record is None or not record.active:
            reason = "not_enrolled"
        elif code is not None:
            step = totp.matching_step(self._secret(record), code, now)
            if step is not None and await self._store.accept_step(user_id, step):
                return OTP
            reason = "wrong_code" if step is None else "replayed_code"
        elif recovery_code is not None:
            normalised = recovery.normalise(recovery_code)
            if normalised is not None and await self._store.use_recovery(
                    user_id, recovery.digest(user_id, normalised), now):
                left = await self._store.recovery_left(user_id)
                self._audit.record("mfa.recovery_code_used", "ok", subject=user_id, ip=ip,
                                   remaining=left)
                return RECOVERY_CODE
            reason = "wrong_recovery"
        else:
            reason = "no_code"
        await self._failed(user_id, ip, purpose, reason)
        return None

    async def verify(self, user_id: str, *, code: str | None, recovery_code: str | None,
                     ip: str, purpose: str) -> str:
        method = await self.check(user_id, code=code, recovery_code=recovery_code, ip=ip,
                                  purpose=purpose)
        if method is None:
            raise InvalidCode("the code is invalid or was already used")
        await self._users.reset_failures(user_id, time.time())
        return method

    async def disable(self, user_id: str, *, code: str | None, recovery_code: str | None,
                      ip: str) -> None:
        """The user turns TOTP off, proving the factor once more."""
        if not await self.enrolled(user_id):
            raise NotEnrolled("TOTP is not enrolled")
        method = await self.verify(user_id, code=code, recovery_code=recovery_code, ip=ip,
                                   purpose="disable")
        await self._store.remove(user_id)
        await self._audit.write("mfa.disable", "ok", actor=user_id, subject=user_id, ip=ip,
                                method=method)

    async def reset(self, user_id: str, *, actor: str, ip: str | None = None) -> bool:
        """The operator removes a user's TOTP and recovery codes (lost device)."""
        removed = await self._store.remove(user_id)
        await self._audit.write("mfa.reset", "ok" if removed else "not_enrolled", actor=actor,
                                subject=user_id, ip=ip)
        return removed

    async def regenerate(self, user_id: str, *, code: str, ip: str) -> list[str]:
        """New recovery codes for a current TOTP code; every old one stops working."""
        if not await self.enrolled(user_id):
            raise NotEnrolled("TOTP is not enrolled")
        await self.verify(user_id, code=code, recovery_code=None, ip=ip, purpose="recovery")
        codes = recovery.new_codes()
        async with self._db.transaction() as tx:
            await self._store.replace_recovery(
                tx, user_id, [recovery.digest(user_id, recovery.normalise(c) or "")
                              for c in codes], time.time())
        await self._audit.write("mfa.recovery_codes", "regenerated", actor=user_id,
                                subject=user_id, ip=ip)
        return codes

    async def refuse_unknown(self, ip: str) -> None:
        """A second step with no usable ticket still spends the address's budget."""
        wait = self._limiter.blocked(IP_LIMIT, ip, self._failed_rate)
        if wait is not None:
            raise RateLimited(wait)
        await self._limiter.hit(IP_LIMIT, ip, self._failed_rate)

    # --- internals -------------------------------------------------------------

    def _secret(self, record: TotpRecord) -> str:
        try:
            return self._kek.open(record.secret_sealed, _associated(record.user_id)).decode()
        except SealError:
            log.error("mfa.secret_unsealable", user=record.user_id)
            raise

    async def not_blocked(self, user_id: str, ip: str) -> None:
        """RateLimited while the user or the address is over its failed-code budget."""
        for limit, subject, rate in ((USER_LIMIT, user_id, MFA_FAILED_RATE),
                                     (IP_LIMIT, ip, self._failed_rate)):
            wait = self._limiter.blocked(limit, subject, rate)
            if wait is not None:
                self._audit.record("mfa.verify", "rate_limited", subject=user_id, ip=ip,
                                   limit=limit)
                raise RateLimited(wait)

    async def _failed(self, user_id: str, ip: str, purpose: str, reason: str) -> None:
        await self._limiter.hit(USER_LIMIT, user_id, MFA_FAILED_RATE)
        await self._limiter.hit(IP_LIMIT, ip, self._failed_rate)
        self._audit.record("mfa.verify", "failure", subject=user_id, ip=ip, purpose=purpose,
                           reason=reason)
        now = time.time()
        failures = await self._users.record_failure(user_id, now)
        if failures >= self._max_failures:
            until = now + self._lockout_for(failures)
            await self._users.lock(user_id, until, now)
            self._audit.record("user.locked", "ok", subject=user_id, ip=ip, failures=failures,
                               locked_until=until, cause="mfa")
