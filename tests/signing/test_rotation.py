"""Rotation and revocation acting on a real store (PostgreSQL and SQLite)."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from service.errors import InvalidToken
from service.signing.errors import (
    KeyNotFound,
    KeyNotRevocable,
    KeyUnsealable,
    RotationNotReady,
)
from service.signing.kek import Kek
from service.signing.keys import GeneratedKey
from service.signing.rotation import PROPAGATION_SECONDS
from service.store import Database, open_database
from tests.signing.helpers import POLICY, Clock, Signing, build

READY = POLICY.jwks_max_age + PROPAGATION_SECONDS


def kids(body: bytes) -> set[str]:
    return {k["kid"] for k in json.loads(body)["keys"]}


async def states(db: Database) -> dict[str, str]:
    return {r["kid"]: r["state"] for r in await db.fetch("SELECT kid, state FROM signing_keys")}


async def test_first_start_creates_one_active_and_one_next(database: Database) -> None:
    """ensure_keys on an empty table makes exactly one active and one next key."""
    signing = build(database)
    await signing.rotation.ensure_keys()
    assert sorted((await states(database)).values()) == ["active", "next"]
    assert signing.keys.active is not None
    assert len(kids(signing.keys.jwks_body)) == 2


async def test_ensure_keys_twice_changes_nothing(database: Database) -> None:
    """A second start finds the key set complete and adds nothing."""
    signing = build(database)
    await signing.rotation.ensure_keys()
    assert await signing.rotation.ensure_keys() is None
    assert len(await states(database)) == 2


async def test_rotation_refused_until_next_key_published(database: Database) -> None:
    """rotate() right after the next key appeared is refused and changes nothing."""
    signing = build(database)
    await signing.rotation.ensure_keys()
    before = await states(database)
    signing.clock.now += READY - 1
    with pytest.raises(RotationNotReady):
        await signing.rotation.rotate(trigger="cli")
    assert await states(database) == before


async def test_rotation_promotes_next_and_retires_active(database: Database) -> None:
    """After max-age the next key signs, the old one is retired and still published."""
    signing = build(database)
    first = await signing.rotation.ensure_keys()
    assert first is not None
    signing.clock.now += READY
    change = await signing.rotation.rotate(trigger="cli", actor="cli")
    assert change.retired == first.active and change.active == first.next
    assert (await states(database))[first.active or ""] == "retired"
    assert signing.keys.signer().kid == first.next
    assert {first.active, first.next, change.next} == kids(signing.keys.jwks_body)


async def test_rotation_is_audited(database: Database) -> None:
    """A rotation writes a signing_key.rotate audit event."""
    signing = build(database)
    await signing.rotation.ensure_keys()
    signing.clock.now += READY
    await signing.rotation.rotate(trigger="cli", actor="cli")
    rows = await database.fetch(
        "SELECT outcome, actor FROM audit_events WHERE action = 'signing_key.rotate'"
    )
    assert rows == [{"outcome": "ok", "actor": "cli"}]


async def test_old_tokens_still_verify_after_rotation(database: Database) -> None:
    """A token signed before a rotation verifies after it (the retired key stays)."""
    signing = build(database)
    await signing.rotation.ensure_keys()
    issued = await signing.issuer.issue(subject="s", audience="a", scope="x",
                                        client_id="c", ttl=900)
    signing.clock.now += READY
    await signing.rotation.rotate(trigger="cli")
    assert signing.keys.verify(issued.token)["jti"] == issued.jti


async def test_retired_key_goes_after_its_tokens_expired(database: Database) -> None:
    """maintain() erases a retired key once max TTL + max-age + propagation passed."""
    signing = build(database)
    first = await signing.rotation.ensure_keys()
    assert first is not None and first.active is not None
    signing.clock.now += READY
    await signing.rotation.rotate(trigger="cli")
    signing.clock.now += POLICY.max_token_ttl + READY - 1
    await signing.rotation.maintain()
    assert (await states(database))[first.active] == "retired"
    signing.clock.now += 1
    await signing.rotation.maintain()
    assert (await states(database))[first.active] == "gone"
    assert first.active not in kids(signing.keys.jwks_body)
    assert await signing.store.private_sealed(first.active) is None


async def test_scheduled_rotation_after_interval(database: Database) -> None:
    """maintain() rotates once the active key is older than the rotation interval."""
    signing = build(database)
    first = await signing.rotation.ensure_keys()
    assert first is not None
    signing.clock.now += POLICY.rotation_interval
    change = await signing.rotation.maintain()
    assert change is not None and change.active == first.next
    assert await signing.rotation.maintain() is None


async def test_revoking_the_active_key_promotes_the_next(database: Database) -> None:
    """Revoking the active key removes it from the JWKS and the next key signs at once."""
    signing = build(database)
    first = await signing.rotation.ensure_keys()
    assert first is not None and first.active is not None
    issued = await signing.issuer.issue(subject="s", audience="a", scope="", client_id="c",
                                        ttl=900)
    change = await signing.rotation.revoke(first.active, actor="cli")
    assert first.active not in kids(signing.keys.jwks_body)
    assert signing.keys.signer().kid == first.next == change.active
    assert sorted((await states(database)).values()) == ["active", "next", "revoked"]
    with pytest.raises(InvalidToken):
        signing.keys.verify(issued.token)


async def test_revoking_the_next_key_replaces_it(database: Database) -> None:
    """Revoking the next key publishes a fresh next key."""
    signing = build(database)
    first = await signing.rotation.ensure_keys()
    assert first is not None and first.next is not None
    change = await signing.rotation.revoke(first.next)
    assert change.next not in (None, first.next) and change.active == first.active
    assert first.next not in kids(signing.keys.jwks_body)


async def test_revoke_unknown_or_revoked_key_is_refused(database: Database) -> None:
    """Revoking a missing kid is 404; a revoked one is 409."""
    signing = build(database)
    first = await signing.rotation.ensure_keys()
    assert first is not None and first.next is not None
    with pytest.raises(KeyNotFound):
        await signing.rotation.revoke("no-such-kid")
    await signing.rotation.revoke(first.next)
    with pytest.raises(KeyNotRevocable):
        await signing.rotation.revoke(first.next)


async def test_wrong_kek_refuses_to_load(database: Database) -> None:
    """A key ring with another KEK fails with KeyUnsealable naming the active key."""
    first = await build(database).rotation.ensure_keys()
    assert first is not None
    other = build(database, kek=Kek(os.urandom(32)))
    with pytest.raises(KeyUnsealable) as caught:
        await other.keys.refresh()
    assert caught.value.kid in (first.active, first.next)


async def test_wrong_kek_cannot_rotate(database: Database) -> None:
    """Rotation with another KEK is refused and adds no key sealed under it."""
    signing = build(database)
    await signing.rotation.ensure_keys()
    other = build(database, kek=Kek(os.urandom(32)), clock=Clock(signing.clock.now + READY))
    with pytest.raises(KeyUnsealable):
        await other.rotation.rotate(trigger="cli")
    assert len(await states(database)) == 2


async def test_concurrent_first_starts_make_one_key_set(pg_template_url: str) -> None:
    """Two replicas starting at once on PostgreSQL create one active and one next key."""
    dbs = [await open_database(pg_template_url) for _ in range(2)]
    try:
        await dbs[0].execute("TRUNCATE signing_keys, audit_events")
        kek = Kek(os.urandom(32))
        replicas = [build(db, kek=kek) for db in dbs]
        await asyncio.gather(*(r.rotation.ensure_keys() for r in replicas))
        assert sorted((await states(dbs[0])).values()) == ["active", "next"]
        await replicas[0].keys.refresh()
        await replicas[1].keys.refresh()
        assert replicas[0].keys.jwks_etag == replicas[1].keys.jwks_etag
    finally:
        for db in dbs:
            await db.close()


def count_generations(signing: Signing, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every RSA key the rotation generates (each one costs ~60 ms of CPU)."""
    made: list[str] = []
    original = signing.rotation._generate

    async def counted(alg: str) -> GeneratedKey:
        key = await original(alg)
        made.append(key.kid)
        return key

    monkeypatch.setattr(signing.rotation, "_generate", counted)
    return made


async def test_refused_rotation_or_revocation_generates_no_key(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 409 (too early, already revoked) or 404 (unknown kid) is decided before any
    key is generated."""
    signing = build(database)
    first = await signing.rotation.ensure_keys()
    assert first is not None and first.next is not None
    await signing.rotation.revoke(first.next)
    made = count_generations(signing, monkeypatch)
    with pytest.raises(RotationNotReady):
        await signing.rotation.rotate(trigger="cli")
    with pytest.raises(KeyNotFound):
        await signing.rotation.revoke("no-such-kid")
    with pytest.raises(KeyNotRevocable):
        await signing.rotation.revoke(first.next)
    assert made == []


async def test_a_granted_rotation_generates_one_key(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one key a rotation needs is generated once, and becomes the next key."""
    signing = build(database)
    await signing.rotation.ensure_keys()
    signing.clock.now += READY
    made = count_generations(signing, monkeypatch)
    change = await signing.rotation.rotate(trigger="cli")
    assert made == [change.next]


async def test_rotate_on_an_empty_key_set_creates_it(database: Database) -> None:
    """rotate() with no key stored makes one active and one next key and says so."""
    signing = build(database)
    change = await signing.rotation.rotate(trigger="cli", actor="cli")
    assert change.action == "create"
    assert await states(database) == {change.active: "active", change.next: "next"}
    assert signing.keys.signer().kid == change.active


async def test_rotate_without_a_next_key_publishes_one_and_names_its_time(
    database: Database
) -> None:
    """rotate() with an active key but no next one publishes a next key and refuses
    naming that key and the instant it becomes promotable, which then holds."""
    signing = build(database)
    first = await signing.rotation.ensure_keys()
    assert first is not None
    await database.execute("DELETE FROM signing_keys WHERE kid = $1", first.next)
    with pytest.raises(RotationNotReady) as refused:
        await signing.rotation.rotate(trigger="cli")
    created = [kid for kid, state in (await states(database)).items() if state == "next"]
    assert [refused.value.kid] == created
    assert refused.value.ready_at == signing.clock.now + READY
    signing.clock.now = refused.value.ready_at
    assert (await signing.rotation.rotate(trigger="cli")).active == refused.value.kid


async def test_a_new_next_key_is_stamped_when_inserted_not_when_the_rotation_began(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A next key's publication delay runs from its insert, when replicas can first see
    it: the time its generation (or the wait for the lock) took does not count."""
    signing = build(database)
    await signing.rotation.ensure_keys()
    signing.clock.now += READY
    began = signing.clock.now
    original = signing.rotation._generate

    async def slow(alg: str) -> GeneratedKey:
        key = await original(alg)
        signing.clock.now += 40
        return key

    monkeypatch.setattr(signing.rotation, "_generate", slow)
    change = await signing.rotation.rotate(trigger="cli")
    assert change.next is not None
    record = await signing.store.get(change.next)
    assert record is not None
    assert record.created_at == began + 40
    assert signing.rotation.policy.promotable_at(record) == began + 40 + READY
