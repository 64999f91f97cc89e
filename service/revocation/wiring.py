"""Attaching the revocation domain to a Runtime."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from service.config import MAX_TOKEN_TTL
from service.revocation.introspection import TokenInspector
from service.revocation.mirror import RedisDenylist
from service.revocation.service import RevocationService
from service.revocation.store import SqlRevocationStore

if TYPE_CHECKING:
    from service.runtime import Runtime


async def wire(runtime: Runtime, *, serving: bool) -> None:
    settings = runtime.settings
    mirror = (RedisDenylist(runtime.redis, settings.redis_prefix)
              if runtime.redis is not None else None)
    service = RevocationService(
        runtime.db, SqlRevocationStore(runtime.db), mirror,
        subject_lifetime=max(MAX_TOKEN_TTL, settings.refresh_token_ttl),
        audit=runtime.audit,
    )
    runtime.revocations = service
    # The key ring comes from the signing domain, wired before this one.
    runtime.inspector = TokenInspector(runtime.keys, service)
    if serving:
        with contextlib.suppress(Exception):
            await service.sync_mirror()  # a failure leaves it degraded: checks use the DB
        await service.start()
        runtime.on_close(service.close)
