"""Attaching the DPoP domain to a Runtime (before the domains whose grants use it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.dpop.nonces import NonceSource
from service.dpop.proofs import DPoPService
from service.dpop.replay import ProofReplayCache

if TYPE_CHECKING:
    from service.config import Settings
    from service.runtime import Runtime


async def wire(runtime: Runtime, *, serving: bool) -> None:
    settings = runtime.settings
    runtime.dpop = DPoPService(
        issuer=settings.issuer, algorithms=settings.dpop_algorithms,
        max_age=int(settings.dpop_proof_max_age),
        replay=ProofReplayCache(runtime.redis, settings.redis_prefix),
        nonces=NonceSource(runtime.kek) if settings.dpop_nonce else None,
        admin_origin=admin_origin(settings),
    )


def admin_origin(settings: Settings) -> str | None:
    """The AUTHD_ADMIN_LISTEN listener's origin as configured (TLS when the server
    has a certificate), or None without one."""
    if settings.admin_listen is None:
        return None
    host, port = settings.admin_listen
    scheme = "https" if settings.tls_cert_file is not None else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
