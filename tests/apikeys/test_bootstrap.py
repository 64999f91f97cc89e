"""``ApiKeyService.bootstrap`` over a real store (PostgreSQL and SQLite): insert-or-get
of the admin client, a new admin key printed at most once per absent client."""

from __future__ import annotations

from service.apikeys import keyformat
from service.apikeys.keys import ADMIN_CLIENT_NAME, ADMIN_SCOPE, ApiKeyService
from service.apikeys.store import SqlApiKeyStore
from service.audit.log import AuditLog
from service.audit.store import AuditStore
from service.bus import LocalBus
from service.config import Settings
from service.store import Database


def service(db: Database) -> ApiKeyService:
    return ApiKeyService(Settings.from_env({}), SqlApiKeyStore(db), LocalBus(),
                         AuditLog(AuditStore(db)))


async def test_bootstrap_creates_the_admin_client_and_one_admin_key(database: Database) -> None:
    """On an empty store bootstrap makes the admin client and one authd:admin key."""
    apikeys = service(database)
    issued = await apikeys.bootstrap(if_absent=True, actor="cli")
    assert issued is not None and issued.key.scopes == frozenset({ADMIN_SCOPE})
    [client] = await apikeys.clients()
    assert client.name == ADMIN_CLIENT_NAME and client.id == issued.key.client_id
    assert [k.id for k in await apikeys.keys(client.id)] == [issued.key.id]


async def test_bootstrap_if_absent_does_nothing_the_second_time(database: Database) -> None:
    """With the admin client present, bootstrap --if-absent returns None and adds no key."""
    apikeys = service(database)
    first = await apikeys.bootstrap(if_absent=True, actor="cli")
    assert first is not None
    assert await apikeys.bootstrap(if_absent=True, actor="cli") is None
    assert len(await apikeys.keys(first.key.client_id)) == 1


async def test_plain_bootstrap_adds_a_key_to_the_existing_client(database: Database) -> None:
    """Without --if-absent a second bootstrap issues a new key on the same admin client."""
    apikeys = service(database)
    first = await apikeys.bootstrap(if_absent=False, actor="cli")
    second = await apikeys.bootstrap(if_absent=False, actor="cli")
    assert first is not None and second is not None
    assert second.key.client_id == first.key.client_id and second.key.id != first.key.id


async def test_the_bootstrapped_key_is_known_at_once(database: Database) -> None:
    """The new admin key joins the known-key set at once, so an address over its
    failed-attempt budget is still served with it."""
    apikeys = service(database)
    issued = await apikeys.bootstrap(if_absent=True, actor="cli")
    assert issued is not None
    assert keyformat.digest(issued.plaintext) in apikeys.known


async def test_bootstrap_is_audited_once(database: Database) -> None:
    """A bootstrap that creates writes client.create and apikey.create; one that finds
    the client present writes nothing."""
    apikeys = service(database)
    await apikeys.bootstrap(if_absent=True, actor="cli")
    await apikeys.bootstrap(if_absent=True, actor="cli")
    await apikeys.audit.flush()
    actions = [r["action"] for r in await database.fetch(
        "SELECT action FROM audit_events ORDER BY id")]
    assert actions == ["client.create", "apikey.create"]
