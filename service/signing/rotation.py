"""The key lifecycle of DESIGN §5: next -> active -> retired -> gone, and revoked.

Planning is a pure function of the key set, the clock and the policy, so its rules
are unit-tested without a database. Acting happens in ``KeyRotation`` under the
``signing_keys`` database lock: every replica's background loop plans from its
in-memory view each second, and only when something is due does one of them take
the lock, plan again from the stored rows and act; the others then find nothing to
do. Each change is published on the bus and found by every replica's poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from service.audit.log import AuditLog
from service.bus import Bus
from service.observability.metrics import KEY_ROTATIONS
from service.signing.errors import (
    KeyNotFound,
    KeyNotRevocable,
    KeySetIncomplete,
    KeyUnsealable,
    RotationNotReady,
)
from service.signing.kek import Kek
from service.signing.keyring import KeyRing
from service.signing.keys import ALG, GeneratedKey, generate, open_private, seal_private
from service.signing.store import SigningKeyRecord, SigningKeyStore

log = structlog.get_logger("authd.signing")

TOPIC = "signing.keys"
POLL_INTERVAL = 1.0
# How long a change may take to reach every replica (bus, else the 1 s poll). A key
# counts as published only this long after it was stored, and a retired key is
# kept this much longer, because a lagging replica may still serve the old set.
PROPAGATION_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    jwks_max_age: float
    max_token_ttl: float
    rotation_interval: float
    propagation: float = PROPAGATION_SECONDS

    def promotable_at(self, next_key: SigningKeyRecord) -> float:
        """A next key may sign once every JWKS cache that lacks it has expired."""
        return next_key.created_at + self.propagation + self.jwks_max_age

    def erasable_at(self, retired: SigningKeyRecord) -> float:
        """A retired key goes once every token it signed has expired and no cache
        that still holds such a token's verifier needs it."""
        retired_at = retired.retired_at or retired.created_at
        return retired_at + self.propagation + self.max_token_ttl + self.jwks_max_age

    def rotation_due_at(self, active: SigningKeyRecord) -> float:
        return (active.activated_at or active.created_at) + self.rotation_interval


@dataclass(frozen=True, slots=True)
class Plan:
    """What the lifecycle asks for at one instant."""

    create_active: bool = False
    promote_next: bool = False
    create_next: bool = False
    erase: tuple[str, ...] = field(default_factory=tuple)
    withdraw: tuple[str, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not (self.create_active or self.promote_next or self.create_next
                    or self.erase or self.withdraw)


def active_of(keys: Sequence[SigningKeyRecord]) -> SigningKeyRecord | None:
    return next((k for k in keys if k.state == "active"), None)


def next_of(keys: Sequence[SigningKeyRecord]) -> SigningKeyRecord | None:
    """The oldest next key: the one that has been published longest."""
    return min((k for k in keys if k.state == "next"), key=lambda k: k.created_at, default=None)


def plan(
    keys: Sequence[SigningKeyRecord], now: float, policy: RotationPolicy, target: str = ALG
) -> Plan:
    """The scheduled work due at ``now`` (on-demand rotation is ``plan_rotation``).

    ``target`` is the algorithm the key set records for new keys (issue 16). A next
    key of another algorithm is withdrawn and replaced by one in the target, which
    is promoted as soon as it has been published long enough — a change of
    algorithm does not wait for the rotation interval, but never skips publication.
    """
    active, next_key = active_of(keys), next_of(keys)
    withdraw: tuple[str, ...] = ()
    if next_key is not None and next_key.alg != target:
        withdraw = tuple(k.kid for k in keys if k.state == "next")
        next_key = None
    create_active = promote = False
    if active is None:
        # Nothing can sign: availability wins over the publication delay. On a first
        # start no verifier has cached anything yet, so nothing is lost either.
        promote = next_key is not None
        create_active = next_key is None
    elif next_key is not None:
        due = now >= policy.rotation_due_at(active) or active.alg != target
        promote = due and now >= policy.promotable_at(next_key)
    create_next = next_key is None or promote
    erase = tuple(
        k.kid for k in keys if k.state == "retired" and now >= policy.erasable_at(k)
    )
    return Plan(create_active, promote, create_next, erase, withdraw)


def plan_rotation(
    keys: Sequence[SigningKeyRecord], now: float, policy: RotationPolicy
) -> SigningKeyRecord:
    """The next key an on-demand rotation promotes; RotationNotReady if too early.

    Only for a key set that has a next key: ``KeyRotation.rotate`` completes one that
    lacks it first, because "ready in N s" would be a promise about a key that does
    not exist (and that nothing might ever create: no server may be running)."""
    next_key = next_of(keys)
    if next_key is None:
        raise KeySetIncomplete()
    ready_at = policy.promotable_at(next_key)
    if now < ready_at and active_of(keys) is not None:
        raise RotationNotReady(next_key.kid, ready_at, now)
    return next_key


@dataclass(frozen=True, slots=True)
class KeyChange:
    """What one lifecycle step did, for the CLI, the admin API and the audit log."""

    action: str
    active: str | None
    next: str | None
    retired: str | None = None
    revoked: str | None = None
    erased: tuple[str, ...] = ()
    # Next keys retired unused because the key set's target algorithm changed.
    withdrawn: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action, "active": self.active, "next": self.next,
            "retired": self.retired, "revoked": self.revoked, "erased": list(self.erased),
            "withdrawn": list(self.withdrawn),
        }


class KeyRotation:
    def __init__(
        self,
        store: SigningKeyStore,
        kek: Kek,
        keys: KeyRing,
        policy: RotationPolicy,
        *,
        bits: int,
        audit: AuditLog,
        bus: Bus,
        clock: Callable[[], float] = time.time,
        alg: str = ALG,
    ) -> None:
        self._store = store
        self._kek = kek
        self._keys = keys
        self.policy = policy
        self._bits = bits
        # AUTHD_SIGNING_ALG: recorded as the key set's target only when none is yet
        # (a first start); otherwise the recorded target rules (``set_target``).
        self._alg = alg
        self._audit = audit
        self._bus = bus
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def _generate(self, alg: str) -> GeneratedKey:
        return await asyncio.to_thread(generate, self._bits, alg)

    def _target(self) -> str:
        """The target algorithm as this replica last loaded it (for unlocked guesses)."""
        return self._keys.target_alg or self._alg

    async def _locked_target(self, store: SigningKeyStore) -> str:
        """The recorded target, read under the lock; recorded from the setting if absent."""
        target = await store.target_alg()
        if target is None:
            await store.set_target_alg(self._alg, self._clock(), replace=False)
            target = self._alg
        return target

    async def _insert(self, store: SigningKeyStore, key: GeneratedKey, state: str) -> None:
        """Store a new key stamped with the clock at its insert, not the instant the
        work was planned: the wait for the lock and the key's generation come between,
        and a next key's publication delay (``promotable_at``) must run from when
        replicas can first see it, or it could sign before verifiers cached it."""
        sealed = await asyncio.to_thread(seal_private, self._kek, key.kid, key.private_key)
        inserted_at = self._clock()
        record = SigningKeyRecord(
            kid=key.kid, alg=key.alg, state="active" if state == "active" else "next",
            public_jwk=key.public_jwk_text, created_at=inserted_at,
            activated_at=inserted_at if state == "active" else None,
        )
        await store.insert(record, sealed)

    async def _check_kek(self, store: SigningKeyStore, keys: Sequence[SigningKeyRecord]) -> None:
        """Refuse to add keys sealed under a KEK that cannot open the existing ones
        (a CLI run with the wrong AUTHD_KEK would otherwise plant unusable keys)."""
        for record in keys:
            if record.state in ("active", "next"):
                sealed = await store.private_sealed(record.kid)
                if sealed is None:
                    raise KeyUnsealable(record.kid)
                await asyncio.to_thread(open_private, self._kek, record.kid, sealed)
                return

    async def _spare(self, pool: list[GeneratedKey], alg: str) -> GeneratedKey:
        """A key generated before the lock was taken, if it has the target algorithm
        (the target may have changed meanwhile), else a new one."""
        while pool:
            key = pool.pop()
            if key.alg == alg:
                return key
        return await self._generate(alg)

    async def _apply(self, store: SigningKeyStore, todo: Plan, now: float,
                     pool: list[GeneratedKey], keys: Sequence[SigningKeyRecord],
                     alg: str) -> KeyChange:
        """Carry out ``todo`` inside the locked transaction ``store``; new keys are
        made in ``alg``, the key set's target."""
        for kid in todo.withdraw:
            await store.withdraw(kid, now)
        keys = [k for k in keys if k.kid not in todo.withdraw]
        active, next_key = active_of(keys), next_of(keys)
        retired = None
        if todo.promote_next and next_key is not None:
            if active is not None:
                await store.retire(active.kid, now)
                retired = active.kid
            await store.activate(next_key.kid, now)
            active_kid: str | None = next_key.kid
            next_key = None
        else:
            active_kid = active.kid if active else None
        if todo.create_active:
            created = await self._spare(pool, alg)
            await self._insert(store, created, "active")
            active_kid = created.kid
        next_kid = next_key.kid if next_key else None
        if todo.create_next or next_key is None:
            created = await self._spare(pool, alg)
            await self._insert(store, created, "next")
            next_kid = created.kid
        for kid in todo.erase:
            await store.erase(kid, now)
        action = "rotate" if retired else ("create" if todo.create_active else "maintain")
        return KeyChange(action, active_kid, next_kid, retired=retired, erased=todo.erase,
                         withdrawn=todo.withdraw)

    async def _changed(self) -> None:
        """Tell every replica (and this one, at once) that the key set changed."""
        await self._bus.publish(TOPIC)
        await self._keys.refresh(force=True)

    # --- operations ------------------------------------------------------------------

    async def list_keys(self) -> list[SigningKeyRecord]:
        return await self._store.list_keys()

    async def ensure_keys(
        self, *, trigger: str = "scheduled", actor: str | None = "authd", ip: str | None = None
    ) -> KeyChange | None:
        """First start: make one active and one next key, once across replicas.

        Keys are generated before the lock is taken (RSA generation is slow) and
        thrown away if another replica got there first.
        """
        now = self._clock()
        target = await self._store.target_alg()
        if target is None:
            await self._store.set_target_alg(self._alg, now, replace=False)
            target = await self._store.target_alg() or self._alg
        guess = plan(await self._store.list_keys(), now, self.policy, target)
        if guess.empty:
            return None
        pool = [await self._generate(target)
                for _ in range(guess.create_active + guess.create_next)]
        async with self._store.locked() as store:
            keys = await store.list_keys()
            target = await self._locked_target(store)
            todo = plan(keys, now, self.policy, target)
            if todo.empty:
                return None
            await self._check_kek(store, keys)
            change = await self._apply(store, todo, now, pool, keys, target)
        await self._record(change, trigger, actor=actor, ip=ip)
        await self._changed()
        return change

    async def maintain(self) -> KeyChange | None:
        """Scheduled work: rotation when due, erasure of retired keys past their time."""
        now = self._clock()
        if plan(self._keys.records, now, self.policy, self._target()).empty:
            return None
        pool: list[GeneratedKey] = []
        async with self._store.locked() as store:
            keys = await store.list_keys()
            target = await self._locked_target(store)
            todo = plan(keys, now, self.policy, target)
            if todo.empty:
                return None
            if todo.create_active or todo.create_next:
                await self._check_kek(store, keys)
            change = await self._apply(store, todo, now, pool, keys, target)
        await self._record(change, "scheduled", actor="authd")
        await self._changed()
        return change

    async def rotate(
        self, *, trigger: str, actor: str | None = None, ip: str | None = None
    ) -> KeyChange:
        """On demand: the next key signs, the active one retires, a new next key is
        published. RotationNotReady (409) while the next key is too fresh.

        As in ensure_keys, the stored keys are read without the lock first: a
        refused rotation costs no key generation, a granted one generates its key
        before the lock is taken, and the plan is checked again under the lock.

        A key set without a next key (a database no server has started on yet) is
        completed instead: with no active key either, the new key set is the answer
        (its active key signs at once: no verifier can know an older one); with an
        active key, the new next key is published and the refusal names it and the
        time it may be promoted, a time that now will come."""
        now = self._clock()
        try:
            seen = await self._store.list_keys()
            target = await self._store.target_alg() or self._alg
            seen_next = next_of(seen)
            if seen_next is None or seen_next.alg != target:
                return await self._complete(now, trigger=trigger, actor=actor, ip=ip)
            plan_rotation(seen, now, self.policy)
            fresh = await self._generate(target)
            async with self._store.locked() as store:
                keys = await store.list_keys()
                target = await self._locked_target(store)
                next_key = plan_rotation(keys, now, self.policy)
                if next_key.alg != target:  # the target changed since the look above
                    raise RotationNotReady(next_key.kid, now + self.policy.jwks_max_age, now)
                await self._check_kek(store, keys)
                todo = Plan(promote_next=True, create_next=True)
                change = await self._apply(store, todo, now, [fresh], keys, target)
        except RotationNotReady as refused:
            await self._audit.write(
                "signing_key.rotate", "refused", actor=actor, ip=ip, subject=refused.kid,
                trigger=trigger, ready_at=refused.ready_at,
            )
            raise
        await self._record(change, trigger, actor=actor, ip=ip)
        await self._changed()
        return change

    async def _complete(
        self, now: float, *, trigger: str, actor: str | None, ip: str | None
    ) -> KeyChange:
        """``rotate`` on a key set without a next key, or whose next key is not in the
        target algorithm: make what is missing (withdrawing that next key), then
        answer the new key set or the real time the new next key may sign."""
        change = await self.ensure_keys(trigger=trigger, actor=actor, ip=ip)
        if change is not None and change.action == "create":
            return change
        next_key = next_of(await self._store.list_keys())
        if next_key is None:  # ensure_keys always leaves one; say so rather than loop
            raise KeySetIncomplete()
        raise RotationNotReady(next_key.kid, self.policy.promotable_at(next_key), now)

    async def revoke(self, kid: str, *, actor: str | None = None,
                     ip: str | None = None) -> KeyChange:
        """Emergency removal of a compromised key: out of the JWKS at once, private
        part erased; if it was signing, the next key signs immediately.

        A replacement key is generated before the lock only when the unlocked look
        finds a key that needs one; an unknown kid (404) costs no generation."""
        now = self._clock()
        seen = await self._store.get(kid)
        needs_key = seen is not None and seen.published and seen.state in ("active", "next")
        pool = [await self._generate(self._target())] if needs_key else []
        async with self._store.locked() as store:
            record = await store.get(kid)
            if record is None:
                raise KeyNotFound(kid)
            if not record.published:
                raise KeyNotRevocable(kid, record.state)
            keys = await store.list_keys()
            target = await self._locked_target(store)
            await store.revoke(kid, now)
            remaining = [k for k in keys if k.kid != kid]
            has_next = next_of(remaining) is not None
            todo = Plan(
                create_active=record.state == "active" and not has_next,
                promote_next=record.state == "active" and has_next,
                create_next=record.state in ("active", "next"),
            )
            if not todo.empty:
                await self._check_kek(store, remaining)
            change = await self._apply(store, todo, now, pool, remaining, target)
        change = KeyChange("revoke", change.active, change.next, revoked=kid)
        if record.state == "active":
            KEY_ROTATIONS.labels("revocation").inc()
        await self._audit.write(
            "signing_key.revoke", actor=actor, ip=ip, subject=kid, was=record.state,
            active=change.active, next=change.next,
        )
        await self._changed()
        return change

    async def _record(self, change: KeyChange, trigger: str, *, actor: str | None,
                      ip: str | None = None) -> None:
        if change.retired is not None or change.action == "rotate":
            KEY_ROTATIONS.labels(trigger).inc()
        log.info("signing.key_set_changed", **change.as_dict(), trigger=trigger)
        await self._audit.write(
            f"signing_key.{change.action}", actor=actor, ip=ip, subject=change.active,
            trigger=trigger, retired=change.retired, next=change.next,
            erased=list(change.erased), withdrawn=list(change.withdrawn),
        )

    # --- background --------------------------------------------------------------------

    def start(self) -> None:
        self._bus.subscribe(TOPIC, self._on_bus)
        self._task = asyncio.create_task(self._run(), name="authd-signing")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _on_bus(self, payload: str) -> None:
        try:
            await self._keys.refresh()
        except KeyUnsealable as exc:
            log.error("signing.key_unsealable", kid=exc.kid)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            try:
                await self._keys.refresh()
                self._keys.observe()
                await self.maintain()
            except asyncio.CancelledError:
                raise
            except KeyUnsealable as exc:
                log.error("signing.key_unsealable", kid=exc.kid)
            except Exception as exc:
                log.warning("signing.poll_failed", error=type(exc).__name__)
