"""The anomaly storage contract, on PostgreSQL and SQLite alike."""

from __future__ import annotations

import time

from service.anomaly.store import LoginRecord, SqlAnomalyStore
from service.sessions.store import SqlUserStore
from service.store import Database


async def _user(db: Database) -> str:
    user_id = f"usr_{time.time_ns()}"
    assert await SqlUserStore(db).create(user_id, f"{user_id}@example.com", "hash", time.time())
    return user_id


async def _key(db: Database) -> str:
    """A key row, inserted as the apikeys store would."""
    now = time.time()
    client_id = f"cl_{time.time_ns()}"
    await db.execute(
        "INSERT INTO clients (id, name, scopes, audience, token_ttl, created_at, updated_at)"
        " VALUES ($1, $1, '', 'api', 900, $2, $2)", client_id, now)
    key_id = f"key_{time.time_ns()}"
    await db.execute(
        "INSERT INTO api_keys (id, client_id, digest, display, created_at)"
        " VALUES ($1, $2, $3, 'ak_test_...', $4)", key_id, client_id, key_id.encode(), now)
    return key_id


async def test_login_history_keeps_the_newest_entries_only(database: Database) -> None:
    """After more logins than ``keep`` only the newest ``keep`` remain, newest first."""
    store, user = SqlAnomalyStore(database), await _user(database)
    for n in range(7):
        await store.add_login(LoginRecord(0, user, float(n), f"10.0.{n}.1", f"10.0.{n}.0/24",
                                          "curl", "pwd", ""), keep=5)
    recent = await store.recent_logins(user, 100)
    assert [r.at for r in recent] == [6.0, 5.0, 4.0, 3.0, 2.0]


async def test_only_anomalous_logins_are_listed_as_anomalies(database: Database) -> None:
    """recent_logins(anomalous=True) returns only logins with reasons."""
    store, user = SqlAnomalyStore(database), await _user(database)
    await store.add_login(LoginRecord(0, user, 1.0, "10.0.0.1", "10.0.0.0/24", "curl", "pwd",
                                      ""), keep=10)
    await store.add_login(LoginRecord(0, user, 2.0, "10.9.0.1", "10.9.0.0/24", "curl", "pwd",
                                      "new_network"), keep=10)
    anomalous = await store.recent_logins(user, 10, anomalous=True)
    assert [r.reasons for r in anomalous] == ["new_network"]


async def test_a_key_network_is_new_exactly_once(database: Database) -> None:
    """add_key_network reports a network as new on its first insert only, with the
    count of networks known before."""
    store, key = SqlAnomalyStore(database), await _key(database)
    assert await store.add_key_network(key, "10.0.0.0/24", 1.0, 32) == (True, 0)
    assert await store.add_key_network(key, "10.0.0.0/24", 2.0, 32) == (False, 1)
    assert await store.add_key_network(key, "10.1.0.0/24", 3.0, 32) == (True, 1)


async def test_key_networks_are_bounded_by_last_use(database: Database) -> None:
    """Beyond ``keep`` networks the least recently used one is dropped."""
    store, key = SqlAnomalyStore(database), await _key(database)
    for n in range(4):
        await store.add_key_network(key, f"10.{n}.0.0/24", float(n), 3)
    access = await store.key_access(key)
    assert access is not None
    assert access.networks == frozenset({"10.1.0.0/24", "10.2.0.0/24", "10.3.0.0/24"})


async def test_allowed_cidrs_are_stored_per_key(database: Database) -> None:
    """set_allowed_cidrs sets and clears a key's CIDRs; an unknown key is reported."""
    store, key = SqlAnomalyStore(database), await _key(database)
    assert await store.set_allowed_cidrs(key, "10.0.0.0/8 2001:db8::/32")
    access = await store.key_access(key)
    assert access is not None and access.allowed_cidrs == "10.0.0.0/8 2001:db8::/32"
    assert await store.set_allowed_cidrs(key, None)
    cleared = await store.key_access(key)
    assert cleared is not None and cleared.allowed_cidrs is None
    assert not await store.set_allowed_cidrs("key_missing", None)
    assert await store.key_access("key_missing") is None

