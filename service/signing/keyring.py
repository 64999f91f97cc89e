"""The key ring: this process's in-memory view of the signing-key set.

It holds what the hot paths need, prepared once per change of the key set rather
than once per request: the JWKS body and its strong ETag, the public keys by kid for
``verify``, and the active private key for the issuer. ``refresh`` reloads it when
the set changed (the rotation loop polls a cheap fingerprint; the bus pushes).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from authd_verifier import TokenExpired, VerificationError, VerificationKey, Verifier
from authd_verifier.claims import ANY_AUDIENCE

from service.errors import InvalidToken
from service.observability.metrics import ACTIVE_KEY_AGE, SIGNING_KEYS
from service.signing.errors import KeyUnsealable, NoActiveKey
from service.signing.kek import Kek
from service.signing.keys import (
    ALGORITHMS,
    PUBLIC_MEMBERS,
    PrivateKey,
    b64url_bytes,
    jws_signer,
    open_private,
)
from service.signing.store import SigningKeyRecord, SigningKeyStore

log = structlog.get_logger("authd.signing")

# One named leeway for exp / nbf / iat, for clocks a little apart (RFC 7519 §4.1.4).
LEEWAY_SECONDS = 30
_STATE_ORDER = {"active": 0, "next": 1, "retired": 2}
ALL_STATES = ("next", "active", "retired", "revoked", "gone")


@dataclass(frozen=True, slots=True, repr=False)
class ActiveKey:
    """The key that signs: its kid, algorithm and private key object, loaded once."""

    kid: str
    private_key: PrivateKey
    activated_at: float
    alg: str = "RS256"

    def __repr__(self) -> str:
        return f"ActiveKey(kid={self.kid!r}, alg={self.alg!r})"


def _header_prefix(kid: str, alg: str) -> bytes:
    # RFC 9068 §2.1 header; members sorted, as PyJWT writes them.
    header = json.dumps({"alg": alg, "kid": kid, "typ": "at+jwt"}, separators=(",", ":"))
    return b64url_bytes(header.encode()) + b"."


@dataclass(frozen=True, slots=True, repr=False)
class PreparedSigner:
    """What every token of the active key shares, prepared once per key-set change:
    the encoded JOSE header with the dot that follows it (``header_prefix + payload``
    is the JWS signing input) and the signature function of the key's algorithm."""

    kid: str
    alg: str
    header_prefix: bytes
    sign: Callable[[bytes], bytes]

    def __repr__(self) -> str:
        return f"PreparedSigner(kid={self.kid!r}, alg={self.alg!r})"


class KeyRing:
    def __init__(
        self,
        store: SigningKeyStore,
        kek: Kek,
        *,
        issuer: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._kek = kek
        self._issuer = issuer
        self._clock = clock
        self._lock = asyncio.Lock()
        self._fingerprint: tuple[int, float] | None = None
        self._private: dict[str, PrivateKey] = {}
        self._verifying: dict[str, VerificationKey] = {}
        # Tokens are checked against the wall clock, as they were issued by it;
        # ``clock`` only dates the key-age gauge.
        self._verifier = Verifier(
            keys=self, issuer=issuer, audience=ANY_AUDIENCE, algorithms=ALGORITHMS,
            leeway=LEEWAY_SECONDS,
        )
        self.records: tuple[SigningKeyRecord, ...] = ()
        # The algorithm new keys are made in, as the key set records it (None until
        # recorded); and the algorithms of the published keys, for RFC 8414 metadata.
        self.target_alg: str | None = None
        self.published_algorithms: tuple[str, ...] = ()
        self.active: ActiveKey | None = None
        self.prepared: PreparedSigner | None = None
        self.jwks_body: bytes = b'{"keys":[]}'
        self.jwks_etag: str = _etag(self.jwks_body)

    # --- loading -------------------------------------------------------------------

    async def refresh(self, *, force: bool = False) -> bool:
        """Reload if the stored key set changed; True when something was reloaded.

        The fingerprint is read before the rows, so a change landing in between is
        seen again on the next poll rather than missed.

        A key that does not open under this KEK raises KeyUnsealable. Before any key
        was loaded (start-up) nothing is installed. Once this process signs, it is a
        replica still running with the old KEK after ``authd keys rewrap`` (or a key
        made by a replica with the new one): the public view is installed, signing
        goes on with the key already in memory while it is still published, and the
        fingerprint is not kept so that every poll tries again until a restart with
        the new KEK.
        """
        async with self._lock:
            fingerprint = await self._store.fingerprint()
            if not force and fingerprint == self._fingerprint:
                return False
            records = await self._store.list_keys()
            self.target_alg = await self._store.target_alg()
            private, unopened = await self._open_signing_keys(records)
            self._install(records, private)
            if unopened is not None:
                self._fingerprint = None
                raise unopened
            self._fingerprint = fingerprint
            return True

    async def _open_signing_keys(
        self, records: list[SigningKeyRecord]
    ) -> tuple[dict[str, PrivateKey], KeyUnsealable | None]:
        """The private parts of the active and next keys, opened under the KEK, and
        the error of the first one that does not open once this process signs.

        The next key is opened too, though it does not sign yet: a wrong KEK must
        stop start-up now, not at the promotion weeks later.
        """
        wanted = [r.kid for r in records if r.state in ("active", "next")]
        opened: dict[str, PrivateKey] = {}
        unopened: KeyUnsealable | None = None
        for kid in wanted:
            if kid in self._private:
                opened[kid] = self._private[kid]
                continue
            try:
                sealed = await self._store.private_sealed(kid)
                if sealed is None:
                    raise KeyUnsealable(kid)
                opened[kid] = await asyncio.to_thread(open_private, self._kek, kid, sealed)
            except KeyUnsealable as exc:
                if self.active is None:
                    raise
                unopened = unopened or exc
        return opened, unopened

    def _install(
        self, records: list[SigningKeyRecord], private: dict[str, PrivateKey]
    ) -> None:
        published = sorted(
            (r for r in records if r.published),
            key=lambda r: (_STATE_ORDER[r.state], -r.created_at),
        )
        jwks: list[dict[str, Any]] = []
        verifying: dict[str, VerificationKey] = {}
        for record in published:
            jwk = json.loads(record.public_jwk)
            jwk = {name: jwk[name] for name in PUBLIC_MEMBERS if name in jwk}
            jwk["kid"] = record.kid
            jwks.append(jwk)
            verifying[record.kid] = VerificationKey.from_jwk(jwk)
        active_record = next((r for r in records if r.state == "active"), None)
        active = None
        if active_record is not None and active_record.kid in private:
            active = ActiveKey(
                active_record.kid,
                private[active_record.kid],
                active_record.activated_at or active_record.created_at,
                active_record.alg,
            )
        elif (active_record is not None and self.active is not None
              and self.active.kid in verifying):
            # The active key does not open under this KEK (see ``refresh``): keep
            # signing with the one in memory; verifiers accept it while published.
            active = self.active
        body = json.dumps({"keys": jwks}, separators=(",", ":")).encode()
        # Swap every prepared value in one step of the event loop: a request never
        # sees a body from one key set and an ETag from another.
        previous = self.active
        self.records = tuple(records)
        self._private = private
        self._verifying = verifying
        self.active = active
        self.prepared = None if active is None else PreparedSigner(
            active.kid, active.alg, _header_prefix(active.kid, active.alg),
            jws_signer(active.private_key, active.alg),
        )
        self.published_algorithms = tuple(
            alg for alg in ALGORITHMS if any(r.alg == alg for r in published)
        )
        self.jwks_body, self.jwks_etag = body, _etag(body)
        self.observe()
        log.info(
            "signing.key_set_loaded",
            published=[j["kid"] for j in jwks],
            active=active.kid if active else None,
            active_changed=(previous.kid if previous else None)
            != (active.kid if active else None),
        )

    @property
    def announced_algorithms(self) -> tuple[str, ...]:
        """What tokens are or will soon be signed with: the published keys' algorithms
        and the target's (RFC 8414 metadata)."""
        wanted = {*self.published_algorithms, self.target_alg or ""}
        return tuple(alg for alg in ALGORITHMS if alg in wanted)

    def observe(self) -> None:
        """Update the key-set gauges (called on reload and on every poll)."""
        counts = dict.fromkeys(ALL_STATES, 0)
        for record in self.records:
            counts[record.state] += 1
        for state, count in counts.items():
            SIGNING_KEYS.labels(state).set(count)
        if self.active is not None:
            ACTIVE_KEY_AGE.set(max(0.0, self._clock() - self.active.activated_at))

    # --- use -----------------------------------------------------------------------

    def signer(self) -> ActiveKey:
        active = self.active
        if active is None:
            raise NoActiveKey()
        return active

    def prepared_signer(self) -> PreparedSigner:
        """The active key's prepared header and signature function (the issuer's)."""
        prepared = self.prepared
        if prepared is None:
            raise NoActiveKey()
        return prepared

    async def ready(self) -> None:
        """Readiness check ``signing_key``: an active key is loaded."""
        if self.active is None:
            raise NoActiveKey()

    def get_key(self, kid: str) -> VerificationKey | None:
        """The published, non-revoked key ``kid`` (the verifier's key source)."""
        return self._verifying.get(kid)

    def verify(self, unverified_token: str) -> dict[str, Any]:
        """The claims of an access token this deployment signed (RFC 9068 §4).

        The checks are authd-verifier's, the parser downstream services run, so that
        authd never accepts a token string they refuse (a padded signature, duplicate
        JSON members, a header supplying its own key, ...): canonical base64url and
        JSON, ``typ`` at+jwt, an algorithm (RS256, ES256 or EdDSA) equal to the one
        announced by the published, non-revoked key the ``kid`` names, the signature, ``iss``, typed
        ``exp`` / ``nbf`` / ``iat`` within LEEWAY_SECONDS. Any audience is accepted:
        it is the resource server's to check (RFC 7662 §2.2); the denylist is the
        revocation service's.
        """
        try:
            return dict(self._verifier.verify(unverified_token).raw)
        except TokenExpired:
            raise InvalidToken("the token has expired") from None
        except VerificationError as refused:
            # Fixed strings chosen by the verifier, never taken from the token.
            raise InvalidToken(str(refused)) from None


def _etag(body: bytes) -> str:
    """A strong validator (RFC 9110 §8.8.3): equal exactly when the bytes are."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
