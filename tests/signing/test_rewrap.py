"""KEK rewrap on a real store (PostgreSQL and SQLite): every sealed value moves to the
new KEK in one transaction, and key rings on either KEK behave as operators expect."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest

from service.audit.log import AuditLog
from service.audit.store import AuditStore
from service.mfa.factors import _associated as totp_associated
from service.mfa.store import SqlMfaStore
from service.sessions.refresh import new_refresh_token, successor_associated
from service.sessions.store import SqlRefreshStore, SqlUserStore
from service.signing.errors import KeyUnsealable, RewrapRefused
from service.signing.kek import Kek, SealError
from service.signing.rewrap import rewrap
from service.signing.rotation import PROPAGATION_SECONDS
from service.signing.store import SealedValue, SqlSealedStore
from service.store import Database
from tests.signing.helpers import POLICY, Signing, build

READY = POLICY.jwks_max_age + PROPAGATION_SECONDS


class Keks:
    """Two KEKs with their raw bytes, so a test can look for them in what was written."""

    def __init__(self) -> None:
        self.old_raw, self.new_raw = os.urandom(32), os.urandom(32)
        self.old, self.new = Kek(self.old_raw), Kek(self.new_raw)


async def _user(db: Database, name: str) -> str:
    user_id = f"usr_{name}"
    assert await SqlUserStore(db).create(user_id, f"{name}@example.com", "hash", 1.0)
    return user_id


async def _successor(db: Database, kek: Kek, user_id: str) -> tuple[bytes, str]:
    """A spent refresh token whose successor is kept sealed for the grace window:
    the spent token's digest and the successor token."""
    store = SqlRefreshStore(db)
    spent = hashlib.sha256(new_refresh_token().encode()).digest()
    successor = new_refresh_token()
    successor_digest = hashlib.sha256(successor.encode()).digest()
    async with db.transaction() as tx:
        await store.create_family(tx, f"sid_{user_id}", user_id, "", "", 1.0, 9e9)
        await store.insert_token(tx, spent, f"sid_{user_id}", 0, 1.0)
        sealed = kek.seal(successor.encode(), successor_associated(spent))
        assert await store.spend(tx, spent, 2.0, successor_digest, sealed)
        await store.insert_token(tx, successor_digest, f"sid_{user_id}", 1, 2.0)
    return spent, successor


async def _totp(db: Database, kek: Kek, user_id: str, secret: str) -> None:
    sealed = kek.seal(secret.encode(), totp_associated(user_id))
    assert await SqlMfaStore(db).put_pending(user_id, sealed, 1.0)


async def _sealed(db: Database) -> dict[str, bytes]:
    """Every sealed blob in the database, by a readable name."""
    found: dict[str, bytes] = {}
    for row in await db.fetch("SELECT kid, private_sealed FROM signing_keys"):
        if row["private_sealed"] is not None:
            found["key:" + row["kid"]] = bytes(row["private_sealed"])
    for row in await db.fetch("SELECT digest, successor_sealed FROM refresh_tokens"):
        if row["successor_sealed"] is not None:
            found["rt:" + bytes(row["digest"]).hex()] = bytes(row["successor_sealed"])
    for row in await db.fetch("SELECT user_id, secret_sealed FROM mfa_totp"):
        found["totp:" + row["user_id"]] = bytes(row["secret_sealed"])
    return found


def _audit(db: Database) -> AuditLog:
    return AuditLog(AuditStore(db))


async def _deployment(db: Database, keks: Keks) -> tuple[Signing, bytes, str]:
    """Signing keys, one sealed refresh successor and one TOTP secret, all under the
    old KEK: the key ring of a running replica, the spent digest and its successor."""
    signing = build(db, kek=keks.old)
    await signing.rotation.ensure_keys()
    user = await _user(db, "alice")
    spent, successor = await _successor(db, keks.old, user)
    await _totp(db, keks.old, user, "JBSWY3DPEHPK3PXP")
    return signing, spent, successor


async def test_every_sealed_value_opens_under_the_new_kek_and_not_the_old(
        database: Database) -> None:
    """After a rewrap, signing keys, refresh successors and TOTP secrets open with the
    new KEK (same plaintext, same associated data) and no longer with the old one."""
    keks = Keks()
    _, spent, successor = await _deployment(database, keks)
    report = await rewrap(SqlSealedStore(database), keks.old, keks.new, audit=_audit(database))
    assert report.as_dict()["signing_key"]["rewrapped"] == 2
    assert report.as_dict()["refresh_successor"]["rewrapped"] == 1
    assert report.as_dict()["totp_secret"]["rewrapped"] == 1
    sealed = await _sealed(database)
    rt = sealed["rt:" + spent.hex()]
    assert keks.new.open(rt, successor_associated(spent)).decode() == successor
    totp = sealed["totp:usr_alice"]
    assert keks.new.open(totp, totp_associated("usr_alice")) == b"JBSWY3DPEHPK3PXP"
    for name, blob in sealed.items():
        with pytest.raises(SealError):
            keks.old.open(blob, name.split(":", 1)[1])


async def test_a_key_ring_on_the_new_kek_loads_and_signs_after_rewrap(
        database: Database) -> None:
    """A replica started with the new KEK opens the rewrapped keys and issues tokens
    that a replica still on the old KEK verifies: the key set itself is unchanged."""
    keks = Keks()
    running, _, _ = await _deployment(database, keks)
    await rewrap(SqlSealedStore(database), keks.old, keks.new, audit=_audit(database))
    restarted = build(database, kek=keks.new, clock=running.clock)
    await restarted.keys.refresh(force=True)
    assert restarted.keys.jwks_body == running.keys.jwks_body
    issued = await restarted.issuer.issue(subject="s", audience="a", scope="", client_id="c",
                                          ttl=60)
    assert running.keys.verify(issued.token)["sub"] == "s"


async def test_a_running_replica_on_the_old_kek_keeps_signing_after_rewrap(
        database: Database) -> None:
    """A replica that loaded its keys before the rewrap reloads without error and goes
    on signing with the keys in memory."""
    keks = Keks()
    running, _, _ = await _deployment(database, keks)
    await rewrap(SqlSealedStore(database), keks.old, keks.new, audit=_audit(database))
    await running.keys.refresh(force=True)
    issued = await running.issuer.issue(subject="s", audience="a", scope="", client_id="c",
                                        ttl=60)
    assert running.keys.verify(issued.token)["sub"] == "s"


async def test_an_old_kek_replica_publishes_a_key_it_cannot_open_and_keeps_signing(
        database: Database) -> None:
    """When a new-KEK replica rotates twice, an old-KEK replica reports KeyUnsealable,
    publishes the new keys and signs with its in-memory key, which stays verifiable."""
    keks = Keks()
    old_replica, _, _ = await _deployment(database, keks)
    await rewrap(SqlSealedStore(database), keks.old, keks.new, audit=_audit(database))
    new_replica = build(database, kek=keks.new, clock=old_replica.clock)
    await new_replica.keys.refresh(force=True)
    for _ in range(2):
        old_replica.clock.now += READY
        await new_replica.rotation.rotate(trigger="cli")
        with pytest.raises(KeyUnsealable):
            await old_replica.keys.refresh(force=True)
    assert old_replica.keys.jwks_body == new_replica.keys.jwks_body
    issued = await old_replica.issuer.issue(subject="s", audience="a", scope="",
                                            client_id="c", ttl=60)
    assert issued.kid != new_replica.keys.signer().kid
    assert new_replica.keys.verify(issued.token)["sub"] == "s"


async def test_a_replica_started_on_the_old_kek_after_rewrap_refuses_to_load(
        database: Database) -> None:
    """A key ring with no key in memory yet raises KeyUnsealable and loads nothing,
    so a server restarted with the old KEK stops instead of serving."""
    keks = Keks()
    await _deployment(database, keks)
    await rewrap(SqlSealedStore(database), keks.old, keks.new, audit=_audit(database))
    late = build(database, kek=keks.old)
    with pytest.raises(KeyUnsealable):
        await late.keys.refresh(force=True)
    assert late.keys.active is None and json.loads(late.keys.jwks_body) == {"keys": []}


async def test_a_second_run_rewraps_nothing_and_changes_nothing(database: Database) -> None:
    """Run again with the same KEKs, every value is counted as already new and left
    exactly as it was."""
    keks = Keks()
    await _deployment(database, keks)
    await rewrap(SqlSealedStore(database), keks.old, keks.new, audit=_audit(database))
    before = await _sealed(database)
    again = await rewrap(SqlSealedStore(database), keks.old, keks.new,
                         audit=_audit(database))
    assert again.rewrapped == 0
    assert [c["already_new"] for k, c in again.as_dict().items()
            if k in ("signing_key", "refresh_successor", "totp_secret")] == [2, 1, 1]
    assert await _sealed(database) == before


async def test_a_value_sealed_under_the_old_kek_later_is_caught_by_a_second_run(
        database: Database) -> None:
    """A TOTP secret sealed under the old KEK after the first run (a replica not yet
    restarted) is rewrapped by the second run, the rest is left as it is."""
    keks = Keks()
    await _deployment(database, keks)
    await rewrap(SqlSealedStore(database), keks.old, keks.new, audit=_audit(database))
    bob = await _user(database, "bob")
    await _totp(database, keks.old, bob, "KRSXG5CTMVRXEZLU")
    again = await rewrap(SqlSealedStore(database), keks.old, keks.new,
                         audit=_audit(database))
    assert again.as_dict()["totp_secret"] == {
        "rewrapped": 1, "already_new": 1, "changed": 0, "unopenable": 0}
    sealed = (await _sealed(database))["totp:" + bob]
    assert keks.new.open(sealed, totp_associated(bob)) == b"KRSXG5CTMVRXEZLU"


async def test_the_same_kek_twice_is_refused_and_changes_nothing(database: Database) -> None:
    """A new KEK equal to the current one is refused before anything is written."""
    keks = Keks()
    await _deployment(database, keks)
    before = await _sealed(database)
    with pytest.raises(RewrapRefused):
        await rewrap(SqlSealedStore(database), keks.old, Kek(keks.old_raw),
                     audit=_audit(database))
    assert await _sealed(database) == before


async def test_a_wrong_current_kek_aborts_and_changes_nothing(database: Database) -> None:
    """With a configured KEK that opens no signing key, the run fails naming a key and
    rolls back everything, including values it could have rewrapped."""
    keks = Keks()
    await _deployment(database, keks)
    stranger = Kek(os.urandom(32))
    bob = await _user(database, "bob")
    await _totp(database, stranger, bob, "KRSXG5CTMVRXEZLU")
    before = await _sealed(database)
    with pytest.raises(KeyUnsealable):
        await rewrap(SqlSealedStore(database), stranger, keks.new, audit=_audit(database))
    assert await _sealed(database) == before


async def test_an_unopenable_totp_secret_is_reported_and_left_alone(
        database: Database) -> None:
    """A TOTP secret that opens under neither KEK is counted, its user named, its
    value untouched, and every other value is still rewrapped."""
    keks = Keks()
    await _deployment(database, keks)
    bob = await _user(database, "bob")
    await _totp(database, Kek(os.urandom(32)), bob, "KRSXG5CTMVRXEZLU")
    broken = (await _sealed(database))["totp:" + bob]
    report = await rewrap(SqlSealedStore(database), keks.old, keks.new,
                          audit=_audit(database))
    assert report.unopenable_totp_users == [bob]
    assert report.as_dict()["totp_secret"]["rewrapped"] == 1
    assert (await _sealed(database))["totp:" + bob] == broken


async def test_reseal_writes_nothing_when_the_row_changed_meanwhile(
        database: Database) -> None:
    """reseal compares the old blob: a value replaced after it was read keeps its
    replacement."""
    keks = Keks()
    user = await _user(database, "alice")
    await _totp(database, keks.old, user, "JBSWY3DPEHPK3PXP")
    store = SqlSealedStore(database)
    [value] = await store.sealed_values("totp_secret")
    await _totp(database, keks.old, user, "KRSXG5CTMVRXEZLU")
    replacement = (await _sealed(database))["totp:" + user]
    assert not await store.reseal(value, b"\x01" + b"x" * 40)
    assert (await _sealed(database))["totp:" + user] == replacement
    assert await store.reseal(SealedValue("totp_secret", user, replacement), b"new")
    assert (await _sealed(database))["totp:" + user] == b"new"


async def test_the_audit_event_has_the_counts_and_never_a_kek(database: Database) -> None:
    """One kek.rewrap audit event carries the counts and the actor, and neither KEK in
    any encoding."""
    keks = Keks()
    await _deployment(database, keks)
    await rewrap(SqlSealedStore(database), keks.old, keks.new, audit=_audit(database),
                 actor="cli")
    rows = await database.fetch("SELECT * FROM audit_events WHERE action = 'kek.rewrap'")
    assert len(rows) == 1 and rows[0]["actor"] == "cli"
    assert json.loads(rows[0]["details"])["rewrapped"] == 4
    text = json.dumps(rows[0], default=str)
    for raw in (keks.old_raw, keks.new_raw):
        for encoded in (base64.b64encode(raw).decode(), raw.hex()):
            assert encoded not in text
