"""Last-use times and exchange audit events, written in batches off the request path.

A successful exchange only touches a dict. At least once a second (and on a graceful
stop, before the audit log's own final flush) the recorder writes each used key's
latest ``last_used_at`` in one transaction and adds one ``apikey.exchange`` audit
event per key and window, carrying the count, the first and last instant and the
grants used. Aggregating per key keeps a busy key from writing thousands of identical
rows a second while still saying who exchanged, how often and when; refusals are
audited one by one by the exchange itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from service.apikeys.store import ApiKeyStore
from service.audit.log import AuditLog
from service.background import Periodic
from service.observability.metrics import OUTAGE_DROPPED
from service.store import StorageUnavailable

log = structlog.get_logger("authd.apikeys.usage")
_DROPPED = OUTAGE_DROPPED.labels("last_use")


@dataclass(slots=True)
class _Usage:
    client_id: str
    count: int
    first_at: float
    last_at: float
    grants: set[str] = field(default_factory=set)
    ips: set[str] = field(default_factory=set)


MAX_IPS_PER_EVENT = 16
# Keys with usage waiting to be written. Usage is aggregated per key, so this bounds
# the memory an outage can take; a key beyond it loses its record (counted in
# authd_outage_buffer_dropped_total{buffer="last_use"}), the others keep theirs.
MAX_PENDING_KEYS = 100_000


class UsageRecorder:
    def __init__(self, store: ApiKeyStore, audit: AuditLog, *, interval: float = 1.0) -> None:
        self._store = store
        self._audit = audit
        self._pending: dict[str, _Usage] = {}
        self._loop = Periodic("authd-apikeys-usage", interval, self.flush)

    def exchanged(self, key_id: str, client_id: str, grant: str, ip: str, at: float) -> None:
        usage = self._pending.get(key_id)
        if usage is None:
            if len(self._pending) >= MAX_PENDING_KEYS:
                _DROPPED.inc()
                return
            self._pending[key_id] = _Usage(client_id, 1, at, at, {grant}, {ip})
            return
        usage.count += 1
        usage.last_at = at
        usage.grants.add(grant)
        if len(usage.ips) < MAX_IPS_PER_EVENT:
            usage.ips.add(ip)

    async def flush(self) -> None:
        batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            await self._store.touch((key_id, u.last_at) for key_id, u in batch.items())
        except (StorageUnavailable, OSError) as exc:
            log.warning("apikeys.last_used_failed", keys=len(batch), error=type(exc).__name__)
            for key_id, usage in batch.items():
                self._merge_back(key_id, usage)
            return
        for key_id, u in batch.items():
            self._audit.record(
                "apikey.exchange", "ok", actor=u.client_id, subject=key_id,
                ip=next(iter(u.ips)) if len(u.ips) == 1 else None,
                count=u.count, first_at=u.first_at, last_at=u.last_at,
                grants=sorted(u.grants), ips=sorted(u.ips),
            )

    def _merge_back(self, key_id: str, usage: _Usage) -> None:
        newer = self._pending.get(key_id)
        if newer is None:
            if len(self._pending) >= MAX_PENDING_KEYS:
                _DROPPED.inc(usage.count)
                return
            self._pending[key_id] = usage
            return
        newer.count += usage.count
        newer.first_at = min(newer.first_at, usage.first_at)
        newer.grants |= usage.grants
        newer.ips |= set(list(usage.ips)[: MAX_IPS_PER_EVENT - len(newer.ips)])

    async def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.stop()
        await self.flush()
