"""Users, refresh families and refresh tokens in the database.

The refresh spend is the one place where concurrency matters. The common case (an
unspent, usable token) is ``rotate``: on PostgreSQL one data-modifying statement that
reads the token, its family and the denylist, spends it (``spent_at IS NULL``,
re-checked on the row after any concurrent writer commits) and inserts the successor,
with concurrent rotations grouped into one round trip (``RotationBatcher``); on SQLite
the same rules as a fixed sequence of statements in one ``BEGIN IMMEDIATE``
transaction, concurrent rotations grouped into one transaction and one trip to the
database thread (the same batcher, ``Database.transact``). Everything else (a spent
token coming back, a concurrent spend) is decided by ``get_for_spend``'s ``SELECT …
FOR UPDATE`` under the token's row lock, so two uses of one token are decided one
after the other.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import structlog

from service.store import Connection, Database, Row, Statement, StorageUnavailable

log = structlog.get_logger("authd.sessions.store")

SELECT_USER_BY_EMAIL = (
    "SELECT id, email, password_hash, status, failed_logins, locked_until, created_at"
    " FROM users WHERE email = $1"
)
SELECT_USER_BY_ID = (
    "SELECT id, email, password_hash, status, failed_logins, locked_until, created_at"
    " FROM users WHERE id = $1"
)
INSERT_USER = (
    "INSERT INTO users (id, email, password_hash, status, failed_logins, created_at, updated_at)"
    " VALUES ($1, $2, $3, 'active', 0, $4, $4)"
)
SET_HASH = "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1"
RECORD_FAILURE = (
    "UPDATE users SET failed_logins = failed_logins + 1, updated_at = $2"
    " WHERE id = $1 RETURNING failed_logins"
)
LOCK_USER = (
    "UPDATE users SET status = 'locked', locked_until = $2, updated_at = $3"
    " WHERE id = $1 AND status <> 'disabled'"
)
RESET_FAILURES = (
    "UPDATE users SET failed_logins = 0, locked_until = NULL, updated_at = $2,"
    " status = CASE WHEN status = 'locked' THEN 'active' ELSE status END"
    " WHERE id = $1 AND (failed_logins <> 0 OR status = 'locked')"
)
SET_STATUS = (
    "UPDATE users SET status = $2, failed_logins = 0, locked_until = NULL, updated_at = $3"
    " WHERE id = $1"
)

INSERT_FAMILY = (
    "INSERT INTO refresh_families (id, user_id, client_id, scopes, created_at, expires_at, amr,"
    " dpop_jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
INSERT_REFRESH = (
    "INSERT INTO refresh_tokens (digest, family_id, generation, issued_at)"
    " VALUES ($1, $2, $3, $4)"
)
_REFRESH_VIEW = (
    "SELECT t.digest, t.family_id, t.generation, t.issued_at, t.spent_at,"
    " t.successor_digest, t.successor_sealed, f.user_id, f.client_id, f.scopes,"
    " f.created_at AS family_created_at, f.expires_at AS family_expires_at,"
    " f.revoked_at AS family_revoked_at, u.status AS user_status, f.amr, f.dpop_jkt"
    " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
    " JOIN users u ON u.id = f.user_id WHERE t.digest = $1"
)
SELECT_REFRESH = _REFRESH_VIEW
# PostgreSQL: lock the token's row only. A bare FOR UPDATE would lock the joined
# family and user rows too, and a user disable (user row, then families) could then
# deadlock with a spend. SQLite reads SELECT_REFRESH: its BEGIN IMMEDIATE already
# holds the write lock, and its translation drops only a bare FOR UPDATE.
SELECT_REFRESH_FOR_SPEND = _REFRESH_VIEW + " FOR UPDATE OF t"
# SQLite: the rotation as a fixed sequence run by ``Database.transact`` in one
# transaction (BEGIN IMMEDIATE holds the write lock throughout) and one trip to the
# worker thread. Spend the token if it is unspent and usable and the denylist does
# not cover its family (sid = family id, sub = user id, iat = family start: the rule
# of service.revocation.store.MATCHES, read from the database truth; $2 is now);
# mint the successor only if this call spent it (its digest is the fresh $3); read
# the view, the denylist's verdict and whether this call rotated.
SPEND_IF_USABLE = (
    "UPDATE refresh_tokens SET spent_at = $2, successor_digest = $3, successor_sealed = $4"
    " WHERE digest = $1 AND spent_at IS NULL AND EXISTS (SELECT 1 FROM refresh_families f"
    " JOIN users u ON u.id = f.user_id WHERE f.id = refresh_tokens.family_id"
    " AND f.revoked_at IS NULL AND f.expires_at > $2 AND u.status <> 'disabled'"
    " AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.expires_at > $2 AND ("
    " (r.kind = 'sid' AND r.value = f.id)"
    " OR (r.kind = 'sub' AND r.value = f.user_id AND r.not_before > f.created_at))))"
)
MINT_IF_SPENT = (
    "INSERT INTO refresh_tokens (digest, family_id, generation, issued_at)"
    " SELECT $3, family_id, generation + 1, $2 FROM refresh_tokens"
    " WHERE digest = $1 AND successor_digest = $3"
)
SELECT_ROTATED = (
    "SELECT t.digest, t.family_id, t.generation, t.issued_at, t.spent_at,"
    " t.successor_digest, t.successor_sealed, f.user_id, f.client_id, f.scopes,"
    " f.created_at AS family_created_at, f.expires_at AS family_expires_at,"
    " f.revoked_at AS family_revoked_at, u.status AS user_status, f.amr, f.dpop_jkt,"
    " EXISTS (SELECT 1 FROM revocations r WHERE r.expires_at > $2 AND ("
    " (r.kind = 'sid' AND r.value = f.id)"
    " OR (r.kind = 'sub' AND r.value = f.user_id AND r.not_before > f.created_at)))"
    " AS denied, t.successor_digest = $3 AS rotated"
    " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
    " JOIN users u ON u.id = f.user_id WHERE t.digest = $1"
)
# PostgreSQL: the whole rotation in one statement and one round trip. The UPDATE's
# ``spent_at IS NULL`` is re-checked on the row after any concurrent writer commits,
# so of two concurrent rotations exactly one spends the token and mints its
# successor; the other gets ``rotated = 0`` and decides under the row lock.
ROTATE_POSTGRESQL = (
    "WITH t AS ("
    "SELECT t.digest, t.family_id, t.generation, t.issued_at, t.spent_at,"
    " t.successor_digest, t.successor_sealed, f.user_id, f.client_id, f.scopes,"
    " f.created_at AS family_created_at, f.expires_at AS family_expires_at,"
    " f.revoked_at AS family_revoked_at, u.status AS user_status, f.amr, f.dpop_jkt,"
    " EXISTS (SELECT 1 FROM revocations r WHERE r.expires_at > $2::double precision AND ("
    " (r.kind = 'sid' AND r.value = f.id)"
    " OR (r.kind = 'sub' AND r.value = f.user_id AND r.not_before > f.created_at)))"
    " AS denied"
    " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
    " JOIN users u ON u.id = f.user_id WHERE t.digest = $1),"
    " spent AS (UPDATE refresh_tokens s SET spent_at = $2::double precision,"
    " successor_digest = $3::bytea, successor_sealed = $4::bytea FROM t"
    " WHERE s.digest = $1 AND s.spent_at IS NULL AND t.spent_at IS NULL"
    " AND t.family_revoked_at IS NULL AND t.family_expires_at > $2::double precision"
    " AND t.user_status <> 'disabled' AND NOT t.denied"
    " RETURNING s.family_id, s.generation),"
    " minted AS (INSERT INTO refresh_tokens (digest, family_id, generation, issued_at)"
    " SELECT $3::bytea, family_id, generation + 1, $2::double precision FROM spent"
    " RETURNING 1)"
    " SELECT t.*, (SELECT count(*) FROM minted) AS rotated FROM t"
)
# PostgreSQL, many rotations in one round trip (group commit, see RotationBatcher): the
# same rules as ROTATE_POSTGRESQL per row. The token rows are locked first in digest
# order, so two batches sharing tokens queue instead of deadlocking.
ROTATE_MANY_POSTGRESQL = (
    "WITH i AS (SELECT * FROM unnest($1::bytea[], $2::double precision[], $3::bytea[],"
    " $4::bytea[]) AS i(digest, at, successor, sealed)),"
    " locked AS (SELECT l.digest FROM refresh_tokens l WHERE l.digest = ANY($1::bytea[])"
    " ORDER BY l.digest FOR UPDATE),"
    " v AS (SELECT i.at, i.successor, i.sealed,"
    " t.digest, t.family_id, t.generation, t.issued_at, t.spent_at,"
    " t.successor_digest, t.successor_sealed, f.user_id, f.client_id, f.scopes,"
    " f.created_at AS family_created_at, f.expires_at AS family_expires_at,"
    " f.revoked_at AS family_revoked_at, u.status AS user_status, f.amr, f.dpop_jkt,"
    " EXISTS (SELECT 1 FROM revocations r WHERE r.expires_at > i.at AND ("
    " (r.kind = 'sid' AND r.value = f.id)"
    " OR (r.kind = 'sub' AND r.value = f.user_id AND r.not_before > f.created_at)))"
    " AS denied"
    " FROM i JOIN locked ON locked.digest = i.digest"
    " JOIN refresh_tokens t ON t.digest = i.digest"
    " JOIN refresh_families f ON f.id = t.family_id JOIN users u ON u.id = f.user_id),"
    " spent AS (UPDATE refresh_tokens s SET spent_at = v.at, successor_digest = v.successor,"
    " successor_sealed = v.sealed FROM v"
    " WHERE s.digest = v.digest AND s.spent_at IS NULL AND v.spent_at IS NULL"
    " AND v.family_revoked_at IS NULL AND v.family_expires_at > v.at"
    " AND v.user_status <> 'disabled' AND NOT v.denied"
    " RETURNING s.digest, s.family_id, s.generation, s.spent_at, s.successor_digest),"
    " minted AS (INSERT INTO refresh_tokens (digest, family_id, generation, issued_at)"
    " SELECT successor_digest, family_id, generation + 1, spent_at FROM spent RETURNING 1)"
    " SELECT v.digest, v.family_id, v.generation, v.issued_at, v.spent_at,"
    " v.successor_digest, v.successor_sealed, v.user_id, v.client_id, v.scopes,"
    " v.family_created_at, v.family_expires_at, v.family_revoked_at, v.user_status, v.amr,"
    " v.dpop_jkt,"
    " v.denied, EXISTS (SELECT 1 FROM spent WHERE spent.digest = v.digest) AS rotated"
    " FROM v"
)
SELECT_SPENT_AT = "SELECT spent_at FROM refresh_tokens WHERE digest = $1"
SPEND = (
    "UPDATE refresh_tokens SET spent_at = $2, successor_digest = $3, successor_sealed = $4"
    " WHERE digest = $1 AND spent_at IS NULL"
)
REVOKE_FAMILY = (
    "UPDATE refresh_families SET revoked_at = $2, revoke_reason = $3"
    " WHERE id = $1 AND revoked_at IS NULL"
)
REVOKE_USER_FAMILIES = (
    "UPDATE refresh_families SET revoked_at = $2, revoke_reason = $3"
    " WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 RETURNING id"
)
ERASE_FAMILY_SEALED = (
    "UPDATE refresh_tokens SET successor_sealed = NULL"
    " WHERE family_id = $1 AND successor_sealed IS NOT NULL"
)
# Sealed successors exist only to answer a retry inside the grace window.
ERASE_OLD_SEALED = (
    "UPDATE refresh_tokens SET successor_sealed = NULL"
    " WHERE successor_sealed IS NOT NULL AND spent_at < $1"
)


@dataclass(frozen=True, slots=True)
class Rotation:
    """What the one-step rotation found and did: the token's view as it was read
    (None when unknown), whether the denylist covers its family, and whether this
    call spent it and stored the successor."""

    record: RefreshRecord | None
    denied: bool
    rotated: bool


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    password_hash: str
    status: str
    failed_logins: int
    locked_until: float | None
    created_at: float

    def locked_at(self, now: float) -> bool:
        return self.status == "locked" and (self.locked_until is None or self.locked_until > now)

    def public(self) -> dict[str, object]:
        return {"id": self.id, "email": self.email, "status": self.status,
                "failed_logins": self.failed_logins, "locked_until": self.locked_until,
                "created_at": self.created_at}


@dataclass(frozen=True, slots=True)
class RefreshRecord:
    digest: bytes
    family_id: str
    generation: int
    issued_at: float
    spent_at: float | None
    successor_digest: bytes | None
    successor_sealed: bytes | None
    user_id: str
    client_id: str
    scopes: str
    family_created_at: float
    family_expires_at: float
    family_revoked_at: float | None
    user_status: str
    amr: str = "pwd"  # RFC 8176 methods of the family's login, space separated
    # RFC 9449 §5: the thumbprint of the DPoP key the family was started with, if any.
    dpop_jkt: str | None = None


def _user(row: Row | None) -> User | None:
    return None if row is None else User(**row)


def _record(row: Row | None) -> RefreshRecord | None:
    if row is None:
        return None
    values = dict(row)
    for name in ("digest", "successor_digest", "successor_sealed"):
        if values[name] is not None:
            values[name] = bytes(values[name])
    values["client_id"] = values["client_id"] or ""
    return RefreshRecord(**values)


class UserStore(Protocol):
    async def by_email(self, email: str) -> User | None: ...
    async def by_id(self, user_id: str) -> User | None: ...
    async def create(self, user_id: str, email: str, password_hash: str, now: float) -> bool: ...
    async def set_password_hash(self, user_id: str, password_hash: str, now: float) -> bool: ...
    async def record_failure(self, user_id: str, now: float) -> int: ...
    async def lock(self, user_id: str, until: float, now: float) -> None: ...
    async def reset_failures(self, user_id: str, now: float) -> None: ...
    async def set_status(self, conn: Connection, user_id: str, status: str, now: float
                         ) -> bool: ...


class SqlUserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def by_email(self, email: str) -> User | None:
        return _user(await self.db.fetchrow(SELECT_USER_BY_EMAIL, email))

    async def by_id(self, user_id: str) -> User | None:
        return _user(await self.db.fetchrow(SELECT_USER_BY_ID, user_id))

    async def create(self, user_id: str, email: str, password_hash: str, now: float) -> bool:
        """False when the email is taken (checked under a lock, so two concurrent
        creations of one email cannot both pass the check)."""
        async with self.db.transaction() as tx:
            await tx.lock("authd.users.create")
            if await tx.fetchrow(SELECT_USER_BY_EMAIL, email) is not None:
                return False
            await tx.execute(INSERT_USER, user_id, email, password_hash, now)
        return True

    async def set_password_hash(self, user_id: str, password_hash: str, now: float) -> bool:
        return await self.db.execute(SET_HASH, user_id, password_hash, now) == 1

    async def record_failure(self, user_id: str, now: float) -> int:
        return int(await self.db.fetchval(RECORD_FAILURE, user_id, now) or 0)

    async def lock(self, user_id: str, until: float, now: float) -> None:
        await self.db.execute(LOCK_USER, user_id, until, now)

    async def reset_failures(self, user_id: str, now: float) -> None:
        await self.db.execute(RESET_FAILURES, user_id, now)

    async def set_status(self, conn: Connection, user_id: str, status: str, now: float) -> bool:
        return await conn.execute(SET_STATUS, user_id, status, now) == 1


class RefreshStore(Protocol):
    async def create_family(
        self, conn: Connection, family_id: str, user_id: str, client_id: str, scopes: str,
        now: float, expires_at: float, amr: str = "pwd", dpop_jkt: str | None = None,
    ) -> None: ...
    async def insert_token(self, conn: Connection, digest: bytes, family_id: str,
                           generation: int, now: float) -> None: ...
    async def get(self, digest: bytes) -> RefreshRecord | None: ...
    async def rotate(self, digest: bytes, now: float, successor: bytes,
                     successor_sealed: bytes | None) -> Rotation:
        """Spend an unspent, usable, undenied token and store its successor at once;
        anything else (spent, revoked, expired, disabled, denied, a concurrent spend)
        changes nothing and comes back with ``rotated`` False."""
        ...
    async def get_for_spend(self, conn: Connection, digest: bytes) -> RefreshRecord | None: ...
    async def spent_at(self, conn: Connection, digest: bytes) -> float | None: ...
    async def spend(self, conn: Connection, digest: bytes, now: float, successor: bytes,
                    successor_sealed: bytes | None) -> bool: ...
    async def revoke_family(self, conn: Connection, family_id: str, reason: str,
                            now: float) -> bool: ...
    async def revoke_user_families(self, conn: Connection, user_id: str, reason: str,
                                   now: float) -> list[str]: ...
    async def erase_sealed_before(self, cutoff: float) -> int: ...


# At most this many rotations share one statement.
MAX_BATCH = 64


class _BatchFailed(Exception):
    """The batch statement failed for a reason other than an unreachable database (a
    deadlock, a cancelled query): each of its rotations is decided on its own."""


@dataclass(slots=True)
class _Waiting:
    digest: bytes
    at: float
    successor: bytes
    sealed: bytes | None
    future: asyncio.Future[Row | None]


class RotationBatcher:
    """Group commit for refresh rotations.

    On this path the trip around the statements costs the server more CPU than the
    statements cost the database: on PostgreSQL the round trip (socket writes and
    reads, the pool's acquire and reset), on SQLite the trip to the worker thread
    and the transaction's BEGIN and COMMIT (the WAL append). Rotations that arrive
    while a batch is in flight wait for it and go together in the next one: at low
    load a batch holds a single rotation and adds no wait, under load the trip is
    shared. A batch is one statement on PostgreSQL (ROTATE_MANY_POSTGRESQL) and one
    transaction of each rotation's statements in turn on SQLite (``_sqlite_rotation``).
    One batch is in flight per process; the same token twice never shares a batch.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: list[_Waiting] = []
        self._drainer: asyncio.Task[None] | None = None

    async def rotate(self, digest: bytes, at: float, successor: bytes,
                     sealed: bytes | None) -> Row | None:
        """The token's view as read before the spend, with ``denied`` and ``rotated``
        (the row ROTATE_POSTGRESQL returns); None when unknown; _BatchFailed if the
        batch was undecided."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Row | None] = loop.create_future()
        self._waiting.append(_Waiting(digest, at, successor, sealed, future))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain(), name="authd-refresh-batch")
        return await future

    def _take(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        later: list[_Waiting] = []
        digests: set[bytes] = set()
        for item in self._waiting:
            if item.future.done():
                continue  # its caller is gone
            if item.digest in digests or len(batch) >= MAX_BATCH:
                later.append(item)
            else:
                digests.add(item.digest)
                batch.append(item)
        self._waiting = later
        return batch

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._take()
                if batch:
                    await self._run(batch)
        except asyncio.CancelledError:
            for item in self._waiting:
                _settle(item, exc=_BatchFailed())
            self._waiting = []
            raise
        finally:
            self._drainer = None

    async def rotate_alone(self, digest: bytes, at: float, successor: bytes,
                           sealed: bytes | None) -> Row | None:
        """The same row for one rotation outside any batch (after a failed batch)."""
        if self._db.dialect == "postgresql":
            return await self._db.fetchrow(ROTATE_POSTGRESQL, digest, at, successor, sealed)
        results = await self._db.transact(_sqlite_rotation(digest, at, successor, sealed))
        return _as_read(results[-1])

    async def _rows(self, batch: list[_Waiting]) -> dict[bytes, Row]:
        """Each rotation's row, by the spent token's digest (absent when unknown)."""
        if self._db.dialect == "postgresql":
            rows = await self._db.fetch(
                ROTATE_MANY_POSTGRESQL, [i.digest for i in batch], [i.at for i in batch],
                [i.successor for i in batch], [i.sealed for i in batch],
            )
            return {bytes(row["digest"]): row for row in rows}
        results = await self._db.transact([
            statement for i in batch
            for statement in _sqlite_rotation(i.digest, i.at, i.successor, i.sealed)
        ])
        found = {}
        # Each rotation is three statements; the third reads its view.
        for item, rows in zip(batch, results[2::3], strict=True):
            row = _as_read(rows)
            if row is not None:
                found[item.digest] = row
        return found

    async def _run(self, batch: list[_Waiting]) -> None:
        try:
            found = await self._rows(batch)
        except StorageUnavailable as exc:
            for item in batch:
                _settle(item, exc=StorageUnavailable(str(exc)))
            return
        except asyncio.CancelledError:
            for item in batch:
                _settle(item, exc=_BatchFailed())
            raise
        except Exception as exc:
            log.warning("refresh.batch_failed", error=type(exc).__name__, size=len(batch))
            for item in batch:
                _settle(item, exc=_BatchFailed())
            return
        for item in batch:
            _settle(item, row=found.get(item.digest))


def _sqlite_rotation(digest: bytes, at: float, successor: bytes, sealed: bytes | None
                     ) -> list[Statement]:
    """SQLite's rotation as statements of a transaction: spend, mint, read."""
    return [(SPEND_IF_USABLE, (digest, at, successor, sealed)),
            (MINT_IF_SPENT, (digest, at, successor)),
            (SELECT_ROTATED, (digest, at, successor))]


def _as_read(rows: list[Row]) -> Row | None:
    """SELECT_ROTATED's row as the token was read before this rotation spent it, as
    ROTATE_POSTGRESQL reads it (None when the token is unknown)."""
    if not rows:
        return None
    row = rows[0]
    if row["rotated"]:
        row.update(spent_at=None, successor_digest=None, successor_sealed=None)
    return row


def _settle(item: _Waiting, *, row: Row | None = None, exc: Exception | None = None) -> None:
    if item.future.done():
        return
    if exc is not None:
        item.future.set_exception(exc)
    else:
        item.future.set_result(row)


class SqlRefreshStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._batcher = RotationBatcher(db)
        self._select_for_spend = (SELECT_REFRESH_FOR_SPEND if db.dialect == "postgresql"
                                  else SELECT_REFRESH)

    async def create_family(
        self, conn: Connection, family_id: str, user_id: str, client_id: str, scopes: str,
        now: float, expires_at: float, amr: str = "pwd", dpop_jkt: str | None = None,
    ) -> None:
        await conn.execute(INSERT_FAMILY, family_id, user_id, client_id, scopes, now, expires_at,
                           amr, dpop_jkt)

    async def insert_token(self, conn: Connection, digest: bytes, family_id: str,
                           generation: int, now: float) -> None:
        await conn.execute(INSERT_REFRESH, digest, family_id, generation, now)

    async def get(self, digest: bytes) -> RefreshRecord | None:
        return _record(await self.db.fetchrow(SELECT_REFRESH, digest))

    async def rotate(self, digest: bytes, now: float, successor: bytes,
                     successor_sealed: bytes | None) -> Rotation:
        try:
            row = await self._batcher.rotate(digest, now, successor, successor_sealed)
        except _BatchFailed:
            row = await self._batcher.rotate_alone(digest, now, successor, successor_sealed)
        if row is None:
            return Rotation(None, False, False)
        rotated = bool(row.pop("rotated"))
        denied = bool(row.pop("denied"))
        return Rotation(_record(row), denied, rotated)

    async def get_for_spend(self, conn: Connection, digest: bytes) -> RefreshRecord | None:
        return _record(await conn.fetchrow(self._select_for_spend, digest))

    async def spent_at(self, conn: Connection, digest: bytes) -> float | None:
        row = await conn.fetchrow(SELECT_SPENT_AT, digest)
        return None if row is None else row["spent_at"]

    async def spend(self, conn: Connection, digest: bytes, now: float, successor: bytes,
                    successor_sealed: bytes | None) -> bool:
        return await conn.execute(SPEND, digest, now, successor, successor_sealed) == 1

    async def revoke_family(self, conn: Connection, family_id: str, reason: str,
                            now: float) -> bool:
        revoked = await conn.execute(REVOKE_FAMILY, family_id, now, reason) == 1
        await conn.execute(ERASE_FAMILY_SEALED, family_id)
        return revoked

    async def revoke_user_families(self, conn: Connection, user_id: str, reason: str,
                                   now: float) -> list[str]:
        rows = await conn.fetch(REVOKE_USER_FAMILIES, user_id, now, reason)
        for row in rows:
            await conn.execute(ERASE_FAMILY_SEALED, row["id"])
        return [str(row["id"]) for row in rows]

    async def erase_sealed_before(self, cutoff: float) -> int:
        return await self.db.execute(ERASE_OLD_SEALED, cutoff)
