"""The API-key store's contract, on PostgreSQL and SQLite alike."""

from __future__ import annotations

import asyncio
import time

import pytest

from service.apikeys import keyformat
from service.apikeys.errors import ClientExists
from service.apikeys.models import ApiKey, Client
from service.apikeys.store import SqlApiKeyStore
from service.config import Rate
from service.store import Database


def _client(name: str = "svc", status: str = "active") -> Client:
    now = time.time()
    return Client(
        id=keyformat.new_id("cl_"), name=name, scopes=frozenset({"a", "b"}),
        audiences=("aud1", "aud2"), token_ttl=600.0, status=status,
        created_at=now, updated_at=now,
    )


def _key(client_id: str, *, rate: Rate | None = None, replaces: str | None = None,
         expires_at: float | None = None) -> tuple[ApiKey, str]:
    plaintext = keyformat.generate("ak_test")
    key = ApiKey(
        id=keyformat.new_id("key_"), client_id=client_id,
        display=keyformat.display(plaintext, "ak_test"), scopes=frozenset({"a"}), rate=rate,
        status="active", expires_at=expires_at, last_used_at=None, replaces=replaces,
        created_at=time.time(), revoked_at=None,
    )
    return key, plaintext


async def test_client_round_trips(database: Database) -> None:
    """A stored client reads back equal, by id and by name."""
    store = SqlApiKeyStore(database)
    client = _client()
    await store.insert_client(client)
    assert await store.client(client.id) == client
    assert await store.client_by_name("svc") == client


async def test_unknown_client_is_none(database: Database) -> None:
    """Looking up a client that does not exist answers None."""
    assert await SqlApiKeyStore(database).client("cl_missing") is None


async def test_clients_are_listed_in_creation_order(database: Database) -> None:
    """clients() lists every client, oldest first."""
    store = SqlApiKeyStore(database)
    first, second = _client("one"), _client("two")
    await store.insert_client(first)
    await store.insert_client(second)
    assert [c.name for c in await store.clients()] == ["one", "two"]


async def test_client_status_changes(database: Database) -> None:
    """set_client_status disables a client and reports that a row changed."""
    store = SqlApiKeyStore(database)
    client = _client()
    await store.insert_client(client)
    assert await store.set_client_status(client.id, "disabled", time.time())
    stored = await store.client(client.id)
    assert stored is not None and stored.status == "disabled"


async def test_key_round_trips_with_rate_and_expiry(database: Database) -> None:
    """A stored key reads back equal, including its rate limit and expiry."""
    store = SqlApiKeyStore(database)
    client = _client()
    await store.insert_client(client)
    key, plaintext = _key(client.id, rate=Rate(100, 60.0), expires_at=time.time() + 60)
    await store.insert_key(key, keyformat.digest(plaintext))
    assert await store.key(key.id) == key


async def test_key_is_found_by_digest_with_its_client(database: Database) -> None:
    """by_digest returns the key and its client in one read."""
    store = SqlApiKeyStore(database)
    client = _client()
    await store.insert_client(client)
    key, plaintext = _key(client.id)
    await store.insert_key(key, keyformat.digest(plaintext))
    verified = await store.by_digest(keyformat.digest(plaintext))
    assert verified is not None
    assert verified.key == key and verified.client == client


async def test_unknown_digest_is_none(database: Database) -> None:
    """A digest no key has answers None."""
    digest = keyformat.digest(keyformat.generate("ak_test"))
    assert await SqlApiKeyStore(database).by_digest(digest) is None


async def test_plaintext_is_not_stored(database: Database) -> None:
    """Only the digest and the display form of a key reach the database."""
    store = SqlApiKeyStore(database)
    client = _client()
    await store.insert_client(client)
    key, plaintext = _key(client.id)
    await store.insert_key(key, keyformat.digest(plaintext))
    row = await database.fetchrow("SELECT * FROM api_keys WHERE id = $1", key.id)
    assert row is not None
    assert plaintext not in repr(row)
    assert bytes(row["digest"]) == keyformat.digest(plaintext)


async def test_revoke_marks_the_key_once(database: Database) -> None:
    """revoke_key changes an active key and reports no change the second time."""
    store = SqlApiKeyStore(database)
    client = _client()
    await store.insert_client(client)
    key, plaintext = _key(client.id)
    await store.insert_key(key, keyformat.digest(plaintext))
    assert await store.revoke_key(key.id, time.time())
    assert not await store.revoke_key(key.id, time.time())
    stored = await store.key(key.id)
    assert stored is not None and stored.status == "revoked" and stored.revoked_at is not None


async def test_rotate_inserts_successor_and_shortens_old_key(database: Database) -> None:
    """rotate_key stores the successor and sets the old key's expiry, together."""
    store = SqlApiKeyStore(database)
    client = _client()
    await store.insert_client(client)
    old, old_plain = _key(client.id)
    await store.insert_key(old, keyformat.digest(old_plain))
    new, new_plain = _key(client.id, replaces=old.id)
    until = time.time() + 3600
    await store.rotate_key(old.id, until, new, keyformat.digest(new_plain))
    stored_old = await store.key(old.id)
    assert stored_old is not None and stored_old.expires_at == until
    assert await store.key(new.id) == new


async def test_rotate_never_extends_an_earlier_expiry(database: Database) -> None:
    """An overlap longer than the old key's remaining life leaves its expiry alone."""
    store = SqlApiKeyStore(database)
    client = _client()
    await store.insert_client(client)
    soon = time.time() + 60
    old, old_plain = _key(client.id, expires_at=soon)
    await store.insert_key(old, keyformat.digest(old_plain))
    new, new_plain = _key(client.id, replaces=old.id)
    await store.rotate_key(old.id, time.time() + 86400, new, keyformat.digest(new_plain))
    stored_old = await store.key(old.id)
    assert stored_old is not None and stored_old.expires_at == soon


async def test_keys_are_listed_per_client(database: Database) -> None:
    """keys(client) lists that client's keys only."""
    store = SqlApiKeyStore(database)
    a, b = _client("a"), _client("b")
    await store.insert_client(a)
    await store.insert_client(b)
    key_a, plain_a = _key(a.id)
    key_b, plain_b = _key(b.id)
    await store.insert_key(key_a, keyformat.digest(plain_a))
    await store.insert_key(key_b, keyformat.digest(plain_b))
    assert [k.id for k in await store.keys(a.id)] == [key_a.id]


async def test_touch_only_moves_last_used_forward(database: Database) -> None:
    """touch records a later last-use time and ignores an earlier one."""
    store = SqlApiKeyStore(database)
    client = _client()
    await store.insert_client(client)
    key, plaintext = _key(client.id)
    await store.insert_key(key, keyformat.digest(plaintext))
    await store.touch([(key.id, 200.0)])
    await store.touch([(key.id, 100.0)])
    stored = await store.key(key.id)
    assert stored is not None and stored.last_used_at == 200.0


async def test_a_taken_client_name_is_client_exists(database: Database) -> None:
    """Inserting a second client with a taken name raises ClientExists (409), not a
    storage error."""
    store = SqlApiKeyStore(database)
    await store.insert_client(_client("twin"))
    with pytest.raises(ClientExists):
        await store.insert_client(_client("twin"))


async def test_concurrent_inserts_of_one_name_store_one_client(database: Database) -> None:
    """Of eight concurrent inserts of one name one succeeds; the others are ClientExists."""
    store = SqlApiKeyStore(database)
    outcomes = await asyncio.gather(*(store.insert_client(_client("race")) for _ in range(8)),
                                    return_exceptions=True)
    assert outcomes.count(None) == 1
    assert all(isinstance(o, ClientExists) for o in outcomes if o is not None)
    assert [c.name for c in await store.clients()] == ["race"]


async def test_client_with_key_stores_both(database: Database) -> None:
    """insert_client_with_key stores the client and its key, and answers True."""
    store = SqlApiKeyStore(database)
    client = _client("admin")
    key, plaintext = _key(client.id)
    assert await store.insert_client_with_key(client, key, keyformat.digest(plaintext))
    assert await store.client_by_name("admin") == client
    assert [k.id for k in await store.keys(client.id)] == [key.id]


async def test_client_with_key_on_a_taken_name_stores_nothing(database: Database) -> None:
    """With the name taken, insert_client_with_key answers False and adds no key."""
    store = SqlApiKeyStore(database)
    first = _client("admin")
    await store.insert_client(first)
    second = _client("admin")
    key, plaintext = _key(second.id)
    assert not await store.insert_client_with_key(second, key, keyformat.digest(plaintext))
    assert await store.key(key.id) is None
    assert [c.id for c in await store.clients()] == [first.id]


async def test_concurrent_client_with_key_has_one_winner(database: Database) -> None:
    """Of eight concurrent insert_client_with_key of one name exactly one stores."""
    store = SqlApiKeyStore(database)
    pairs = [(client, *_key(client.id)) for client in (_client("admin") for _ in range(8))]
    won = await asyncio.gather(*(
        store.insert_client_with_key(client, key, keyformat.digest(plaintext))
        for client, key, plaintext in pairs
    ))
    assert won.count(True) == 1
    [client] = await store.clients()
    assert len(await store.keys(client.id)) == 1
