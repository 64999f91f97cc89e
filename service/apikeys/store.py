"""Storage of clients and API keys: the protocol and its SQL implementation.

One SQL text per query, in PostgreSQL ``$1`` style; the SQLite backend translates it.
Keys are looked up by digest together with their client in one query, because that
is the one read on the exchange path (and it only runs on a cache miss).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from service.apikeys.errors import ClientExists
from service.apikeys.models import ApiKey, Client, VerifiedKey, join_scopes, split_scopes
from service.config import Rate
from service.store import Connection, Database, Row, UniqueViolation

INSERT_CLIENT = (
    "INSERT INTO clients (id, name, scopes, audience, token_ttl, status, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, 'active', $6, $6)"
)
# Both dialects: a taken name inserts nothing (and, on PostgreSQL, waits for a
# concurrent insert of the same name to commit or roll back before deciding).
INSERT_CLIENT_IF_ABSENT = INSERT_CLIENT + " ON CONFLICT (name) DO NOTHING"
SELECT_CLIENT = "SELECT * FROM clients WHERE id = $1"
SELECT_CLIENT_BY_NAME = "SELECT * FROM clients WHERE name = $1"
LIST_CLIENTS = "SELECT * FROM clients ORDER BY created_at, id"
SET_CLIENT_STATUS = "UPDATE clients SET status = $2, updated_at = $3 WHERE id = $1"
SET_CLIENT_POLICY = (
    "UPDATE clients SET exchange_audiences = $2, dpop_required = $3, updated_at = $4"
    " WHERE id = $1"
)

INSERT_KEY = (
    "INSERT INTO api_keys (id, client_id, digest, display, scopes, rate_count, rate_window,"
    " status, expires_at, replaces, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10)"
)
SELECT_KEY = (
    "SELECT id, client_id, display, scopes, rate_count, rate_window, status, expires_at,"
    " last_used_at, replaces, created_at, revoked_at FROM api_keys WHERE id = $1"
)
LIST_KEYS = (
    "SELECT id, client_id, display, scopes, rate_count, rate_window, status, expires_at,"
    " last_used_at, replaces, created_at, revoked_at FROM api_keys WHERE client_id = $1"
    " ORDER BY created_at, id"
)
SELECT_BY_DIGEST = (
    "SELECT k.id, k.client_id, k.display, k.scopes, k.rate_count, k.rate_window, k.status,"
    " k.expires_at, k.last_used_at, k.replaces, k.created_at, k.revoked_at,"
    " c.name AS c_name, c.scopes AS c_scopes, c.audience AS c_audience,"
    " c.token_ttl AS c_token_ttl, c.status AS c_status, c.created_at AS c_created_at,"
    " c.updated_at AS c_updated_at, c.exchange_audiences AS c_exchange_audiences,"
    " c.dpop_required AS c_dpop_required"
    " FROM api_keys k JOIN clients c ON c.id = k.client_id WHERE k.digest = $1"
)
# Every replica's set of existing keys (known.py): 32 bytes a row, read in the background.
ACTIVE_DIGESTS = "SELECT digest FROM api_keys WHERE status = 'active'"
REVOKE_KEY = (
    "UPDATE api_keys SET status = 'revoked', revoked_at = $2 WHERE id = $1 AND status = 'active'"
)
SHORTEN_KEY = (
    "UPDATE api_keys SET expires_at = $2"
    " WHERE id = $1 AND (expires_at IS NULL OR expires_at > $2)"
)
TOUCH_KEY = (
    "UPDATE api_keys SET last_used_at = $2"
    " WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)"
)


class ApiKeyStore(Protocol):
    async def insert_client(self, client: Client) -> None:
        """Store a new client; ClientExists when its name is taken."""
        ...

    async def insert_client_with_key(self, client: Client, key: ApiKey, digest: bytes) -> bool:
        """Store a client and its first key together, or nothing (False) when a client
        of that name exists: of concurrent callers with one name, exactly one wins."""
        ...

    async def client(self, client_id: str) -> Client | None: ...

    async def client_by_name(self, name: str) -> Client | None: ...

    async def clients(self) -> list[Client]: ...

    async def set_client_status(self, client_id: str, status: str, now: float) -> bool: ...

    async def set_client_token_policy(
        self, client_id: str, exchange_audiences: tuple[str, ...], dpop_required: bool,
        now: float,
    ) -> bool:
        """Replace the client's token-exchange audiences and DPoP requirement."""
        ...

    async def insert_key(self, key: ApiKey, digest: bytes) -> None: ...

    async def key(self, key_id: str) -> ApiKey | None: ...

    async def keys(self, client_id: str) -> list[ApiKey]: ...

    async def by_digest(self, digest: bytes) -> VerifiedKey | None: ...

    async def active_digests(self) -> list[bytes]: ...

    async def revoke_key(self, key_id: str, now: float) -> bool: ...

    async def rotate_key(
        self, old_key_id: str, old_expires_at: float, successor: ApiKey, digest: bytes
    ) -> None:
        """Insert the successor and shorten the old key's life, together."""
        ...

    async def touch(self, last_used: Iterable[tuple[str, float]]) -> None: ...


class SqlApiKeyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert_client(self, client: Client) -> None:
        try:
            await _insert_client(self._db, INSERT_CLIENT, client)
        except UniqueViolation as exc:
            if "name" not in exc.columns:
                raise
            raise ClientExists("a client with this name exists") from None

    async def insert_client_with_key(self, client: Client, key: ApiKey, digest: bytes) -> bool:
        async with self._db.transaction() as tx:
            if not await _insert_client(tx, INSERT_CLIENT_IF_ABSENT, client):
                return False
            await _insert_key(tx, key, digest)
        return True

    async def client(self, client_id: str) -> Client | None:
        row = await self._db.fetchrow(SELECT_CLIENT, client_id)
        return None if row is None else _client(row)

    async def client_by_name(self, name: str) -> Client | None:
        row = await self._db.fetchrow(SELECT_CLIENT_BY_NAME, name)
        return None if row is None else _client(row)

    async def clients(self) -> list[Client]:
        return [_client(r) for r in await self._db.fetch(LIST_CLIENTS)]

    async def set_client_status(self, client_id: str, status: str, now: float) -> bool:
        return await self._db.execute(SET_CLIENT_STATUS, client_id, status, now) == 1

    async def set_client_token_policy(
        self, client_id: str, exchange_audiences: tuple[str, ...], dpop_required: bool,
        now: float,
    ) -> bool:
        return await self._db.execute(
            SET_CLIENT_POLICY, client_id, " ".join(exchange_audiences), dpop_required,
            now,
        ) == 1

    async def insert_key(self, key: ApiKey, digest: bytes) -> None:
        await _insert_key(self._db, key, digest)

    async def key(self, key_id: str) -> ApiKey | None:
        row = await self._db.fetchrow(SELECT_KEY, key_id)
        return None if row is None else _key(row)

    async def keys(self, client_id: str) -> list[ApiKey]:
        return [_key(r) for r in await self._db.fetch(LIST_KEYS, client_id)]

    async def by_digest(self, digest: bytes) -> VerifiedKey | None:
        row = await self._db.fetchrow(SELECT_BY_DIGEST, digest)
        if row is None:
            return None
        client = Client(
            id=row["client_id"], name=row["c_name"], scopes=split_scopes(row["c_scopes"]),
            audiences=tuple(row["c_audience"].split()), token_ttl=row["c_token_ttl"],
            status=row["c_status"], created_at=row["c_created_at"],
            updated_at=row["c_updated_at"],
            exchange_audiences=tuple(row["c_exchange_audiences"].split()),
            dpop_required=bool(row["c_dpop_required"]),
        )
        return VerifiedKey(key=_key(row), client=client)

    async def active_digests(self) -> list[bytes]:
        return [bytes(row["digest"]) for row in await self._db.fetch(ACTIVE_DIGESTS)]

    async def revoke_key(self, key_id: str, now: float) -> bool:
        return await self._db.execute(REVOKE_KEY, key_id, now) == 1

    async def rotate_key(
        self, old_key_id: str, old_expires_at: float, successor: ApiKey, digest: bytes
    ) -> None:
        async with self._db.transaction() as tx:
            await _insert_key(tx, successor, digest)
            await tx.execute(SHORTEN_KEY, old_key_id, old_expires_at)

    async def touch(self, last_used: Iterable[tuple[str, float]]) -> None:
        batch: Sequence[tuple[str, float]] = list(last_used)
        if not batch:
            return
        async with self._db.transaction() as tx:
            for key_id, at in batch:
                await tx.execute(TOUCH_KEY, key_id, at)


async def _insert_client(conn: Connection, sql: str, client: Client) -> int:
    return await conn.execute(
        sql, client.id, client.name, join_scopes(client.scopes),
        " ".join(client.audiences), client.token_ttl, client.created_at,
    )


async def _insert_key(conn: Connection, key: ApiKey, digest: bytes) -> None:
    await conn.execute(
        INSERT_KEY, key.id, key.client_id, digest, key.display, join_scopes(key.scopes),
        None if key.rate is None else key.rate.count,
        None if key.rate is None else key.rate.window,
        key.expires_at, key.replaces, key.created_at,
    )


def _client(row: Row) -> Client:
    return Client(
        id=row["id"], name=row["name"], scopes=split_scopes(row["scopes"]),
        audiences=tuple(row["audience"].split()), token_ttl=row["token_ttl"],
        status=row["status"], created_at=row["created_at"], updated_at=row["updated_at"],
        exchange_audiences=tuple(row["exchange_audiences"].split()),
        dpop_required=bool(row["dpop_required"]),
    )


def _key(row: Row) -> ApiKey:
    count, window = row["rate_count"], row["rate_window"]
    return ApiKey(
        id=row["id"], client_id=row["client_id"], display=row["display"],
        scopes=split_scopes(row["scopes"]),
        rate=None if count is None or window is None else Rate(int(count), float(window)),
        status=row["status"], expires_at=row["expires_at"], last_used_at=row["last_used_at"],
        replaces=row["replaces"], created_at=row["created_at"], revoked_at=row["revoked_at"],
    )
