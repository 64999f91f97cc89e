"""Attaching the API-key domain to a Runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.apikeys.exchange import Exchange
from service.apikeys.keys import ApiKeyService
from service.apikeys.store import SqlApiKeyStore

if TYPE_CHECKING:
    from service.runtime import Runtime


async def wire(runtime: Runtime, *, serving: bool) -> None:
    settings = runtime.settings
    apikeys = ApiKeyService(settings, SqlApiKeyStore(runtime.db), runtime.bus, runtime.audit)
    runtime.apikeys = apikeys
    # The issuer comes from the signing domain, wired before this one.
    runtime.api_key_exchange = Exchange(
        settings, apikeys, getattr(runtime, "issuer", None), runtime.limiter,
        runtime.audit,
    )
    if serving:
        await apikeys.start()
        # The usage recorder flushes into the audit buffer before the Runtime closes
        # the shared limiter and the audit log.
        runtime.on_close(apikeys.close)


def grants() -> None:
    """Register ``client_credentials`` at ``/oauth/token``."""
    from service.apikeys.handlers import client_credentials
    from service.http.oauth import register_grant

    register_grant("client_credentials", client_credentials)
