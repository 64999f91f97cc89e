"""Verifications that miss the key-record cache together share one store read (issue 15),
on both backends."""

from __future__ import annotations

import asyncio

from service.apikeys.keys import ApiKeyService
from service.apikeys.models import VerifiedKey
from service.apikeys.store import SqlApiKeyStore
from service.audit.log import AuditLog
from service.audit.store import AuditStore
from service.bus import LocalBus
from service.config import Settings
from service.store import Database

CONCURRENT = 20


class CountingApiKeyStore(SqlApiKeyStore):
    """The real SQL store, counting its reads by digest."""

    reads = 0

    async def by_digest(self, digest: bytes) -> VerifiedKey | None:
        self.reads += 1
        return await super().by_digest(digest)


async def test_concurrent_misses_of_one_key_share_a_single_read(database: Database) -> None:
    """Twenty verifications of an uncached key that start together read the store once."""
    store = CountingApiKeyStore(database)
    service = ApiKeyService(Settings(), store, LocalBus(), AuditLog(AuditStore(database)))
    client = await service.create_client("svc", scopes=frozenset({"read"}), actor="test")
    issued = await service.create_key(client.id, actor="test")
    verified = await asyncio.gather(
        *(service.verify(issued.plaintext) for _ in range(CONCURRENT)))
    assert {v.key.id for v in verified} == {issued.key.id}
    assert store.reads == 1
