"""The clients' token policy in the store (exchange audiences, DPoP required), on
PostgreSQL and SQLite alike."""

from __future__ import annotations

import time

from service.apikeys import keyformat
from service.apikeys.models import ApiKey, Client
from service.apikeys.store import SqlApiKeyStore
from service.store import Database


def _client() -> Client:
    now = time.time()
    return Client(
        id=keyformat.new_id("cl_"), name=f"svc-{time.time_ns()}", scopes=frozenset({"a"}),
        audiences=("aud1",), token_ttl=600.0, status="active", created_at=now, updated_at=now,
    )


async def test_a_new_client_exchanges_nothing_and_needs_no_dpop(database: Database) -> None:
    """By default a client has no exchange audiences and does not require DPoP."""
    store = SqlApiKeyStore(database)
    client = _client()
    await store.insert_client(client)
    stored = await store.client(client.id)
    assert stored is not None
    assert stored.exchange_audiences == () and stored.dpop_required is False


async def test_the_token_policy_round_trips(database: Database) -> None:
    """Exchange audiences (in order) and the DPoP requirement read back as set."""
    store = SqlApiKeyStore(database)
    client = _client()
    await store.insert_client(client)
    assert await store.set_client_token_policy(client.id, ("svc-b", "svc-c"), True, time.time())
    stored = await store.client(client.id)
    assert stored is not None
    assert stored.exchange_audiences == ("svc-b", "svc-c") and stored.dpop_required is True


async def test_the_key_lookup_carries_the_token_policy(database: Database) -> None:
    """The exchange path's one read (by digest) sees the client's token policy."""
    store = SqlApiKeyStore(database)
    client = _client()
    await store.insert_client(client)
    await store.set_client_token_policy(client.id, ("svc-b",), True, time.time())
    plaintext = keyformat.generate("ak_test")
    key = ApiKey(
        id=keyformat.new_id("key_"), client_id=client.id,
        display=keyformat.display(plaintext, "ak_test"), scopes=frozenset({"a"}), rate=None,
        status="active", expires_at=None, last_used_at=None, replaces=None,
        created_at=time.time(), revoked_at=None,
    )
    await store.insert_key(key, keyformat.digest(plaintext))
    verified = await store.by_digest(keyformat.digest(plaintext))
    assert verified is not None
    assert verified.client.exchange_audiences == ("svc-b",)
    assert verified.client.dpop_required is True


async def test_policy_of_an_unknown_client_changes_nothing(database: Database) -> None:
    """Setting the policy of a client that does not exist reports False."""
    assert not await SqlApiKeyStore(database).set_client_token_policy(
        "cl_missing", ("svc-b",), False, time.time())
