"""Refresh-token families: one per login, rotated on every use, revoked as a whole on
reuse (DESIGN §4).

A refresh token is ``rt_`` + 256 random bits (base64url); only its SHA-256 digest is
stored. Each use spends it and mints a successor atomically (one statement, or one
transaction under the token's row lock), so two concurrent uses can never both mint
successors.

The reuse grace window (``AUTHD_REFRESH_REUSE_GRACE``, default 10 s) exists for
mobile clients on flaky networks: the server rotates, the answer is lost, the app
retries with the same token. Inside the window such a retry gets the *same*
successor (kept sealed under the KEK, with the spent token's digest as associated
data, and erased once the window has passed) plus a fresh access token — provided
that successor has not been used yet, because a client that already holds it has no
reason to retry. Outside the window, or once the successor was used, a spent token
coming back means two parties hold the family: it is treated as theft.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from service.audit.log import AuditLog
from service.background import Periodic
from service.errors import InvalidScope
from service.observability.metrics import REFRESH_REUSE, REFRESHES
from service.revocation.service import RevocationService
from service.revocation.store import Revocation
from service.sessions.errors import RefreshRejected
from service.sessions.store import RefreshRecord, RefreshStore
from service.signing.kek import Kek, SealError
from service.store import Database

log = structlog.get_logger("authd.sessions.refresh")

PREFIX = "rt_"
_SHAPE = re.compile(r"^rt_[A-Za-z0-9_-]{43}$")
LOGIN_CLIENT_ID = "authd-login"
ERASE_INTERVAL = 5.0


class IssuedAccessToken(Protocol):
    @property
    def token(self) -> str: ...
    @property
    def expires_at(self) -> int: ...


class AccessTokenIssuer(Protocol):
    async def issue(self, *, subject: str, audience: str, scope: str, client_id: str,
                    ttl: float, extra: dict[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True, slots=True, repr=False)
class SessionTokens:
    """What a login or a refresh hands back. repr hides both secrets."""

    access_token: str
    access_expires_at: int
    refresh_token: str
    refresh_expires_at: float
    sid: str
    subject: str
    scope: str
    # RFC 9449: the access token carries cnf.jkt (token_type DPoP).
    dpop_bound: bool = False

    def __repr__(self) -> str:
        return f"SessionTokens(sid={self.sid!r}, subject={self.subject!r})"

    def as_response(self, *, include_refresh: bool = True) -> dict[str, Any]:
        now = time.time()
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "DPoP" if self.dpop_bound else "Bearer",
            "expires_in": max(0, int(self.access_expires_at - now)),
            "refresh_token_expires_in": max(0, int(self.refresh_expires_at - now)),
        }
        if self.scope:
            body["scope"] = self.scope
        if include_refresh:
            body["refresh_token"] = self.refresh_token
        return body


def authentication_claims(amr: str) -> dict[str, Any]:
    """``amr`` (RFC 8176 method names) and ``acr`` for a user token: ``aal2`` (NIST SP
    800-63B) once a one-time password was part of the login, ``aal1`` for a password
    alone, so that a downstream service can demand the second factor."""
    methods = amr.split() or ["pwd"]
    return {"amr": methods, "acr": "aal2" if "otp" in methods else "aal1"}


def new_refresh_token() -> str:
    return PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def successor_associated(spent_digest: bytes) -> str:
    """Associated data of a sealed successor: the digest of the token it succeeds, so
    a sealed successor copied onto another row does not open."""
    return spent_digest.hex()


def digest_of(unverified_token: str) -> bytes | None:
    """The storage digest, or None for anything that is not a refresh token's shape
    (refused without touching storage)."""
    if not _SHAPE.match(unverified_token):
        return None
    return hashlib.sha256(unverified_token.encode()).digest()


class RefreshService:
    def __init__(
        self,
        db: Database,
        store: RefreshStore,
        kek: Kek,
        issuer: AccessTokenIssuer,
        revocations: RevocationService,
        audit: AuditLog,
        *,
        audience: str,
        access_ttl: float,
        refresh_ttl: float,
        grace: float,
    ) -> None:
        self._db = db
        self._store = store
        self._kek = kek
        self._issuer = issuer
        self._revocations = revocations
        self._audit = audit
        self._audience = audience
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl
        self._grace = grace
        self._eraser = Periodic("authd-refresh-erase", ERASE_INTERVAL,
                                self.erase_expired_successors)

    async def _access_token(self, user_id: str, family_id: str, client_id: str,
                            scope: str, amr: str, dpop_jkt: str | None = None) -> Any:
        extra = {"sid": family_id, **authentication_claims(amr)}
        if dpop_jkt is not None:
            extra["cnf"] = {"jkt": dpop_jkt}
        return await self._issuer.issue(
            subject=user_id, audience=self._audience, scope=scope,
            client_id=client_id or LOGIN_CLIENT_ID, ttl=self._access_ttl, extra=extra,
        )

    async def start_family(self, user_id: str, *, client_id: str = LOGIN_CLIENT_ID,
                           scope: str = "", amr: str = "pwd",
                           dpop_jkt: str | None = None) -> SessionTokens:
        """A new session (login): a family whose lifetime is absolute, its first token
        and an access token carrying the family id as ``sid``; ``amr`` (how the login
        was authenticated) is kept with the family so refreshed tokens carry it too.
        ``dpop_jkt`` (a DPoP proof's key, RFC 9449 §5) binds the family: its refresh
        tokens then work only with a proof by that key, and its access tokens carry
        ``cnf.jkt``."""
        now = time.time()
        family_id = "sid_" + secrets.token_urlsafe(16)
        token = new_refresh_token()
        digest = hashlib.sha256(token.encode()).digest()
        expires_at = now + self._refresh_ttl
        async with self._db.transaction() as tx:
            await self._store.create_family(tx, family_id, user_id, client_id, scope, now,
                                            expires_at, amr, dpop_jkt)
            await self._store.insert_token(tx, digest, family_id, 0, now)
        access = await self._access_token(user_id, family_id, client_id, scope, amr, dpop_jkt)
        return SessionTokens(access.token, access.expires_at, token, expires_at, family_id,
                             user_id, scope, dpop_jkt is not None)

    async def rotate(self, unverified_token: str, *, ip: str | None = None,
                     scope: str | None = None, dpop_jkt: str | None = None) -> SessionTokens:
        """Spend the token and return its successor plus a new access token.

        Reuse detection follows RFC 6819 §5.2.2.3 and RFC 9700 §4.14.2: a refresh token
        that was already spent comes back outside the grace window, so the whole
        family is revoked in one transaction and its ``sid`` goes on the denylist,
        which kills every access token the family issued as well.

        ``scope`` (the OAuth grant's, RFC 6749 §6) may only repeat what the family was
        granted. It is checked *before* the token is spent: a refused request must
        leave the token usable, or the client's honest retry would later count as
        reuse and revoke the session.

        A family bound to a DPoP key (RFC 9449 §5) is refreshed only with a proof by
        that key (``dpop_jkt``): a proof by another key is refused before the token is
        spent; no proof at all is what a thief without the key sends, so the family
        is revoked, as on reuse."""
        digest = digest_of(unverified_token)
        if digest is None:
            REFRESHES.labels("invalid").inc()
            raise RefreshRejected("not a refresh token")
        if scope or dpop_jkt is not None:
            await self._precheck(digest, scope, dpop_jkt)
        now = time.time()
        # The common case in one step (one round trip on PostgreSQL): spend, mint the
        # successor, and read the denylist from the database truth.
        successor = new_refresh_token()
        successor_digest, sealed = self._successor_parts(digest, successor)
        found = await self._store.rotate(digest, now, successor_digest, sealed)
        record = found.record
        if found.rotated and record is not None:
            return await self._tokens(record, successor, "rotated", dpop_jkt, ip)
        problem = self._unusable(record, now)
        if record is None or problem is not None:
            REFRESHES.labels(problem or "invalid").inc()
            raise RefreshRejected(problem or "unusable")
        if found.denied and record.spent_at is None:
            REFRESHES.labels("revoked").inc()
            raise RefreshRejected("session or subject revoked")
        # Spent already (a retry or a reuse) or spent concurrently a moment ago: decide
        # under the row lock.
        return await self._rotate_locked(digest, now, ip, dpop_jkt)

    async def _precheck(self, digest: bytes, requested: str | None,
                        dpop_jkt: str | None) -> None:
        """InvalidScope when ``requested`` exceeds the family's scopes; RefreshRejected
        when the family is bound to a DPoP key other than the proof's. A family's
        scopes and key never change, so reading them outside the spend is not a race;
        an unknown token is left to the spend, which refuses it as such."""
        record = await self._store.get(digest)
        if record is None:
            return
        if requested and not set(requested.split()) <= set(record.scopes.split()):
            REFRESHES.labels("invalid_scope").inc()
            raise InvalidScope("scope exceeds what the refresh token was granted")
        if dpop_jkt is not None and record.dpop_jkt not in (None, dpop_jkt):
            REFRESHES.labels("dpop_key").inc()
            raise RefreshRejected("the family is bound to another DPoP key")

    def _successor_parts(self, digest: bytes, successor: str) -> tuple[bytes, bytes | None]:
        """The successor's digest, and the successor sealed for a retry inside the
        grace window (nothing to seal when there is no window)."""
        successor_digest = hashlib.sha256(successor.encode()).digest()
        if self._grace <= 0:
            return successor_digest, None
        return successor_digest, self._kek.seal(successor.encode(), successor_associated(digest))

    async def _tokens(self, record: RefreshRecord, successor: str, outcome: str,
                      dpop_jkt: str | None, ip: str | None) -> SessionTokens:
        if record.dpop_jkt is not None and dpop_jkt is None:
            # A bound family's token without its key's proof: not the client (RFC 9449
            # §5, RFC 9700 §4.14.2), so the family goes, its access tokens with it.
            await self.revoke_family(record.family_id, "dpop_missing")
            REFRESHES.labels("dpop_missing").inc()
            await self._audit.write("refresh.dpop_missing", "family_revoked",
                                    subject=record.user_id, ip=ip, sid=record.family_id)
            raise RefreshRejected("a DPoP-bound refresh token without a proof; family revoked")
        jkt = record.dpop_jkt or dpop_jkt
        access = await self._access_token(record.user_id, record.family_id, record.client_id,
                                          record.scopes, record.amr, jkt)
        REFRESHES.labels(outcome).inc()
        return SessionTokens(access.token, access.expires_at, successor,
                             record.family_expires_at, record.family_id, record.user_id,
                             record.scopes, jkt is not None)

    async def _rotate_locked(self, digest: bytes, now: float, ip: str | None,
                             dpop_jkt: str | None) -> SessionTokens:
        successor: str | None = None
        outcome = "invalid"
        reuse_entry: Revocation | None = None
        async with self._db.transaction() as tx:
            record = await self._store.get_for_spend(tx, digest)
            problem = self._unusable(record, now)
            if record is not None and problem is None:
                if record.spent_at is None:
                    successor = new_refresh_token()
                    successor_digest, sealed = self._successor_parts(digest, successor)
                    if not await self._store.spend(tx, digest, now, successor_digest, sealed):
                        raise RefreshRejected("spent concurrently")  # excluded by the row lock
                    await self._store.insert_token(tx, successor_digest, record.family_id,
                                                   record.generation + 1, now)
                    outcome = "rotated"
                else:
                    successor = await self._grace_successor(tx, record, digest, now)
                    if successor is not None:
                        outcome = "grace"
                    else:
                        await self._store.revoke_family(tx, record.family_id, "reuse", now)
                        reuse_entry = await self._revocations.record(
                            tx, "sid", record.family_id, expires_at=now + self._access_ttl
                        )
                        outcome = "reuse"
        if reuse_entry is not None and record is not None:
            await self._revocations.announce([reuse_entry])
            REFRESH_REUSE.inc()
            REFRESHES.labels("reuse").inc()
            log.warning("refresh.reuse_detected", sid=record.family_id, sub=record.user_id)
            await self._audit.write("refresh.reuse_detected", "family_revoked",
                                    subject=record.user_id, ip=ip, sid=record.family_id,
                                    generation=record.generation)
            raise RefreshRejected("reuse of a spent refresh token; family revoked")
        if record is None or successor is None:
            REFRESHES.labels(problem or "invalid").inc()
            raise RefreshRejected(problem or "unusable")
        if await self._revocations.is_revoked(
            {"sid": record.family_id, "sub": record.user_id, "iat": record.family_created_at}
        ):
            REFRESHES.labels("revoked").inc()
            raise RefreshRejected("session or subject revoked")
        return await self._tokens(record, successor, outcome, dpop_jkt, ip)

    @staticmethod
    def _unusable(record: RefreshRecord | None, now: float) -> str | None:
        if record is None:
            return "unknown"
        if record.family_revoked_at is not None:
            return "revoked"
        if record.family_expires_at <= now:
            return "expired"
        if record.user_status == "disabled":
            return "disabled"
        return None

    async def _grace_successor(self, tx: Any, record: RefreshRecord, digest: bytes,
                               now: float) -> str | None:
        if record.spent_at is None or now - record.spent_at > self._grace:
            return None
        if record.successor_sealed is None or record.successor_digest is None:
            return None
        if await self._store.spent_at(tx, record.successor_digest) is not None:
            return None
        try:
            return self._kek.open(record.successor_sealed, successor_associated(digest)).decode()
        except SealError:
            # Sealed by a replica on another KEK (during a KEK rotation): this is the
            # benign retry, so it is refused without revoking the family.
            log.error("refresh.successor_unsealable", sid=record.family_id)
            REFRESHES.labels("invalid").inc()
            raise RefreshRejected("the refresh token was already used") from None

    async def revoke_family(self, family_id: str, reason: str) -> bool:
        """Revoke a family and deny its access tokens (``sid``) in one transaction."""
        now = time.time()
        async with self._db.transaction() as tx:
            revoked = await self._store.revoke_family(tx, family_id, reason, now)
            entry = await self._revocations.record(
                tx, "sid", family_id, expires_at=now + self._access_ttl
            ) if revoked else None
        if entry is not None:
            await self._revocations.announce([entry])
        return revoked

    async def revoke(self, unverified_token: str) -> bool:
        """RFC 7009 for a refresh token: its whole family (any generation will do)."""
        digest = digest_of(unverified_token)
        record = None if digest is None else await self._store.get(digest)
        if record is None:
            return False
        await self.revoke_family(record.family_id, "revoked")
        return True

    async def family_of(self, unverified_token: str) -> str | None:
        digest = digest_of(unverified_token)
        record = None if digest is None else await self._store.get(digest)
        return None if record is None else record.family_id

    async def introspect(self, unverified_token: str) -> dict[str, Any] | None:
        """RFC 7662 members for a live (unspent, unrevoked, unexpired) refresh token."""
        digest = digest_of(unverified_token)
        record = None if digest is None else await self._store.get(digest)
        if record is None or record.spent_at is not None or self._unusable(record, time.time()):
            return None
        if await self._revocations.is_revoked(
            {"sid": record.family_id, "sub": record.user_id, "iat": record.family_created_at}
        ):
            return None
        answer: dict[str, Any] = {
            "token_type": "refresh_token", "sub": record.user_id,
            "client_id": record.client_id or LOGIN_CLIENT_ID, "sid": record.family_id,
            "iat": int(record.issued_at), "exp": int(record.family_expires_at),
        }
        if record.scopes:
            answer["scope"] = record.scopes
        return answer

    # --- background: erase sealed successors once the grace window has passed -----

    async def erase_expired_successors(self) -> int:
        return await self._store.erase_sealed_before(time.time() - self._grace)

    async def start(self) -> None:
        self._eraser.start()

    async def close(self) -> None:
        await self._eraser.stop()
