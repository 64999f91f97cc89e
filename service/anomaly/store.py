"""Login history per user, source networks per API key, and per-key allowed CIDRs.

Both histories are bounded by the code that writes them: after each insert the rows
beyond the newest ``keep`` of that user or key are deleted in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from service.store import Database

INSERT_LOGIN = (
    "INSERT INTO login_history (user_id, at, ip, network, device, amr, reasons)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
TRIM_LOGINS = (
    "DELETE FROM login_history WHERE user_id = $1 AND id NOT IN"
    " (SELECT id FROM login_history WHERE user_id = $1 ORDER BY id DESC LIMIT $2)"
)
RECENT_LOGINS = (
    "SELECT id, user_id, at, ip, network, device, amr, reasons FROM login_history"
    " WHERE user_id = $1 ORDER BY id DESC LIMIT $2"
)
RECENT_ANOMALOUS_LOGINS = (
    "SELECT id, user_id, at, ip, network, device, amr, reasons FROM login_history"
    " WHERE user_id = $1 AND reasons <> '' ORDER BY id DESC LIMIT $2"
)
KEY_NETWORK_COUNT = "SELECT COUNT(*) FROM apikey_networks WHERE key_id = $1"
INSERT_KEY_NETWORK = (
    "INSERT INTO apikey_networks (key_id, network, first_seen, last_seen)"
    " VALUES ($1, $2, $3, $3) ON CONFLICT (key_id, network) DO NOTHING"
)
TOUCH_KEY_NETWORK = (
    "UPDATE apikey_networks SET last_seen = $3 WHERE key_id = $1 AND network = $2"
    " AND last_seen < $3"
)
TRIM_KEY_NETWORKS = (
    "DELETE FROM apikey_networks WHERE key_id = $1 AND network NOT IN"
    " (SELECT network FROM apikey_networks WHERE key_id = $1"
    " ORDER BY last_seen DESC LIMIT $2)"
)
KEY_NETWORKS = (
    "SELECT network, first_seen, last_seen FROM apikey_networks WHERE key_id = $1"
    " ORDER BY last_seen DESC"
)
KEY_ALLOWED = "SELECT allowed_cidrs FROM api_keys WHERE id = $1"
SET_KEY_ALLOWED = "UPDATE api_keys SET allowed_cidrs = $2 WHERE id = $1"


@dataclass(frozen=True, slots=True)
class LoginRecord:
    id: int
    user_id: str
    at: float
    ip: str
    network: str
    device: str
    amr: str
    reasons: str

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "ip": self.ip, "network": self.network, "device": self.device,
                "amr": self.amr.split(), "reasons": self.reasons.split()}


@dataclass(frozen=True, slots=True)
class KeyAccess:
    """What the exchange needs to judge a key's source: its allowed CIDRs (None =
    anywhere) and the networks it was used from."""

    allowed_cidrs: str | None
    networks: frozenset[str]


class AnomalyStore(Protocol):
    async def add_login(self, record: LoginRecord, keep: int) -> None: ...
    async def recent_logins(self, user_id: str, limit: int, *, anomalous: bool = False
                            ) -> list[LoginRecord]: ...
    async def key_access(self, key_id: str) -> KeyAccess | None: ...
    async def add_key_network(self, key_id: str, network: str, now: float, keep: int
                              ) -> tuple[bool, int]: ...
    async def key_networks(self, key_id: str) -> list[dict[str, Any]]: ...
    async def set_allowed_cidrs(self, key_id: str, cidrs: str | None) -> bool: ...


class SqlAnomalyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_login(self, record: LoginRecord, keep: int) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(INSERT_LOGIN, record.user_id, record.at, record.ip, record.network,
                             record.device, record.amr, record.reasons)
            await tx.execute(TRIM_LOGINS, record.user_id, keep)

    async def recent_logins(self, user_id: str, limit: int, *, anomalous: bool = False
                            ) -> list[LoginRecord]:
        rows = await self.db.fetch(RECENT_ANOMALOUS_LOGINS if anomalous else RECENT_LOGINS,
                                   user_id, limit)
        return [LoginRecord(**{**row, "id": int(row["id"])}) for row in rows]

    async def key_access(self, key_id: str) -> KeyAccess | None:
        row = await self.db.fetchrow(KEY_ALLOWED, key_id)
        if row is None:
            return None
        networks = await self.db.fetch(KEY_NETWORKS, key_id)
        return KeyAccess(row["allowed_cidrs"], frozenset(r["network"] for r in networks))

    async def add_key_network(self, key_id: str, network: str, now: float, keep: int
                              ) -> tuple[bool, int]:
        """Record a use from ``network``: (newly inserted?, networks known before).
        The insert decides "new" across replicas: only one of them can insert."""
        async with self.db.transaction() as tx:
            before = int(await tx.fetchval(KEY_NETWORK_COUNT, key_id) or 0)
            inserted = await tx.execute(INSERT_KEY_NETWORK, key_id, network, now) == 1
            if not inserted:
                await tx.execute(TOUCH_KEY_NETWORK, key_id, network, now)
            else:
                await tx.execute(TRIM_KEY_NETWORKS, key_id, keep)
        return inserted, before

    async def key_networks(self, key_id: str) -> list[dict[str, Any]]:
        return [dict(row) for row in await self.db.fetch(KEY_NETWORKS, key_id)]

    async def set_allowed_cidrs(self, key_id: str, cidrs: str | None) -> bool:
        return await self.db.execute(SET_KEY_ALLOWED, key_id, cidrs) == 1
