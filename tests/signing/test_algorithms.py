"""Algorithm agility in-process (issue 16): keys, tokens and a change of the key set's
target algorithm through the ordinary lifecycle, on PostgreSQL and SQLite."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import jwt
import pytest

from service.audit.log import AuditLog
from service.audit.store import AuditStore
from service.signing.keys import ALGORITHMS
from service.signing.target import record_target
from service.store import Database
from tests.signing.helpers import ISSUER, POLICY, Signing, build

READY = POLICY.propagation + POLICY.jwks_max_age


@pytest.fixture
async def signing(database: Database) -> AsyncIterator[Signing]:
    built = build(database)
    yield built
    await built.issuer.close()


async def issue(signing: Signing) -> str:
    issued = await signing.issuer.issue(subject="user-1", audience="api", scope="read",
                                        client_id="client-1", ttl=900)
    return issued.token


async def set_target(signing: Signing, alg: str) -> None:
    await record_target(signing.store, signing.audit, alg, actor="test", now=signing.clock.now)
    await signing.keys.refresh()


@pytest.mark.parametrize("alg", ALGORITHMS)
async def test_a_new_key_set_is_made_in_the_configured_algorithm(
    database: Database, alg: str
) -> None:
    """On an empty key set the setting becomes the target: both keys, the token's
    header and the JWKS entry carry that algorithm, and the token verifies."""
    signing = build(database, alg=alg)
    await signing.rotation.ensure_keys()
    assert {k.alg for k in await signing.store.list_keys()} == {alg}
    assert await signing.store.target_alg() == alg
    token = await issue(signing)
    assert jwt.get_unverified_header(token)["alg"] == alg
    assert {k["alg"] for k in json.loads(signing.keys.jwks_body)["keys"]} == {alg}
    assert signing.keys.verify(token)["sub"] == "user-1"
    await signing.issuer.close()


@pytest.mark.parametrize("alg", ALGORITHMS)
async def test_tokens_verify_with_pyjwt_against_the_jwks(database: Database, alg: str) -> None:
    """PyJWT verifies the token with the key the JWKS publishes for its kid."""
    signing = build(database, alg=alg)
    await signing.rotation.ensure_keys()
    token = await issue(signing)
    jwk_set = jwt.PyJWKSet.from_dict(json.loads(signing.keys.jwks_body))
    key = next(k for k in jwk_set.keys if k.key_id == jwt.get_unverified_header(token)["kid"])
    claims = jwt.decode(token, key.key, algorithms=[alg], audience="api", issuer=ISSUER)
    assert claims["client_id"] == "client-1"
    await signing.issuer.close()


async def test_a_replica_setting_does_not_replace_a_recorded_target(database: Database) -> None:
    """A replica configured for EdDSA on a key set whose target is ES256 makes ES256 keys."""
    first = build(database, alg="ES256")
    await first.rotation.ensure_keys()
    second = build(database, alg="EdDSA", clock=first.clock, kek=first.kek)
    await second.rotation.ensure_keys()
    await second.keys.refresh(force=True)
    await second.rotation.maintain()
    assert await second.store.target_alg() == "ES256"
    assert {k.alg for k in await second.store.list_keys()} == {"ES256"}
    await first.issuer.close()
    await second.issuer.close()


async def test_changing_the_target_withdraws_the_next_key_and_publishes_a_new_one(
    signing: Signing,
) -> None:
    """After the target moves to ES256, the RS256 next key is retired unused (still
    published) and an ES256 next key is published; RS256 keeps signing for now."""
    first = await signing.rotation.ensure_keys()
    assert first is not None and first.next is not None
    await set_target(signing, "ES256")
    change = await signing.rotation.maintain()
    assert change is not None and change.withdrawn == (first.next,)
    keys = {k.kid: k for k in await signing.store.list_keys()}
    assert keys[first.next].state == "retired"
    new_next = keys[str(change.next)]
    assert new_next.state == "next" and new_next.alg == "ES256"
    published = {k["kid"] for k in json.loads(signing.keys.jwks_body)["keys"]}
    assert {first.next, new_next.kid, first.active} <= published
    assert jwt.get_unverified_header(await issue(signing))["alg"] == "RS256"


async def test_the_new_algorithm_signs_once_its_key_was_published_long_enough(
    signing: Signing,
) -> None:
    """The ES256 next key is promoted READY seconds after it was made, not at the
    rotation interval; tokens of the retired RS256 key still verify."""
    await signing.rotation.ensure_keys()
    old_token = await issue(signing)
    await set_target(signing, "ES256")
    await signing.rotation.maintain()
    signing.clock.now += READY - 1
    assert await signing.rotation.maintain() is None
    signing.clock.now += 1
    change = await signing.rotation.maintain()
    assert change is not None and change.action == "rotate"
    new_token = await issue(signing)
    assert jwt.get_unverified_header(new_token)["alg"] == "ES256"
    assert signing.keys.verify(old_token)["sub"] == "user-1"
    assert signing.keys.verify(new_token)["sub"] == "user-1"
    assert signing.keys.announced_algorithms == ("RS256", "ES256")


async def test_on_demand_rotation_during_a_change_names_the_new_key(signing: Signing) -> None:
    """``keys rotate`` right after the target changed does not promote the stale next
    key: it publishes one in the target and answers when that one may sign."""
    from service.signing.errors import RotationNotReady

    first = await signing.rotation.ensure_keys()
    assert first is not None
    signing.clock.now += READY
    await set_target(signing, "EdDSA")
    with pytest.raises(RotationNotReady) as refused:
        await signing.rotation.rotate(trigger="cli")
    stored = await signing.store.get(refused.value.kid)
    assert stored is not None and stored.alg == "EdDSA" and stored.state == "next"


async def test_recording_the_target_is_audited_once(signing: Signing, database: Database) -> None:
    """A change of target writes one signing_key.target audit event; the same value
    again writes none."""
    audit = AuditLog(AuditStore(database))
    assert await record_target(signing.store, audit, "ES256", actor="op", now=1.0)
    assert not await record_target(signing.store, audit, "ES256", actor="op", now=2.0)
    events = await AuditStore(database).query(action="signing_key.target")
    assert [(e.subject, e.actor) for e in events] == [("ES256", "op")]
