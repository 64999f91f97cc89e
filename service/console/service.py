"""Console: what each console page shows and does, over the same domain services as
the admin API (so every action is the admin API's action, audited the same way, with
the signed-in operator's user id as actor). No HTTP here: the handlers parse forms and
render; this module asks the domains.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.anomaly.service import AnomalyService
from service.apikeys.keys import ApiKeyService, IssuedKey, parse_scopes
from service.audit.store import AuditEvent, AuditStore
from service.config import parse_duration, parse_rate
from service.console import charts
from service.console.activity import Activity
from service.console.errors import Forbidden
from service.console.operators import Operators
from service.console.sessions import ConsoleSession, ConsoleSessions
from service.console.store import ConsoleStore
from service.errors import InvalidRequest
from service.mfa.factors import Factors
from service.revocation.service import RevocationService
from service.sessions.users import UserService
from service.signing.rotation import KeyRotation, active_of, next_of

ReadinessCheck = Callable[[], Awaitable[None]]
READINESS_TIMEOUT = 0.8
PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Console:
    sessions: ConsoleSessions
    operators: Operators
    store: ConsoleStore
    users: UserService
    factors: Factors
    anomaly: AnomalyService
    apikeys: ApiKeyService
    rotation: KeyRotation
    revocations: RevocationService
    audit: AuditStore
    readiness: Mapping[str, ReadinessCheck]
    activity: Activity

    # --- overview -------------------------------------------------------------------

    async def overview(self) -> dict[str, Any]:
        now = time.time()
        keys = await self.rotation.list_keys()
        policy = self.rotation.policy
        active, next_key = active_of(keys), next_of(keys)
        anomalies = sorted(
            [*await self.audit.search(action="login.anomaly", limit=10),
             *await self.audit.search(action="apikey.anomaly", limit=10)],
            key=lambda e: e.at, reverse=True)[:10]
        return {
            "readiness": await self._readiness(),
            "active": active,
            "active_age": None if active is None else now - (active.activated_at
                                                             or active.created_at),
            "next": next_key,
            "promotable_at": None if next_key is None else policy.promotable_at(next_key),
            "rotation_due_at": None if active is None else policy.rotation_due_at(active),
            "issued": [(s, charts.sparkline(s)) for s in self.activity.issued()],
            "failures": [(s, charts.sparkline(s)) for s in self.activity.failures()],
            "activity_since": self.activity.since,
            "anomalies": anomalies,
            "now": now,
        }

    async def _readiness(self) -> list[tuple[str, str]]:
        async def one(check: ReadinessCheck) -> str:
            try:
                await asyncio.wait_for(check(), READINESS_TIMEOUT)
            except Exception as exc:  # a probe: any failure is "down", named by type
                return f"down ({type(exc).__name__})"
            return "ok"

        names = list(self.readiness)
        results = await asyncio.gather(*(one(self.readiness[n]) for n in names))
        return list(zip(names, results, strict=True))

    # --- signing keys ---------------------------------------------------------------

    async def keys(self) -> dict[str, Any]:
        now = time.time()
        keys = await self.rotation.list_keys()
        policy = self.rotation.policy
        next_key = next_of(keys)
        return {
            "keys": sorted(keys, key=lambda k: k.created_at, reverse=True),
            "timeline": charts.key_timeline(keys, policy, now),
            "promotable_at": None if next_key is None else policy.promotable_at(next_key),
            "next": next_key,
            "now": now,
        }

    # --- clients and API keys -------------------------------------------------------

    async def clients(self, query: str) -> list[Any]:
        wanted = query.strip().lower()
        clients = await self.apikeys.clients()
        return [c for c in clients
                if not wanted or wanted in c.name.lower() or wanted in c.id.lower()]

    async def client(self, client_id: str) -> dict[str, Any]:
        client = await self.apikeys.client(client_id)
        keys = await self.apikeys.keys(client_id)
        networks = {k.id: (await self.anomaly.key_networks(k.id))["allowed_cidrs"]
                    for k in keys}
        return {"client": client, "keys": keys, "networks": networks}

    async def create_client(self, form: Mapping[str, str], *, actor: str) -> str:
        ttl = form.get("token_ttl", "").strip()
        client = await self.apikeys.create_client(
            form.get("name", "").strip(), scopes=parse_scopes(form.get("scopes", "")),
            audiences=tuple(form.get("audiences", "").split()),
            token_ttl=_duration("token_ttl", ttl) if ttl else None, actor=actor)
        return client.id

    async def create_key(self, client_id: str, form: Mapping[str, str], *,
                         actor: str) -> IssuedKey:
        scopes = form.get("scopes", "").strip()
        expires = form.get("expires_in", "").strip()
        rate = form.get("rate_limit", "").strip()
        issued = await self.apikeys.create_key(
            client_id, scopes=parse_scopes(scopes) if scopes else None,
            expires_in=_duration("expires_in", expires) if expires else None,
            rate=_rate(rate) if rate else None, actor=actor)
        networks = form.get("allowed_networks", "").split()
        if networks:
            await self.anomaly.set_allowed_cidrs(issued.key.id, networks, actor=actor)
        return issued

    async def rotate_key(self, key_id: str, form: Mapping[str, str], *,
                         actor: str) -> IssuedKey:
        overlap = _duration("overlap", form.get("overlap", "").strip() or "24h")
        issued, _old = await self.apikeys.rotate_key(key_id, overlap=overlap, actor=actor)
        return issued

    async def set_networks(self, key_id: str, form: Mapping[str, str], *, actor: str) -> None:
        await self.anomaly.set_allowed_cidrs(
            key_id, form.get("allowed_networks", "").split() or None, actor=actor)

    # --- users ----------------------------------------------------------------------

    async def user(self, reference: str) -> dict[str, Any]:
        user = await self.users.find(reference)
        return {
            "user": user,
            "roles": await self.operators.roles(user.id),
            "mfa": await self.factors.status(user.id),
            "logins": await self.anomaly.recent_logins(user.id, 10),
            "anomalies": await self.anomaly.anomalies(user.id, 10),
        }

    async def create_user(self, form: Mapping[str, str], *, actor: str) -> str:
        user = await self.users.create(form.get("email", ""), form.get("password", ""),
                                       actor=actor)
        return user.id

    async def revoke_sessions(self, user_id: str, *, actor: str, ip: str) -> None:
        """Every token and session of the user issued before now, console ones too."""
        await self.users.find(user_id)
        await self.revocations.revoke_subject_for_operator(user_id, actor=actor, ip=ip)

    def refuse_self(self, session: ConsoleSession, user_id: str, what: str) -> None:
        if session.user_id == user_id:
            raise Forbidden(f"an operator cannot {what} their own account from the console")

    # --- audit ----------------------------------------------------------------------

    async def audit_page(self, params: Mapping[str, str]) -> dict[str, Any]:
        filters = audit_filters(params)
        events = await self.audit.search(**filters, limit=PAGE_SIZE + 1)
        more = len(events) > PAGE_SIZE
        events = events[:PAGE_SIZE]
        return {"events": events, "filters": params,
                "older": events[-1].id if more and events else None}

    async def audit_csv(self, params: Mapping[str, str], limit: int = 10_000) -> str:
        events = await self.audit.search(**audit_filters(params), limit=limit)
        return events_csv(events)


def audit_filters(params: Mapping[str, str]) -> dict[str, Any]:
    """The audit page's filters, validated: action, actor, subject, since, until
    (``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM``, UTC) and the ``before`` cursor."""
    from datetime import UTC, datetime

    from service.audit.query import AuditQuery

    def instant(name: str) -> float | None:
        text = params.get(name, "").strip()
        if not text:
            return None
        try:
            return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise InvalidRequest(f"{name} is a date such as 2026-01-31 or 2026-01-31T12:00"
                                 ) from None

    def text(name: str) -> str | None:
        value = params.get(name, "").strip()
        return value or None

    checked = AuditQuery.of(action=text("action"), subject=text("subject"), after_id=0,
                            limit=1)
    actor = text("actor")
    if actor is not None:
        AuditQuery.of(action=None, subject=actor, after_id=0, limit=1)
    before = params.get("before", "").strip()
    if before and (not before.isascii() or not before.isdigit() or len(before) > 18):
        raise InvalidRequest("before is an event id")
    return {"action": checked.action, "actor": actor, "subject": checked.subject,
            "since": instant("since"), "until": instant("until"),
            "before_id": int(before) if before else 0}


def events_csv(events: list[AuditEvent]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["id", "at", "action", "outcome", "actor", "subject", "ip"])
    for e in events:
        writer.writerow([e.id, charts.when(e.at), e.action, e.outcome, _cell(e.actor),
                         _cell(e.subject), _cell(e.ip)])
    return out.getvalue()


def _cell(value: str | None) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    text = value or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _duration(name: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}") from None


def _rate(text: str) -> Any:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise InvalidRequest(f"rate limit: {exc}") from None
