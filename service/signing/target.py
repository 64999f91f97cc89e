"""The key set's target algorithm: which algorithm its new keys are made in (issue 16).

The rule that keeps replicas from fighting over ``AUTHD_SIGNING_ALG``: the target is
a fact of the key set, stored beside it, and only two things write it —

- ``authd migrate`` with ``AUTHD_SIGNING_ALG`` set (every deploy runs it before the
  new replicas start: the Helm pre-upgrade job, ``make run``), which replaces it;
- the first start on an empty key set, which records its own setting only when no
  target is recorded yet.

A serving replica never overwrites a recorded target, so one still running (or
restarted) with an older setting follows the key set rather than switching it back.
The change itself then goes through the ordinary lifecycle (``rotation.plan``): a
next key of the old algorithm is withdrawn unused, a new next key in the target is
published for the JWKS lifetime, then promoted; the old active key retires as usual.
"""

from __future__ import annotations

import time

import structlog

from service.audit.log import AuditLog
from service.audit.store import AuditStore
from service.signing.store import SigningKeyStore, SqlSigningKeyStore
from service.store import Database

log = structlog.get_logger("authd.signing")


async def record_target(
    store: SigningKeyStore, audit: AuditLog, alg: str, *, actor: str, now: float
) -> bool:
    """Make ``alg`` the key set's target; True (and an audit event) when it changed."""
    async with store.locked() as locked:
        previous = await locked.target_alg()
        changed = await locked.set_target_alg(alg, now, replace=True)
    if changed:
        log.info("signing.target_alg_set", alg=alg, previous=previous)
        await audit.write("signing_key.target", actor=actor, subject=alg, previous=previous)
    return changed


async def record_setting(db: Database, setting: str | None) -> str | None:
    """``authd migrate``'s step: record ``AUTHD_SIGNING_ALG`` when it is set (returning
    it if that changed the target). Unset, nothing is written: a recorded target stays,
    and a new key set takes its first server's setting."""
    if setting is None:
        return None
    changed = await record_target(SqlSigningKeyStore(db), AuditLog(AuditStore(db)), setting,
                                  actor="authd migrate", now=time.time())
    return setting if changed else None
