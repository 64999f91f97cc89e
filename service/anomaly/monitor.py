"""Applying the signals: audit events, the metric, history, and the policy.

``LoginMonitor`` runs on the login path (already bounded by Argon2id, so a history
read costs nothing noticeable). ``KeyUseMonitor`` runs on the API-key exchange, the
hot path: it decides from a per-process cache of each key's allowed CIDRs and known
networks (refreshed after ``AUTHD_API_KEY_CACHE_TTL``, dropped at once on the bus when
an operator changes the CIDRs) and writes new networks in the background, where the
database insert decides which replica saw a network first, so each new network
raises exactly one ``apikey.anomaly`` across the deployment.

Policies (``AUTHD_ANOMALY_POLICY``): ``log`` records only; ``step_up`` makes the MFA
step of an enrolled user depend on the login (see service/mfa/challenge.py);
``deny`` refuses an API key used from outside its ``allowed_cidrs`` (outside use is
recorded under every policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import structlog

from service.anomaly import signals
from service.anomaly.store import AnomalyStore, LoginRecord
from service.audit.log import AuditLog
from service.background import Periodic
from service.bus import Bus
from service.errors import InvalidClient
from service.observability.metrics import AUTH_ANOMALIES
from service.store import StorageUnavailable

log = structlog.get_logger("authd.anomaly")

LOGIN_HISTORY_KEEP = 50
KEY_NETWORKS_KEEP = 32
TOPIC = "anomaly.apikey"
FLUSH_INTERVAL = 1.0
MAX_PENDING = 10_000
# The part of a key view's life, at its end, in which a use triggers a re-read.
REFRESH_AHEAD = 0.5


class LoginMonitor:
    def __init__(self, store: AnomalyStore, audit: AuditLog, *, keep: int = LOGIN_HISTORY_KEEP
                 ) -> None:
        self._store = store
        self._audit = audit
        self._keep = keep

    async def assess(self, user_id: str, *, ip: str, user_agent: str, report: bool = True
                     ) -> signals.Assessment:
        """Compare with the user's recent logins; with ``report``, an anomalous login
        becomes one ``login.anomaly`` audit event and a metric per reason."""
        history = await self._store.recent_logins(user_id, self._keep)
        seen = [signals.Seen(r.at, r.network, r.device) for r in history]
        assessment = signals.assess_login(seen, ip, user_agent, time.time())
        if report and assessment.anomalous:
            for reason in assessment.reasons:
                AUTH_ANOMALIES.labels("login", reason).inc()
            self._audit.record("login.anomaly", "detected", subject=user_id, ip=ip,
                               reasons=list(assessment.reasons), network=assessment.network,
                               device=assessment.device)
        return assessment

    async def record(self, user_id: str, *, ip: str, user_agent: str, amr: str) -> None:
        """Add a completed login to the user's (bounded) history."""
        assessment = await self.assess(user_id, ip=ip, user_agent=user_agent, report=False)
        await self._store.add_login(LoginRecord(
            0, user_id, time.time(), ip, assessment.network, assessment.device, amr,
            " ".join(assessment.reasons)), self._keep)


@dataclass(slots=True)
class _KeyView:
    loaded_at: float
    allowed: tuple[signals.Network, ...] | None
    networks: set[str] = field(default_factory=set)


class KeyUseMonitor:
    """The exchange's hook: ``await check(key_id, client_id, ip)`` raises
    InvalidClient when policy ``deny`` refuses the source; otherwise it notes the use."""

    def __init__(self, store: AnomalyStore, audit: AuditLog, bus: Bus, *, policy: str,
                 cache_ttl: float, keep: int = KEY_NETWORKS_KEEP) -> None:
        self._store = store
        self._audit = audit
        self._policy = policy
        self._ttl = max(cache_ttl, 1.0)
        self._keep = keep
        self._views: dict[str, _KeyView] = {}
        self._loads: dict[str, asyncio.Future[_KeyView]] = {}
        self._epoch = 0
        self._pending: dict[tuple[str, str], tuple[str, str, float]] = {}
        self._loop = Periodic("authd-anomaly-keys", FLUSH_INTERVAL, self.flush)
        bus.subscribe(TOPIC, self._on_invalidate)

    async def _on_invalidate(self, message: str) -> None:
        self._epoch += 1
        self._views.pop(message, None)
        # Loads in flight read the store before this change; later requests start anew.
        self._loads.pop(message, None)

    async def _view(self, key_id: str, now: float) -> _KeyView:
        """The key's view, read at most ``ttl`` ago. A view used in the second half of
        its life is re-read in the background while it answers, and the requests that
        find none (or an expired one) share one read: without this every request in
        flight when a busy key's view expired queued its own read on the store, the
        multi-second stall measured at saturation (issue 15). Past its TTL a view
        answers for another TTL while it is re-read; an invalidation drops it at once."""
        view = self._views.get(key_id)
        if view is not None and now - view.loaded_at <= 2 * self._ttl:
            if now - view.loaded_at > self._ttl * (1 - REFRESH_AHEAD) and (
                    key_id not in self._loads):
                self._load(key_id, now, view)
            return view
        return await asyncio.shield(self._load(key_id, now, view))

    def _load(self, key_id: str, now: float, previous: _KeyView | None
              ) -> asyncio.Future[_KeyView]:
        pending = self._loads.get(key_id)
        if pending is None:
            pending = asyncio.ensure_future(self._read(key_id, now, previous))
            self._loads[key_id] = pending
            pending.add_done_callback(lambda done: self._load_done(key_id, done))
        return pending

    def _load_done(self, key_id: str, done: asyncio.Future[_KeyView]) -> None:
        if self._loads.get(key_id) is done:
            del self._loads[key_id]
        if not done.cancelled() and done.exception() is not None:
            log.warning("anomaly.view_failed", error=type(done.exception()).__name__)

    async def _read(self, key_id: str, now: float, previous: _KeyView | None) -> _KeyView:
        epoch = self._epoch
        try:
            access = await self._store.key_access(key_id)
        except StorageUnavailable:
            # Through a storage outage the key's last known restrictions hold, so
            # that a key served stale by the exchange (AUTHD_API_KEY_STALE_IF_ERROR)
            # is not refused here; a key never seen still gets the 503.
            if previous is None:
                raise
            return previous
        allowed = None
        if access is not None and access.allowed_cidrs:
            allowed = signals.parse_cidrs(access.allowed_cidrs)
        view = _KeyView(now, allowed, set(access.networks) if access else set())
        if epoch == self._epoch:  # no invalidation came while reading
            self._views[key_id] = view
        return view

    async def check(self, key_id: str, client_id: str, ip: str) -> None:
        now = time.time()
        view = await self._view(key_id, now)
        network = signals.network_of(ip)
        if view.allowed is not None and not signals.inside(ip, view.allowed):
            AUTH_ANOMALIES.labels("apikey", signals.OUTSIDE_ALLOWED).inc()
            denied = self._policy == "deny"
            self._audit.record("apikey.anomaly", "denied" if denied else "detected",
                               subject=client_id, ip=ip, key_id=key_id, network=network,
                               reasons=[signals.OUTSIDE_ALLOWED])
            if denied:
                raise InvalidClient("this API key may not be used from this address")
        if network not in view.networks:
            view.networks.add(network)
            if len(self._pending) < MAX_PENDING:
                self._pending[(key_id, network)] = (client_id, ip, now)

    async def flush(self) -> None:
        """Write the networks first seen since the last flush; a network new to a key
        that already had history is an ``apikey.anomaly`` (once per deployment)."""
        pending, self._pending = self._pending, {}
        for (key_id, network), (client_id, ip, at) in pending.items():
            try:
                inserted, before = await self._store.add_key_network(key_id, network, at,
                                                                     self._keep)
            except Exception as exc:
                log.warning("anomaly.key_history_failed", error=type(exc).__name__)
                continue
            if inserted and before > 0:
                AUTH_ANOMALIES.labels("apikey", signals.NEW_NETWORK).inc()
                self._audit.record("apikey.anomaly", "detected", subject=client_id, ip=ip,
                                   key_id=key_id, network=network,
                                   reasons=[signals.NEW_NETWORK])

    async def start(self) -> None:
        self._loop.start()

    async def close(self) -> None:
        await self._loop.stop()
        with contextlib.suppress(Exception):
            await self.flush()
