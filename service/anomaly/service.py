"""``runtime.anomaly``: the monitors plus the operator's view (recent logins,
anomalies, a key's networks and allowed CIDRs). Every operator change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.anomaly import signals
from service.anomaly.monitor import TOPIC, LoginMonitor
from service.anomaly.store import AnomalyStore
from service.audit.log import AuditLog
from service.bus import Bus
from service.errors import InvalidRequest, NotFound

MAX_LIST = 200
MAX_CIDRS = 64


@dataclass(frozen=True, slots=True)
class AnomalyService:
    store: AnomalyStore
    logins: LoginMonitor
    audit: AuditLog
    bus: Bus

    async def recent_logins(self, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
        records = await self.store.recent_logins(user_id, min(max(limit, 1), MAX_LIST))
        return [r.as_dict() for r in records]

    async def anomalies(self, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """``login.anomaly`` events of the user, newest first (also those whose login
        never completed, e.g. a step-up that was not answered)."""
        events = await self.audit.store.query(action="login.anomaly", subject=user_id,
                                              limit=min(max(limit, 1), MAX_LIST))
        return [{"at": e.at, "ip": e.ip, "outcome": e.outcome,
                 "reasons": e.details.get("reasons", []), "network": e.details.get("network"),
                 "device": e.details.get("device")} for e in events]

    async def key_networks(self, key_id: str) -> dict[str, Any]:
        access = await self.store.key_access(key_id)
        if access is None:
            raise NotFound("no such API key")
        return {"key_id": key_id,
                "allowed_cidrs": (access.allowed_cidrs or "").split() or None,
                "networks": await self.store.key_networks(key_id)}

    async def set_allowed_cidrs(self, key_id: str, cidrs: list[str] | None, *, actor: str,
                                ip: str | None = None) -> dict[str, Any]:
        """Restrict a key to source CIDRs (None or [] lifts the restriction)."""
        text: str | None = None
        if cidrs:
            if len(cidrs) > MAX_CIDRS:
                raise InvalidRequest(f"at most {MAX_CIDRS} CIDRs")
            try:
                text = " ".join(str(n) for n in signals.parse_cidrs(cidrs))
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from None
        if not await self.store.set_allowed_cidrs(key_id, text):
            raise NotFound("no such API key")
        await self.audit.write("apikey.allowed_cidrs", "ok", actor=actor, subject=key_id, ip=ip,
                               allowed_cidrs=text.split() if text else None)
        await self.bus.publish(TOPIC, key_id)
        return await self.key_networks(key_id)
