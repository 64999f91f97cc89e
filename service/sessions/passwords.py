"""Argon2id password hashing off the event loop, and the rules for emails and passwords.

argon2-cffi releases the GIL while it hashes, so a small dedicated thread pool keeps
the event loop free: JWKS and token requests keep flowing while logins run. The pool
leaves one core to the event loop, and a bounded queue turns a login flood into quick
503s instead of an ever-growing backlog of 19 MiB jobs.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import unicodedata
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from service.errors import InvalidRequest, TemporarilyUnavailable
from service.sessions.errors import InvalidEmail, WeakPassword

MIN_PASSWORD_CHARS = 8
MAX_EMAIL_CHARS = 254
QUEUE_PER_THREAD = 64


def normalise_email(unverified: str) -> str:
    """Trim, NFKC, case-fold local part and domain; refuse what cannot be an address.

    Case-folding the local part departs from RFC 5321 (which lets it be case-sensitive)
    on purpose: no real mail system distinguishes ``Ann@`` from ``ann@``, and treating
    them as two accounts is a classic account-takeover trick.
    """
    email = unicodedata.normalize("NFKC", unverified.strip()).casefold()
    local, at, domain = email.rpartition("@")
    if (
        not at or not local or not domain or "@" in local or len(email) > MAX_EMAIL_CHARS
        or any(ch.isspace() or not ch.isprintable() for ch in email)
        or domain.startswith(".") or domain.endswith(".") or ".." in domain
    ):
        raise InvalidEmail("email must be an address such as name@example.com")
    return email


def normalise_password(unverified: str, max_bytes: int) -> str:
    """NFKC (NIST SP 800-63B §5.1.1.2), after refusing an over-long input unhashed.

    A lone surrogate (JSON lets ``"\\ud800"`` through) is no text any password was
    made of: it is refused here as malformed input, the same for every account, rather
    than reaching the hasher, which cannot encode it."""
    try:
        size = len(unverified.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequest("password must be valid Unicode text") from None
    if size > max_bytes:
        raise InvalidRequest(f"password must be at most {max_bytes} bytes")
    return unicodedata.normalize("NFKC", unverified)


def check_new_password(password: str, max_bytes: int) -> str:
    normalised = normalise_password(password, max_bytes)
    if len(normalised) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"password must be at least {MIN_PASSWORD_CHARS} characters")
    if not normalised.isprintable():
        raise WeakPassword("password must not contain control characters")
    return normalised


class PasswordHasher:
    """Argon2id with the configured cost; every call runs in the hashing pool."""

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int,
                 threads: int | None = None) -> None:
        self._argon2 = Argon2Hasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
            hash_len=32, salt_len=16, type=Type.ID,
        )
        cores = os.cpu_count() or 1
        self._threads = threads or max(1, cores - 1)
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="authd-argon2")
        self._slots = asyncio.Semaphore(self._threads * QUEUE_PER_THREAD)
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(16))

    async def _run(self, fn: object, *args: str) -> object:
        if self._slots.locked():
            raise TemporarilyUnavailable("too many logins in progress")
        async with self._slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, fn, *args)  # type: ignore[arg-type]

    async def hash(self, password: str) -> str:
        return str(await self._run(self._argon2.hash, password))

    async def verify(self, password_hash: str, password: str) -> bool:
        return bool(await self._run(self._verify, password_hash, password))

    async def verify_dummy(self, password: str) -> bool:
        """Spend exactly what a real check costs, for an email with no account."""
        await self._run(self._verify, self._dummy_hash, password)
        return False

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._argon2.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._argon2.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
