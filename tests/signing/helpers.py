"""Building the signing domain in-process over a test database, with a settable clock."""

from __future__ import annotations

import os
from dataclasses import dataclass

from service.audit.log import AuditLog
from service.audit.store import AuditStore
from service.bus import LocalBus
from service.signing.issuer import TokenIssuer
from service.signing.kek import Kek
from service.signing.keyring import KeyRing
from service.signing.rotation import KeyRotation, RotationPolicy
from service.signing.store import SqlSigningKeyStore
from service.store import Database

ISSUER = "https://auth.test"
POLICY = RotationPolicy(jwks_max_age=60, max_token_ttl=900, rotation_interval=86400)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Signing:
    store: SqlSigningKeyStore
    keys: KeyRing
    rotation: KeyRotation
    issuer: TokenIssuer
    audit: AuditLog
    clock: Clock
    kek: Kek


def build(db: Database, *, kek: Kek | None = None, clock: Clock | None = None,
          policy: RotationPolicy = POLICY, alg: str = "RS256") -> Signing:
    kek = kek or Kek(os.urandom(32))
    clock = clock or Clock()
    store = SqlSigningKeyStore(db)
    keys = KeyRing(store, kek, issuer=ISSUER, clock=clock)
    audit = AuditLog(AuditStore(db))
    rotation = KeyRotation(store, kek, keys, policy, bits=2048, audit=audit,
                           bus=LocalBus(), clock=clock, alg=alg)
    return Signing(store, keys, rotation, TokenIssuer(keys, issuer=ISSUER), audit, clock, kek)
