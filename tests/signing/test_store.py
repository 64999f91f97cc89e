"""The signing-key storage contract, run against PostgreSQL and SQLite."""

from __future__ import annotations

import json

import pytest

from service.signing.store import SigningKeyRecord, SqlSigningKeyStore
from service.store import Database

T0 = 1_800_000_000.5


def record(kid: str, state: str = "next", created: float = T0) -> SigningKeyRecord:
    return SigningKeyRecord(kid=kid, alg="RS256", state=state,  # type: ignore[arg-type]
                            public_jwk=json.dumps({"kid": kid}), created_at=created,
                            activated_at=created if state == "active" else None)


async def test_insert_then_list_and_get(database: Database) -> None:
    """An inserted key is listed, oldest first, with its dates, without its private part."""
    store = SqlSigningKeyStore(database)
    await store.insert(record("b", created=T0 + 1), b"sealed-b")
    await store.insert(record("a", "active"), b"sealed-a")
    listed = await store.list_keys()
    assert [k.kid for k in listed] == ["a", "b"]
    assert listed[0] == record("a", "active")
    assert await store.get("b") == record("b", created=T0 + 1)
    assert await store.get("missing") is None


async def test_private_part_is_read_only_on_request(database: Database) -> None:
    """The sealed private part comes back as bytes, by kid."""
    store = SqlSigningKeyStore(database)
    await store.insert(record("a"), b"\x01sealed")
    assert await store.private_sealed("a") == b"\x01sealed"
    assert await store.private_sealed("missing") is None


async def test_transitions_follow_the_lifecycle(database: Database) -> None:
    """next -> active -> retired -> gone, each stamping its date; gone erases the private part."""
    store = SqlSigningKeyStore(database)
    await store.insert(record("k"), b"sealed")
    assert await store.activate("k", T0 + 1)
    assert await store.retire("k", T0 + 2)
    assert await store.erase("k", T0 + 3)
    got = await store.get("k")
    assert got is not None and got.state == "gone"
    assert (got.activated_at, got.retired_at, got.erased_at) == (T0 + 1, T0 + 2, T0 + 3)
    assert await store.private_sealed("k") is None


async def test_transition_from_the_wrong_state_changes_nothing(database: Database) -> None:
    """activate/retire/erase answer False and change nothing from the wrong state."""
    store = SqlSigningKeyStore(database)
    await store.insert(record("k"), b"sealed")
    assert not await store.retire("k", T0)
    assert not await store.erase("k", T0)
    assert not await store.activate("missing", T0)
    got = await store.get("k")
    assert got is not None and got.state == "next"


async def test_revoke_erases_the_private_part(database: Database) -> None:
    """Revoking a published key stamps revoked_at and erases the private part."""
    store = SqlSigningKeyStore(database)
    await store.insert(record("k", "active"), b"sealed")
    assert await store.revoke("k", T0 + 5)
    got = await store.get("k")
    assert got is not None and got.state == "revoked" and got.revoked_at == T0 + 5
    assert await store.private_sealed("k") is None
    assert not await store.revoke("k", T0 + 6)


async def test_only_one_active_key(database: Database) -> None:
    """The database refuses a second active key."""
    store = SqlSigningKeyStore(database)
    await store.insert(record("a", "active"), b"s")
    await store.insert(record("b"), b"s")
    with pytest.raises(Exception):  # noqa: B017 - the driver's own integrity error
        await store.activate("b", T0)


async def test_fingerprint_changes_on_every_change(database: Database) -> None:
    """Each insert and state change yields a new fingerprint."""
    store = SqlSigningKeyStore(database)
    seen = {await store.fingerprint()}
    await store.insert(record("k"), b"s")
    seen.add(await store.fingerprint())
    await store.activate("k", T0 + 1)
    seen.add(await store.fingerprint())
    await store.retire("k", T0 + 2)
    seen.add(await store.fingerprint())
    await store.erase("k", T0 + 3)
    seen.add(await store.fingerprint())
    assert len(seen) == 5


async def test_locked_store_commits_together(database: Database) -> None:
    """Changes made through locked() are visible after the block and undone on error."""
    store = SqlSigningKeyStore(database)
    async with store.locked() as locked:
        await locked.insert(record("kept"), b"s")
    with pytest.raises(RuntimeError):
        async with store.locked() as locked:
            await locked.insert(record("dropped"), b"s")
            raise RuntimeError("boom")
    assert [k.kid for k in await store.list_keys()] == ["kept"]


async def test_target_algorithm_is_recorded_once_unless_replaced(database: Database) -> None:
    """No target at first; replace=False records one only when none is recorded;
    replace=True changes it, and recording the same value again is no change."""
    store = SqlSigningKeyStore(database)
    assert await store.target_alg() is None
    assert await store.set_target_alg("ES256", T0, replace=False)
    assert not await store.set_target_alg("EdDSA", T0 + 1, replace=False)
    assert await store.target_alg() == "ES256"
    assert await store.set_target_alg("EdDSA", T0 + 2, replace=True)
    assert not await store.set_target_alg("EdDSA", T0 + 3, replace=True)
    assert await store.target_alg() == "EdDSA"


async def test_target_change_changes_the_fingerprint(database: Database) -> None:
    """Replicas notice a new target by the fingerprint they already poll."""
    store = SqlSigningKeyStore(database)
    await store.insert(record("a", "active"), b"s")
    before = await store.fingerprint()
    await store.set_target_alg("ES256", T0 + 5, replace=True)
    assert await store.fingerprint() != before


async def test_withdraw_retires_only_a_next_key(database: Database) -> None:
    """withdraw moves a next key to retired (still published) and nothing else."""
    store = SqlSigningKeyStore(database)
    await store.insert(record("a", "active"), b"s")
    await store.insert(record("n"), b"s")
    assert not await store.withdraw("a", T0 + 1)
    assert await store.withdraw("n", T0 + 1)
    withdrawn = await store.get("n")
    assert withdrawn is not None and withdrawn.state == "retired"
    assert withdrawn.retired_at == T0 + 1 and withdrawn.published

