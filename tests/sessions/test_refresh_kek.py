"""Refresh rotation across replicas on different KEKs (a KEK rotation in progress), on
PostgreSQL and SQLite."""

from __future__ import annotations

import os

import pytest

from service.audit.log import AuditLog
from service.audit.store import AuditStore
from service.revocation.service import RevocationService
from service.revocation.store import SqlRevocationStore
from service.sessions.errors import RefreshRejected
from service.sessions.refresh import RefreshService
from service.sessions.store import SqlRefreshStore, SqlUserStore
from service.signing.issuer import TokenIssuer
from service.signing.kek import Kek
from service.store import Database
from tests.signing.helpers import build


async def _service(db: Database, kek: Kek, issuer: TokenIssuer) -> RefreshService:
    revocations = RevocationService(db, SqlRevocationStore(db), None, subject_lifetime=86400)
    return RefreshService(db, SqlRefreshStore(db), kek, issuer, revocations,
                          AuditLog(AuditStore(db)), audience="api", access_ttl=900,
                          refresh_ttl=86400, grace=10)


async def test_a_grace_retry_whose_successor_does_not_open_is_refused_not_revoked(
        database: Database) -> None:
    """A retry inside the grace window on a replica whose KEK cannot open the sealed
    successor is refused, and the family stays usable with that successor."""
    signing = build(database)
    await signing.rotation.ensure_keys()
    old = await _service(database, Kek(os.urandom(32)), signing.issuer)
    new = await _service(database, Kek(os.urandom(32)), signing.issuer)
    assert await SqlUserStore(database).create("usr_k", "k@example.com", "hash", 1.0)
    first = await old.start_family("usr_k")
    rotated = await old.rotate(first.refresh_token)
    with pytest.raises(RefreshRejected):
        await new.rotate(first.refresh_token)
    assert (await new.rotate(rotated.refresh_token)).sid == first.sid
