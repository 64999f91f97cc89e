"""Attaching the delegation domain to a Runtime (after signing, revocation, apikeys)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.delegation.exchange import GRANT_TYPE, TokenExchange

if TYPE_CHECKING:
    from service.runtime import Runtime


def grants() -> None:
    """Answer the RFC 8693 token-exchange grant at ``/oauth/token``."""
    from service.delegation.handlers import token_exchange_grant
    from service.http.oauth import register_grant

    register_grant(GRANT_TYPE, token_exchange_grant)


async def wire(runtime: Runtime, *, serving: bool) -> None:
    runtime.token_exchange = TokenExchange(
        getattr(runtime, "keys", None), runtime.revocations, getattr(runtime, "issuer", None),
        runtime.audit,
    )
