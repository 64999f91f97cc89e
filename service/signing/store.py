"""Storage of signing keys: the ``signing_keys`` table (DESIGN §5).

Public parts are JWK JSON text; private parts are sealed blobs (AES-256-GCM under the
KEK, the ``kid`` as associated data) and are never read by a listing. Every change of
state runs inside ``locked()``: one transaction holding the ``signing_keys`` named
lock, so two replicas rotating at the same moment queue instead of racing, and the
partial unique index lets the database itself refuse a second active key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from service.store import Connection, Database

KeyState = Literal["next", "active", "retired", "revoked", "gone"]
PUBLISHED_STATES: frozenset[str] = frozenset({"next", "active", "retired"})
LOCK_NAME = "signing_keys"


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    """One key's public half and lifecycle dates (Unix seconds)."""

    kid: str
    alg: str
    state: KeyState
    public_jwk: str
    created_at: float
    activated_at: float | None = None
    retired_at: float | None = None
    revoked_at: float | None = None
    erased_at: float | None = None

    @property
    def published(self) -> bool:
        return self.state in PUBLISHED_STATES


class SigningKeyStore(Protocol):
    def locked(self) -> AbstractAsyncContextManager[SigningKeyStore]:
        """The same store bound to one transaction holding the key-set lock."""
        ...

    async def list_keys(self) -> list[SigningKeyRecord]:
        """Every key, oldest first, without private parts."""
        ...

    async def get(self, kid: str) -> SigningKeyRecord | None: ...

    async def private_sealed(self, kid: str) -> bytes | None:
        """The sealed private part, or None once erased."""
        ...

    async def insert(self, record: SigningKeyRecord, private_sealed: bytes) -> None: ...

    async def activate(self, kid: str, at: float) -> bool:
        """next -> active; False if ``kid`` is not next."""
        ...

    async def retire(self, kid: str, at: float) -> bool:
        """active -> retired; False if ``kid`` is not active."""
        ...

    async def revoke(self, kid: str, at: float) -> bool:
        """next/active/retired -> revoked, erasing the private part."""
        ...

    async def erase(self, kid: str, at: float) -> bool:
        """retired -> gone, erasing the private part."""
        ...

    async def withdraw(self, kid: str, at: float) -> bool:
        """next -> retired: a next key of an algorithm the key set no longer makes.
        It never signed; it stays published until ``erasable_at`` like any retired key,
        so a verifier that cached it meanwhile loses nothing."""
        ...

    async def fingerprint(self) -> tuple[int, float]:
        """A value that changes whenever any key is added or changes state, or the
        target algorithm changes: the row count and the sum of every lifecycle date
        and of the target's date (each change adds one)."""
        ...

    async def target_alg(self) -> str | None:
        """The algorithm the key set makes its new keys in; None before it is recorded."""
        ...

    async def set_target_alg(self, alg: str, at: float, *, replace: bool) -> bool:
        """Record ``alg`` as the target (``replace=False``: only if none is recorded).
        True when the recorded target changed."""
        ...


LIST_KEYS = """
SELECT kid, alg, state, public_jwk, created_at, activated_at, retired_at, revoked_at, erased_at
FROM signing_keys ORDER BY created_at, kid
"""
GET_KEY = """
SELECT kid, alg, state, public_jwk, created_at, activated_at, retired_at, revoked_at, erased_at
FROM signing_keys WHERE kid = $1
"""
GET_PRIVATE = "SELECT private_sealed FROM signing_keys WHERE kid = $1"
INSERT_KEY = """
INSERT INTO signing_keys
    (kid, alg, state, public_jwk, private_sealed, created_at, activated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::double precision)
"""
ACTIVATE = """
UPDATE signing_keys SET state = 'active', activated_at = $2 WHERE kid = $1 AND state = 'next'
"""
RETIRE = """
UPDATE signing_keys SET state = 'retired', retired_at = $2 WHERE kid = $1 AND state = 'active'
"""
REVOKE = """
UPDATE signing_keys SET state = 'revoked', revoked_at = $2, private_sealed = NULL
WHERE kid = $1 AND state IN ('next', 'active', 'retired')
"""
ERASE = """
UPDATE signing_keys SET state = 'gone', erased_at = $2, private_sealed = NULL
WHERE kid = $1 AND state = 'retired'
"""
WITHDRAW = """
UPDATE signing_keys SET state = 'retired', retired_at = $2 WHERE kid = $1 AND state = 'next'
"""
FINGERPRINT = """
SELECT count(*) AS n,
       COALESCE(sum(created_at + COALESCE(activated_at, 0) + COALESCE(retired_at, 0)
                    + COALESCE(revoked_at, 0) + COALESCE(erased_at, 0)), 0)
       + COALESCE((SELECT set_at FROM signing_target WHERE id = 1), 0) AS total
FROM signing_keys
"""
GET_TARGET = "SELECT alg FROM signing_target WHERE id = 1"
# Both dialects speak this upsert. The WHERE keeps set_at (and so the fingerprint)
# unchanged when the same algorithm is recorded again; set_at only grows, so a change
# always changes the fingerprint, even within one clock tick or after a clock step back.
SET_TARGET = """
INSERT INTO signing_target (id, alg, set_at) VALUES (1, $1, $2)
ON CONFLICT (id) DO UPDATE SET alg = excluded.alg,
    set_at = CASE WHEN excluded.set_at > signing_target.set_at THEN excluded.set_at
                  ELSE signing_target.set_at + 1 END
WHERE signing_target.alg <> excluded.alg
"""
SET_TARGET_IF_ABSENT = """
INSERT INTO signing_target (id, alg, set_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING
"""


def _record(row: dict[str, Any]) -> SigningKeyRecord:
    return SigningKeyRecord(**row)


class SqlSigningKeyStore:
    def __init__(self, db: Database, conn: Connection | None = None) -> None:
        self._db = db
        self._conn: Connection = conn if conn is not None else db

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[SigningKeyStore]:
        async with self._db.transaction() as tx:
            await tx.lock(LOCK_NAME)
            yield SqlSigningKeyStore(self._db, tx)

    def locked(self) -> AbstractAsyncContextManager[SigningKeyStore]:
        return self._locked()

    async def list_keys(self) -> list[SigningKeyRecord]:
        return [_record(row) for row in await self._conn.fetch(LIST_KEYS)]

    async def get(self, kid: str) -> SigningKeyRecord | None:
        row = await self._conn.fetchrow(GET_KEY, kid)
        return None if row is None else _record(row)

    async def private_sealed(self, kid: str) -> bytes | None:
        value = await self._conn.fetchval(GET_PRIVATE, kid)
        return None if value is None else bytes(value)

    async def insert(self, record: SigningKeyRecord, private_sealed: bytes) -> None:
        await self._conn.execute(
            INSERT_KEY, record.kid, record.alg, record.state, record.public_jwk,
            private_sealed, record.created_at, record.activated_at,
        )

    async def activate(self, kid: str, at: float) -> bool:
        return await self._conn.execute(ACTIVATE, kid, at) == 1

    async def retire(self, kid: str, at: float) -> bool:
        return await self._conn.execute(RETIRE, kid, at) == 1

    async def revoke(self, kid: str, at: float) -> bool:
        return await self._conn.execute(REVOKE, kid, at) == 1

    async def erase(self, kid: str, at: float) -> bool:
        return await self._conn.execute(ERASE, kid, at) == 1

    async def withdraw(self, kid: str, at: float) -> bool:
        return await self._conn.execute(WITHDRAW, kid, at) == 1

    async def target_alg(self) -> str | None:
        value = await self._conn.fetchval(GET_TARGET)
        return None if value is None else str(value)

    async def set_target_alg(self, alg: str, at: float, *, replace: bool) -> bool:
        return await self._conn.execute(SET_TARGET if replace else SET_TARGET_IF_ABSENT,
                                        alg, at) == 1

    async def fingerprint(self) -> tuple[int, float]:
        row = await self._conn.fetchrow(FINGERPRINT)
        if row is None:
            return (0, 0.0)
        return (int(row["n"]), float(row["total"]))


# --- every value sealed under the KEK, for ``authd keys rewrap`` -------------------------

SealedKind = Literal["signing_key", "refresh_successor", "totp_secret"]
SEALED_KINDS: tuple[SealedKind, ...] = ("signing_key", "refresh_successor", "totp_secret")


@dataclass(frozen=True, slots=True, repr=False)
class SealedValue:
    """One sealed column value and the identity of its row (kid, token digest or user
    id), from which the value's associated data is derived."""

    kind: SealedKind
    key: str | bytes
    sealed: bytes

    def __repr__(self) -> str:
        return f"SealedValue(kind={self.kind!r})"


class SealedStore(Protocol):
    def locked(self) -> AbstractAsyncContextManager[SealedStore]:
        """The same store bound to one transaction holding the key-set lock."""
        ...

    async def sealed_values(self, kind: SealedKind) -> list[SealedValue]: ...

    async def reseal(self, value: SealedValue, sealed: bytes) -> bool:
        """Replace ``value`` by ``sealed``; False if the row no longer holds ``value``
        (changed or erased meanwhile), in which case nothing is written."""
        ...


# Each UPDATE compares the old blob, so a row rewritten or erased between the read and
# the write (a refresh family revoked, a TOTP enrolment replaced) keeps its new value.
_SEALED: dict[str, tuple[str, str]] = {
    "signing_key": (
        "SELECT kid AS key, private_sealed AS sealed FROM signing_keys"
        " WHERE private_sealed IS NOT NULL ORDER BY kid",
        "UPDATE signing_keys SET private_sealed = $3 WHERE kid = $1 AND private_sealed = $2",
    ),
    "refresh_successor": (
        "SELECT digest AS key, successor_sealed AS sealed FROM refresh_tokens"
        " WHERE successor_sealed IS NOT NULL",
        "UPDATE refresh_tokens SET successor_sealed = $3"
        " WHERE digest = $1 AND successor_sealed = $2",
    ),
    "totp_secret": (
        "SELECT user_id AS key, secret_sealed AS sealed FROM mfa_totp ORDER BY user_id",
        "UPDATE mfa_totp SET secret_sealed = $3 WHERE user_id = $1 AND secret_sealed = $2",
    ),
}


class SqlSealedStore:
    def __init__(self, db: Database, conn: Connection | None = None) -> None:
        self._db = db
        self._conn: Connection = conn if conn is not None else db

    @asynccontextmanager
    async def _locked(self) -> AsyncIterator[SealedStore]:
        async with self._db.transaction() as tx:
            await tx.lock(LOCK_NAME)
            yield SqlSealedStore(self._db, tx)

    def locked(self) -> AbstractAsyncContextManager[SealedStore]:
        return self._locked()

    async def sealed_values(self, kind: SealedKind) -> list[SealedValue]:
        rows = await self._conn.fetch(_SEALED[kind][0])
        return [
            SealedValue(kind, bytes(row["key"]) if kind == "refresh_successor"
                        else str(row["key"]), bytes(row["sealed"]))
            for row in rows
        ]

    async def reseal(self, value: SealedValue, sealed: bytes) -> bool:
        return await self._conn.execute(
            _SEALED[value.kind][1], value.key, value.sealed, sealed
        ) == 1
