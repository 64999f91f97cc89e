"""KEK rotation: re-encrypt every value sealed under the KEK with a new one.

Three kinds of values are sealed (AES-256-GCM, ``kek.py``), each with its row's
identity as associated data, which this module derives exactly as their sealers do:
private signing keys (the ``kid``), refresh successors kept for the reuse grace window
(the spent token's digest, ``sessions/refresh.py``) and TOTP secrets (the user id,
``mfa/factors.py``).

Everything happens in one transaction holding the signing-key lock, so a rotation
cannot plant a key sealed under the old KEK half-way through, and the result is all or
nothing. A value that already opens under the new KEK is left alone, which makes the
command safe to run again: after the rolling restart, a second run catches what
replicas still on the old KEK sealed in the meantime (docs/operations.md).

Nothing public changes: the JWKS, issued tokens and running replicas are unaffected,
since replicas hold their opened signing keys in memory (``KeyRing``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from service.audit.log import AuditLog
from service.mfa.factors import _associated as totp_associated
from service.sessions.refresh import successor_associated
from service.signing.errors import KeyUnsealable, RewrapRefused
from service.signing.kek import Kek, SealError
from service.signing.store import SEALED_KINDS, SealedKind, SealedStore, SealedValue

log = structlog.get_logger("authd.signing")

_PROBE = "authd.kek.rewrap.probe"


def associated(value: SealedValue) -> str:
    """The associated data ``value`` was sealed with."""
    if value.kind == "refresh_successor" and isinstance(value.key, bytes):
        return successor_associated(value.key)
    if value.kind == "totp_secret":
        return totp_associated(str(value.key))
    return str(value.key)  # a signing key's kid


@dataclass(slots=True)
class KindCounts:
    """What a rewrap did to one kind of sealed value."""

    rewrapped: int = 0
    already_new: int = 0  # opened under the new KEK: rewrapped by an earlier run
    changed: int = 0  # rewritten or erased by the service between read and write
    unopenable: int = 0  # opens under neither KEK: left as it is

    def as_dict(self) -> dict[str, int]:
        return {"rewrapped": self.rewrapped, "already_new": self.already_new,
                "changed": self.changed, "unopenable": self.unopenable}


@dataclass(slots=True)
class RewrapReport:
    counts: dict[SealedKind, KindCounts] = field(
        default_factory=lambda: {kind: KindCounts() for kind in SEALED_KINDS}
    )
    # Users whose TOTP secret opens under neither KEK: their MFA needs a reset.
    unopenable_totp_users: list[str] = field(default_factory=list)

    @property
    def rewrapped(self) -> int:
        return sum(c.rewrapped for c in self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "rewrapped": self.rewrapped,
            **{kind: counts.as_dict() for kind, counts in self.counts.items()},
            "unopenable_totp_users": list(self.unopenable_totp_users),
        }


def same_kek(a: Kek, b: Kek) -> bool:
    """True when ``a`` opens what ``b`` seals: the two are the same key."""
    return _opens(a, b.seal(b"probe", _PROBE), _PROBE)


async def rewrap(store: SealedStore, old: Kek, new: Kek, *, audit: AuditLog,
                 actor: str | None = None) -> RewrapReport:
    """Re-seal every sealed value from ``old`` (the configured KEK) to ``new``.

    A signing key that opens under neither KEK aborts the whole run with
    KeyUnsealable, as ``old`` is then not the deployment's KEK at all; an unopenable
    refresh successor or TOTP secret is counted and left alone (it was already
    useless, and the report names the users whose MFA needs a reset).
    """
    if same_kek(old, new):
        raise RewrapRefused()
    report = RewrapReport()
    async with store.locked() as locked:
        for kind in SEALED_KINDS:
            counts = report.counts[kind]
            for value in await locked.sealed_values(kind):
                aad = associated(value)
                try:
                    plaintext = old.open(value.sealed, aad)
                except SealError:
                    if _opens(new, value.sealed, aad):
                        counts.already_new += 1
                        continue
                    if kind == "signing_key":
                        raise KeyUnsealable(str(value.key)) from None
                    counts.unopenable += 1
                    if kind == "totp_secret":
                        report.unopenable_totp_users.append(str(value.key))
                    continue
                if await locked.reseal(value, new.seal(plaintext, aad)):
                    counts.rewrapped += 1
                else:
                    counts.changed += 1
    details: dict[str, Any] = {kind: c.as_dict() for kind, c in report.counts.items()}
    log.info("signing.kek_rewrapped", **details)
    await audit.write("kek.rewrap", actor=actor, rewrapped=report.rewrapped, **details)
    return report


def _opens(kek: Kek, sealed: bytes, aad: str) -> bool:
    try:
        kek.open(sealed, aad)
    except SealError:
        return False
    return True
