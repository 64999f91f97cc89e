"""Clients and API keys: creation, listing, revocation, rotation, and verification.

``ApiKeyService`` is ``runtime.apikeys``. Operator actions (the admin API and the CLI
call the same methods) are written to the audit log before they answer, and any change
that can make a key stop working is published on the bus so that every replica drops
its cached copy at once (see ``cache.py``). ``verify`` is the exchange's hot path: a
shape/checksum check without I/O, then the cache, then one indexed lookup by digest.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import structlog

from service.apikeys import keyformat
from service.apikeys.cache import KeyCache
from service.apikeys.errors import (
    ApiKeyNotFound,
    ClientDisabled,
    ClientNotFound,
    ExpiredApiKey,
    InvalidClientSpec,
    LookupDeclined,
    MalformedApiKey,
    RevocationNotAnnounced,
    RevokedApiKey,
    UnknownApiKey,
)
from service.apikeys.known import KnownKeys, digest_prefix
from service.apikeys.models import (
    ACTIVE,
    DISABLED,
    ApiKey,
    ApiKeyPrincipal,
    Client,
    VerifiedKey,
)
from service.apikeys.store import ApiKeyStore
from service.apikeys.usage import UsageRecorder
from service.audit.log import AuditLog
from service.bus import Bus
from service.config import MAX_TOKEN_TTL, Rate, Settings
from service.errors import Conflict, InvalidScope
from service.observability.metrics import API_KEY_VERIFICATIONS, TALLY
from service.store import StorageUnavailable

TOPIC = "apikeys.invalidate"
ADMIN_CLIENT_NAME = "authd-admin"
ADMIN_SCOPE = "authd:admin"
ADMIN_CLIENT_SCOPES = frozenset({ADMIN_SCOPE, "authd:introspect"})
MIN_TOKEN_TTL = 30.0

# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]{1,128}")
_AUDIENCE = re.compile(r"[\x21-\x7E]{1,256}")
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,100}")

_VALID = API_KEY_VERIFICATIONS.labels("valid")
log = structlog.get_logger("authd.apikeys")

_MALFORMED = API_KEY_VERIFICATIONS.labels("malformed")
_UNKNOWN = API_KEY_VERIFICATIONS.labels("unknown")
_REVOKED = API_KEY_VERIFICATIONS.labels("revoked")
_EXPIRED = API_KEY_VERIFICATIONS.labels("expired")
_DISABLED = API_KEY_VERIFICATIONS.labels("client_disabled")


def _new_client(
    name: str, scopes: frozenset[str], audiences: tuple[str, ...], token_ttl: float
) -> Client:
    now = time.time()
    return Client(
        id=keyformat.new_id("cl_"), name=name, scopes=scopes,
        audiences=tuple(dict.fromkeys(audiences)), token_ttl=float(token_ttl), status=ACTIVE,
        created_at=now, updated_at=now,
    )


def parse_scopes(text: str | list[str] | None, *, what: str = "scope") -> frozenset[str]:
    """A space-separated scope string (or a list of tokens), each an RFC 6749 token."""
    tokens = text.split() if isinstance(text, str) else list(text or [])
    for token in tokens:
        if not isinstance(token, str) or not SCOPE_TOKEN.fullmatch(token):
            raise InvalidClientSpec(f"{what} holds an invalid scope token")
    return frozenset(tokens)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key at the one moment its plaintext exists: it is shown once, never stored."""

    key: ApiKey
    plaintext: str

    def as_dict(self) -> dict[str, object]:
        return {**self.key.as_dict(), "api_key": self.plaintext}


class ApiKeyService:
    def __init__(
        self, settings: Settings, store: ApiKeyStore, bus: Bus, audit: AuditLog
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.audit = audit
        self.shape = keyformat.KeyShape(settings.api_key_prefix)
        self.cache = KeyCache(settings.api_key_cache_ttl,
                              stale_if_error=settings.api_key_stale_if_error,
                              refresh=self._refresh_ahead)
        # One store read per digest at a time: requests that miss together share it.
        self._lookups: dict[bytes, asyncio.Future[VerifiedKey | None]] = {}
        self._refreshes: set[asyncio.Task[None]] = set()
        self.usage = UsageRecorder(store, audit)
        self.known = KnownKeys(store.active_digests)
        bus.subscribe(TOPIC, self._on_invalidate)

    # ---- the hot path ------------------------------------------------------------

    async def verify(self, unverified_key: str, *, unknown_lookup: bool = True) -> VerifiedKey:
        """The key's record and client, or InvalidClient; storage only on a cache miss.
        With ``unknown_lookup`` False (the caller's address is over its budget) a key
        neither cached nor known to exist raises LookupDeclined instead of a lookup."""
        # The cache first: it holds only keys that verified, so a hit is well formed;
        # the shape and checksum are checked before anything else is done for a miss.
        digest = keyformat.digest(unverified_key)
        verified = self.cache.get(digest)
        if verified is None:
            if not self.shape.well_formed(unverified_key):
                _MALFORMED.inc()
                raise MalformedApiKey()
            if not unknown_lookup and digest not in self.known:
                raise LookupDeclined()
            verified = await self._lookup(digest)
            if verified is None:
                _UNKNOWN.inc()
                raise UnknownApiKey()
        key = verified.key
        if key.status != ACTIVE:
            _REVOKED.inc()
            raise RevokedApiKey()
        if key.expires_at is not None and key.expires_at <= time.time():
            _EXPIRED.inc()
            raise ExpiredApiKey()
        if verified.client.status != ACTIVE:
            _DISABLED.inc()
            raise ClientDisabled()
        TALLY.inc(_VALID)
        return verified

    async def _lookup(self, digest: bytes) -> VerifiedKey | None:
        """The store's record (then cached), or through a storage outage the record
        this replica verified within AUTHD_API_KEY_STALE_IF_ERROR; for any other key
        the outage still raises StorageUnavailable (503 with Retry-After).

        Single flight: the requests that miss the same digest together wait for one
        read (shielded, so one caller's cancellation does not fail the others)."""
        pending = self._lookups.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._read(digest))
            self._lookups[digest] = pending
            pending.add_done_callback(lambda done: self._lookup_done(digest, done))
        return await asyncio.shield(pending)

    def _lookup_done(self, digest: bytes, done: asyncio.Future[VerifiedKey | None]) -> None:
        if self._lookups.get(digest) is done:
            del self._lookups[digest]
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every waiter was cancelled

    def _refresh_ahead(self, digest: bytes) -> None:
        """The cache's request to re-read a busy entry before it expires (cache.py)."""
        task = asyncio.get_running_loop().create_task(self._refresh(digest))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _refresh(self, digest: bytes) -> None:
        epoch = self.cache.epoch
        try:
            verified = await self.store.by_digest(digest)
        except Exception as exc:  # a background task: log it, never raise
            log.warning("apikeys.refresh_failed", error=type(exc).__name__)
            self.cache.refresh_failed(digest)
            return
        if verified is None:
            self.cache.drop(digest)
        else:
            self.cache.put(digest, verified, epoch)

    async def _read(self, digest: bytes) -> VerifiedKey | None:
        epoch = self.cache.epoch
        try:
            verified = await self.store.by_digest(digest)
        except StorageUnavailable:
            stale = self.cache.serve_stale(digest)
            if stale is None:
                raise
            return stale
        if verified is None:
            self.cache.drop(digest)
        else:
            self.cache.put(digest, verified, epoch)
        return verified

    async def authenticate(self, unverified_key: str) -> ApiKeyPrincipal:
        verified = await self.verify(unverified_key)
        return ApiKeyPrincipal(verified.client.id, verified.key.id, verified.key.scopes)

    # ---- clients -------------------------------------------------------------------

    async def create_client(
        self,
        name: str,
        *,
        scopes: frozenset[str],
        audiences: tuple[str, ...] = (),
        token_ttl: float | None = None,
        actor: str,
    ) -> Client:
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name != name.strip():
            raise InvalidClientSpec("name must be 1-100 printable characters")
        audiences = audiences or (self.settings.default_audience,)
        for audience in audiences:
            if not isinstance(audience, str) or not _AUDIENCE.fullmatch(audience):
                raise InvalidClientSpec("an audience is 1-256 visible characters, no spaces")
        ttl = self.settings.api_key_token_ttl if token_ttl is None else token_ttl
        if not MIN_TOKEN_TTL <= ttl <= MAX_TOKEN_TTL:
            raise InvalidClientSpec("token_ttl must be from 30 s to 24 h")
        client = _new_client(name, scopes, audiences, ttl)
        # No look-up first: the unique name decides, so that of two concurrent
        # creations one succeeds and the other gets ClientExists (409), never a 500.
        await self.store.insert_client(client)
        await self.audit.write("client.create", actor=actor, subject=client.id,
                               name=name, scopes=sorted(scopes))
        return client

    async def client(self, client_id: str) -> Client:
        client = await self.store.client(client_id)
        if client is None:
            raise ClientNotFound("no such client")
        return client

    async def clients(self) -> list[Client]:
        return await self.store.clients()

    async def disable_client(self, client_id: str, *, actor: str) -> Client:
        """Disable a client (its keys stop on every replica within a second); raises
        RevocationNotAnnounced (503) as ``revoke_key`` does."""
        await self.client(client_id)
        await self.store.set_client_status(client_id, DISABLED, time.time())
        announced = await self.bus.publish(TOPIC, "client:" + client_id)
        await self.audit.write("client.disable", actor=actor, subject=client_id)
        if not announced:
            raise RevocationNotAnnounced()
        return await self.client(client_id)

    async def set_token_policy(
        self,
        client_id: str,
        *,
        exchange_audiences: tuple[str, ...] | None = None,
        dpop_required: bool | None = None,
        actor: str,
    ) -> Client:
        """Set what the client may obtain by token exchange (RFC 8693; the audiences
        replace the previous list, an empty list allows none) and whether its token
        requests need a DPoP proof (RFC 9449); ``None`` keeps a setting. Every replica
        drops its cached copy of the client at once."""
        client = await self.client(client_id)
        audiences = client.exchange_audiences if exchange_audiences is None else tuple(
            dict.fromkeys(exchange_audiences))
        for audience in audiences:
            if not isinstance(audience, str) or not _AUDIENCE.fullmatch(audience):
                raise InvalidClientSpec("an audience is 1-256 visible characters, no spaces")
        required = client.dpop_required if dpop_required is None else dpop_required
        await self.store.set_client_token_policy(client_id, audiences, required, time.time())
        await self.bus.publish(TOPIC, "client:" + client_id)
        await self.audit.write("client.token_policy", actor=actor, subject=client_id,
                               exchange_audiences=list(audiences), dpop_required=required)
        return await self.client(client_id)

    # ---- keys ----------------------------------------------------------------------

    async def create_key(
        self,
        client_id: str,
        *,
        scopes: frozenset[str] | None = None,
        expires_in: float | None = None,
        rate: Rate | None = None,
        actor: str,
        replaces: str | None = None,
    ) -> IssuedKey:
        client = await self.client(client_id)
        if not client.active:
            raise Conflict("the client is disabled")
        key_scopes = client.scopes if scopes is None else scopes
        if not key_scopes <= client.scopes:
            raise InvalidScope("a key's scopes must be a subset of its client's")
        if expires_in is not None and expires_in <= 0:
            raise InvalidClientSpec("expires_in must be positive")
        issued = self._new_key(client, key_scopes, expires_in, rate, replaces)
        await self._inserted(issued, None)
        await self.audit.write("apikey.create", actor=actor, subject=issued.key.id,
                               client_id=client_id, scopes=sorted(key_scopes),
                               expires_at=issued.key.expires_at)
        return issued

    async def _inserted(self, issued: IssuedKey, replacing: tuple[str, float] | None) -> None:
        """Store a new key (with the old key's shortened life when rotating) and make it
        known to every replica's ``known`` set (a digest prefix is no secret: the key
        behind it has 178 random bits)."""
        digest = keyformat.digest(issued.plaintext)
        if replacing is None:
            await self.store.insert_key(issued.key, digest)
        else:
            await self.store.rotate_key(replacing[0], replacing[1], issued.key, digest)
        await self._announce(digest)

    async def _announce(self, digest: bytes) -> None:
        """A stored key joins this replica's ``known`` set and, over the bus, every
        other's."""
        prefix = digest_prefix(digest)
        self.known.add(prefix)
        await self.bus.publish(TOPIC, f"new:{prefix:x}")

    def _new_key(
        self, client: Client, scopes: frozenset[str], expires_in: float | None,
        rate: Rate | None, replaces: str | None,
    ) -> IssuedKey:
        plaintext = keyformat.generate(self.settings.api_key_prefix)
        now = time.time()
        key = ApiKey(
            id=keyformat.new_id("key_"), client_id=client.id,
            display=keyformat.display(plaintext, self.settings.api_key_prefix),
            scopes=scopes, rate=rate, status=ACTIVE,
            expires_at=None if expires_in is None else now + expires_in,
            last_used_at=None, replaces=replaces, created_at=now, revoked_at=None,
        )
        return IssuedKey(key, plaintext)

    async def key(self, key_id: str) -> ApiKey:
        key = await self.store.key(key_id)
        if key is None:
            raise ApiKeyNotFound("no such API key")
        return key

    async def keys(self, client_id: str) -> list[ApiKey]:
        await self.client(client_id)
        return await self.store.keys(client_id)

    async def revoke_key(self, key_id: str, *, actor: str) -> ApiKey:
        """Revoke (never delete) a key; every replica refuses it within a second.

        Raises RevocationNotAnnounced (503) when the revocation is committed but no
        channel reached the other replicas; revoking again announces it again."""
        await self.key(key_id)
        changed = await self.store.revoke_key(key_id, time.time())
        announced = await self.bus.publish(TOPIC, "key:" + key_id)
        if changed:
            await self.audit.write("apikey.revoke", actor=actor, subject=key_id)
        if not announced:
            raise RevocationNotAnnounced()
        return await self.key(key_id)

    async def rotate_key(
        self, key_id: str, *, overlap: float, actor: str
    ) -> tuple[IssuedKey, ApiKey]:
        """A successor with the same client, scopes and limit; the old key keeps
        working for ``overlap`` seconds (or until its own earlier expiry)."""
        old = await self.key(key_id)
        now = time.time()
        if not old.usable_at(now):
            raise Conflict("only an active, unexpired key can be rotated")
        if overlap < 0:
            raise InvalidClientSpec("overlap must not be negative")
        client = await self.client(old.client_id)
        if not client.active:
            raise Conflict("the client is disabled")
        lifetime = None if old.expires_at is None else old.expires_at - old.created_at
        issued = self._new_key(client, old.scopes & client.scopes, lifetime, old.rate, old.id)
        await self._inserted(issued, (old.id, now + overlap))
        await self.bus.publish(TOPIC, "key:" + old.id)
        await self.audit.write("apikey.rotate", actor=actor, subject=old.id,
                               successor=issued.key.id, overlap=overlap)
        return issued, await self.key(old.id)

    async def bootstrap(self, *, if_absent: bool, actor: str) -> IssuedKey | None:
        """The admin client (created when absent) and a new ``authd:admin`` key; with
        ``if_absent``, nothing when the admin client already exists.

        Insert-or-get: the client and its first key are stored in one transaction
        that does nothing when the name is taken, so pods starting together each
        run ``bootstrap --if-absent`` and exactly one of them prints a key; the
        others return None. Never a half-done bootstrap (a client without the key
        that was to be shown) that a later ``--if-absent`` would take for done."""
        client = _new_client(ADMIN_CLIENT_NAME, ADMIN_CLIENT_SCOPES,
                             (self.settings.default_audience,), self.settings.api_key_token_ttl)
        issued = self._new_key(client, frozenset({ADMIN_SCOPE}), None, None, None)
        digest = keyformat.digest(issued.plaintext)
        if await self.store.insert_client_with_key(client, issued.key, digest):
            await self._announce(digest)
            await self.audit.write("client.create", actor=actor, subject=client.id,
                                   name=client.name, scopes=sorted(client.scopes))
            await self.audit.write("apikey.create", actor=actor, subject=issued.key.id,
                                   client_id=client.id, scopes=sorted(issued.key.scopes),
                                   expires_at=None)
            return issued
        if if_absent:
            return None
        existing = await self.store.client_by_name(ADMIN_CLIENT_NAME)
        if existing is None:  # clients are never deleted; only a broken store gets here
            raise ClientNotFound("the admin client vanished during bootstrap")
        return await self.create_key(existing.id, scopes=frozenset({ADMIN_SCOPE}), actor=actor)

    # ---- lifecycle -----------------------------------------------------------------

    async def _on_invalidate(self, payload: str) -> None:
        kind, _, ident = payload.partition(":")
        if kind == "new":
            # A key created on some replica: nothing cached can be stale because of it.
            if ident and len(ident) <= 16 and all(c in "0123456789abcdef" for c in ident):
                self.known.add(int(ident, 16))
            return
        # A lookup already in flight read the store before this change: requests that
        # arrive from now on must not join it (the epoch keeps it out of the cache).
        self._lookups.clear()
        if kind == "key":
            self.cache.drop_key(ident)
        elif kind == "client":
            self.cache.drop_client(ident)
        else:
            self.cache.clear()

    async def start(self) -> None:
        await self.usage.start()
        await self.known.start()

    async def close(self) -> None:
        for task in list(self._refreshes):
            task.cancel()
        await self.known.close()
        await self.usage.close()
