"""A bounded memory of tokens already verified, so a repeated token skips the signature.

A resource server sees each access token many times in its life: a client
reuses one for its whole 15 minutes. Everything that depends only on the
token's bytes — the compact structure, canonical base64url, the header, the
signature, the claims' shape, the issuer and the audience — gives the same
answer every time, so a token that passed them is remembered here, keyed by
the exact token string (DESIGN §7: repeated tokens at 20 times the RSA verify rate).

What can change between two uses of the same token is checked again on every
hit, in the order the full path checks it:

- the key: the token's ``kid`` must still resolve, through the verifier's key
  source, to the very key object that verified it. A key revoked at authd and
  dropped from the JWKS stops its tokens at the next lookup; a refetched key
  set is a miss, and the token takes the full path once more;
- the clock: ``exp``, ``nbf`` and ``iat`` against now with the verifier's
  leeway (the other bounds of :meth:`ClaimRules.check` only widen as time
  passes);
- revocation, when the verifier follows authd's feed. A revocation source
  with a ``generation`` counter (``RevocationList`` and the feeds) is asked
  again only when it has learnt something since this token was last found
  not revoked: entries only ever cover more tokens when added, and fewer as
  they expire. Any other source is asked on every hit;
- the caller's requirements, scopes and MFA, which may differ per call. The
  verifier's own ``require_scopes`` / ``require_mfa`` are fixed at
  construction and were met by the full path, so they need no second look.

Only tokens that passed every check are remembered, and only from their second
accepted use: the first use records the token's hash in a small doorkeeper set.
Keeping a token's claims costs memory that the allocator cannot reuse for the
next token, which measurably slows every first-seen token (about 10 % of a
verification in ``verifier/bench/bench_verify.py``); the doorkeeper keeps that
cost for tokens that come back, at the price of one more full verification per
token. A refusal is never cached, so a refused token costs the full path each
time, as it always did. A miss is exactly the full path.

The cache is bounded by a number of entries (``token_cache_size``), and so is
the doorkeeper, which starts over when full. When the cache is full, entries
that expired are dropped first and, if that frees too little, the oldest
quarter by insertion: every token has about the same lifetime, so the
oldest remembered is about the soonest to expire. An entry holds the token
string (authd's are under 1 KB; the verifier refuses more than 8 KB before
parsing) and its claims, so the default of 4096 entries stays in the low
megabytes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from itertools import islice
from typing import Any, Final, NamedTuple, Protocol, cast

from .claims import MFA_METHOD, ClaimRules, Claims
from .errors import (
    InsufficientScope,
    InsufficientUserAuthentication,
    TokenExpired,
    TokenNotYetValid,
    TokenRevoked,
)
from .keys import VerificationKey

#: How many verified tokens a verifier remembers unless told otherwise.
DEFAULT_TOKEN_CACHE_SIZE: Final = 4096


class _Revocations(Protocol):
    def is_revoked(self, claims: Mapping[str, Any]) -> bool: ...


class _CountedRevocations(_Revocations, Protocol):
    generation: int


class VerifiedToken(NamedTuple):
    """What the full path established about one token, kept for its next use.

    A tuple, not an object with ``__init__``: one is made for every first-seen
    token, on the path DESIGN §7 holds to 0.9 of the bare decode-and-verify floor.
    A hit that learns something (the revocation generation, the scope set)
    stores a new tuple under the same token.
    """

    key: VerificationKey
    claims: Claims
    #: From when to when the token is acceptable, leeway included: ``max(nbf,
    #: iat) - leeway`` and ``exp + leeway``, ints the full path type-checked.
    #: Acceptable while ``valid_from <= now < expires_at``, exactly the full
    #: path's ``nbf/iat <= now + leeway`` and ``now - leeway < exp``.
    valid_from: int
    expires_at: int
    #: The revocation source's generation when this token was last found not
    #: revoked; -1 until a hit has asked (the full path asked before the entry
    #: existed, and something may have been learnt in between).
    revocations_seen: int = -1
    #: The granted scopes as a set, made by the first hit that needs them.
    scopes: frozenset[str] | None = None


class VerifiedTokens:
    """Verified tokens by their exact string, with the re-checks a hit still owes.

    Lookups and insertions are single dict operations and take no lock; making
    room takes one and works on a snapshot of the entries. Safe to use from
    several threads, as :class:`~authd_verifier.Verifier` is.
    """

    __slots__ = (
        "_clock",
        "_entries",
        "_leeway",
        "_lock",
        "_once",
        "_revocations",
        "_rules",
        "_versioned",
        "get",
        "max_entries",
    )

    def __init__(
        self,
        *,
        max_entries: int,
        rules: ClaimRules,
        revocations: _Revocations | None,
        clock: Callable[[], float],
    ) -> None:
        if max_entries < 0:
            raise ValueError("token_cache_size must be 0 (no cache) or more")
        self.max_entries = max_entries
        self._rules = rules
        self._leeway = rules.leeway
        self._revocations = revocations
        self._versioned: _CountedRevocations | None = (
            cast(_CountedRevocations, revocations)
            if isinstance(getattr(revocations, "generation", None), int)
            else None
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, VerifiedToken] = {}
        # hash() of tokens accepted once. A collision only lets a different token
        # in at its first repeat, after it passed the full path like any other.
        self._once: set[int] = set()
        #: ``get(token)``: the remembered entry, or ``None``. Bound once: the
        #: dict is never replaced, only emptied in place.
        self.get: Callable[[str], VerifiedToken | None] = self._entries.get

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, token: str, key: VerificationKey, claims: Claims) -> None:
        """Keep ``token``, which the full path just accepted, if it was accepted before."""
        once = self._once
        digest = hash(token)  # cached on the string: the lookup computed it
        if digest not in once:
            if self.max_entries:
                if len(once) >= self.max_entries:
                    once.clear()
                once.add(digest)
            return
        once.discard(digest)
        entries = self._entries
        if len(entries) >= self.max_entries and not self._make_room():
            return
        raw, leeway = claims.raw, self._leeway
        entries[token] = VerifiedToken(
            key, claims, max(raw["nbf"], raw["iat"]) - leeway, raw["exp"] + leeway
        )

    def _make_room(self) -> bool:
        """Drop expired entries, then if need be the oldest quarter; False if size is 0."""
        if not self.max_entries:
            return False
        with self._lock:
            entries = self._entries
            if len(entries) < self.max_entries:  # another thread made room meanwhile
                return True
            now = self._clock()
            # A snapshot: other threads may insert while this one deletes.
            snapshot = list(entries.items())
            for token, entry in snapshot:
                if entry.expires_at <= now:
                    entries.pop(token, None)
            if len(entries) > self.max_entries * 3 // 4:
                for token, _ in islice(snapshot, max(1, len(snapshot) // 4)):
                    entries.pop(token, None)
        return True

    def recheck(
        self, token: str, entry: VerifiedToken, require_scopes: Iterable[str], require_mfa: bool
    ) -> Claims:
        """The remembered claims, after the checks that can change between uses."""
        # A float against int bounds decides as its whole seconds would, as on the
        # full path (ClaimRules.check compares int(now)).
        now = self._clock()
        if not entry.valid_from <= now < entry.expires_at:
            if now >= entry.expires_at:
                raise TokenExpired()
            raise TokenNotYetValid()
        claims = entry.claims
        counted = self._versioned
        if counted is not None:
            # Read before asking: an entry added meanwhile bumps it past this.
            generation = counted.generation
            if entry.revocations_seen != generation:
                if counted.is_revoked(claims.raw):
                    raise TokenRevoked()
                entry = entry._replace(revocations_seen=generation)
                self._entries[token] = entry
        elif self._revocations is not None and self._revocations.is_revoked(claims.raw):
            raise TokenRevoked()
        if require_scopes:
            granted = entry.scopes
            if granted is None:
                scope = claims.raw.get("scope")
                granted = frozenset(scope.split() if scope else ())
                self._entries[token] = entry._replace(scopes=granted)
            if not granted.issuperset(require_scopes):
                raise InsufficientScope(self._rules.required_scopes | frozenset(require_scopes))
        if require_mfa:
            amr = claims.raw.get("amr")
            if not (type(amr) is list and MFA_METHOD in amr):
                raise InsufficientUserAuthentication()
        return claims
