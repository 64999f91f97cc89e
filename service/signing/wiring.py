"""Attach the signing domain to a Runtime: key ring, issuer, rotation loop."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import structlog

from service.config import MAX_TOKEN_TTL
from service.signing.errors import KeyUnsealable
from service.signing.issuer import TokenIssuer
from service.signing.keyring import KeyRing
from service.signing.keys import ALG
from service.signing.rotation import KeyRotation, RotationPolicy
from service.signing.store import SqlSigningKeyStore
from service.store import StorageUnavailable

if TYPE_CHECKING:
    from service.runtime import Runtime

log = structlog.get_logger("authd.signing")

# uvicorn's exit status for "the application failed to start": the multi-worker
# supervisor stops instead of restarting a worker that would fail the same way.
STARTUP_FAILURE = 3


async def wire(runtime: Runtime, *, serving: bool) -> None:
    settings = runtime.settings
    store = SqlSigningKeyStore(runtime.db)
    keys = KeyRing(store, runtime.kek, issuer=settings.issuer)
    policy = RotationPolicy(
        jwks_max_age=settings.jwks_max_age,
        max_token_ttl=MAX_TOKEN_TTL,
        rotation_interval=settings.key_rotation_interval,
    )
    rotation = KeyRotation(
        store, runtime.kek, keys, policy,
        bits=settings.rsa_key_bits, audit=runtime.audit, bus=runtime.bus,
        alg=settings.signing_alg or ALG,
    )
    if runtime.tracer is None:
        issuer = TokenIssuer(keys, issuer=settings.issuer, threads=settings.signing_threads)
    else:
        from service.observability.traced import TracedTokenIssuer

        issuer = TracedTokenIssuer(keys, issuer=settings.issuer,
                                   threads=settings.signing_threads, tracer=runtime.tracer)
    runtime.keys, runtime.issuer, runtime.rotation = keys, issuer, rotation
    runtime.readiness["signing_key"] = keys.ready
    runtime.on_close(issuer.close)
    if not serving:
        return
    try:
        await rotation.ensure_keys()
        await keys.refresh(force=True)
        if settings.signing_alg not in (None, keys.target_alg):
            # The recorded target rules (service/signing/target.py): say so once, so
            # an operator who changed only the replicas' setting knows to run migrate.
            log.warning("signing.alg_setting_not_applied", setting=settings.signing_alg,
                        target=keys.target_alg, fix="run `authd migrate` with the setting")
    except StorageUnavailable:
        # Come up anyway: /readyz answers 503 (no database, no signing key) and the
        # rotation loop loads or creates the key set once the database answers.
        log.warning("signing.startup_deferred", reason="storage unavailable")
    except KeyUnsealable as exc:
        # Starlette would hand uvicorn a traceback to print; an operator needs one
        # line naming the key, and a non-zero exit, not a server without keys.
        print(f"authd: startup failed: {exc.description}", file=sys.stderr, flush=True)
        os._exit(STARTUP_FAILURE)
    rotation.start()
    runtime.on_close(rotation.close)
