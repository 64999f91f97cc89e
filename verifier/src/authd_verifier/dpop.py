"""DPoP proofs (RFC 9449): the checks a resource server and authd's token endpoint
both run, and the key binding of an access token (``cnf.jkt``).

A proof is a JWT the client signs with its own key pair for one HTTP request. What
makes it worth anything is checked here, every item explicitly (RFC 9449 §4.3):

- header ``typ`` ``dpop+jwt``; ``alg`` on the caller's asymmetric allow-list and
  matching the key; ``jwk`` a *public* key (a private member is refused, never used);
- the signature by that ``jwk``;
- ``htm`` equal to the request's method, ``htu`` to its URL without query and
  fragment, both normalised (scheme and host case, default port, empty path);
- ``iat`` within ``max_age`` seconds in the past (``leeway`` for the future);
- ``jti`` not seen before within that window (a :class:`ReplayCache`);
- on a resource request, ``ath`` equal to the hash of the access token presented,
  and the proof key's RFC 7638 thumbprint equal to the token's ``cnf.jkt``.

Messages are fixed strings: nothing from the proof or the token is echoed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import jwt

from .errors import VerificationError

#: The asymmetric algorithms a proof may use unless the caller narrows the list.
DEFAULT_DPOP_ALGORITHMS: Final = ("ES256", "ES384", "EdDSA", "PS256", "RS256")
#: Symmetric and unsigned algorithms can never be allowed: the key is the client's.
_NEVER: Final = frozenset({"none", "HS256", "HS384", "HS512"})
#: A proof older than this (``iat``) is stale; a small window, per RFC 9449 §11.1.
DEFAULT_PROOF_MAX_AGE: Final = 60
#: How far in the future ``iat`` may lie (client clock ahead of ours).
DEFAULT_PROOF_LEEWAY: Final = 5
MAX_PROOF_BYTES: Final = 4096
_MAX_JTI: Final = 256
_CURVES: Final = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
# Members that make a JWK private (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# RFC 7638 §3.2: the required members of each key type, the only ones hashed.
_THUMBPRINT_MEMBERS: Final = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class InvalidDPoPProof(VerificationError):
    """The DPoP proof is missing, malformed, stale, replayed or for another request."""

    error_code = "invalid_dpop_proof"
    default_message = "the DPoP proof is invalid"


class DPoPBindingMismatch(VerificationError):
    """The token is bound to a key (``cnf.jkt``) other than the proof's, or is bound
    and was presented without a proof (as ``Bearer``): refused as ``invalid_token``."""

    default_message = "the access token is bound to another key or needs a DPoP proof"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url (``cnf.jkt``)."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or not all(isinstance(jwk.get(m), str) for m in members):
        raise InvalidDPoPProof("the DPoP proof key is not a supported public key")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def access_token_hash(access_token: str) -> str:
    """``ath`` (RFC 9449 §4.2): base64url of the SHA-256 of the token's ASCII."""
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def normalize_htu(url: str) -> str | None:
    """The URL without query and fragment, scheme and host lower-cased, default port
    dropped, an empty path as ``/`` (RFC 9449 §4.3 item 9, RFC 3986 §6.2.2-3);
    None when it is not an absolute http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def check_dpop_algorithms(algorithms: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(algorithms)
    if not chosen or chosen & _NEVER:
        raise ValueError("DPoP algorithms must be a non-empty list of asymmetric algorithms")
    unknown = chosen - set(jwt.algorithms.get_default_algorithms())
    if unknown:
        raise ValueError(f"unsupported DPoP algorithms: {sorted(unknown)}")
    return chosen


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """A proof whose signature, key, request and age were checked (not yet its jti)."""

    jkt: str
    jti: str
    iat: int
    nonce: str | None


class ReplayCache(Protocol):
    """Remembers proof ``jti`` values for as long as their proofs could be accepted."""

    def first_use(self, key: str, ttl: float) -> bool:
        """True the first time ``key`` is offered within ``ttl`` seconds, else False."""
        ...


class MemoryReplayCache:
    """An in-process :class:`ReplayCache`, bounded: past ``max_entries`` the oldest
    entries go first (a proof so old is stale by ``iat`` anyway when the bound is
    larger than the proofs one window sees). One process only: replicas of a
    resource server behind a load balancer need a shared cache."""

    def __init__(self, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._entries: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()

    def first_use(self, key: str, ttl: float) -> bool:
        now = self._clock()
        with self._lock:
            while self._entries:
                oldest, expires = next(iter(self._entries.items()))
                if expires > now and len(self._entries) < self._max:
                    break
                del self._entries[oldest]
            known = self._entries.get(key)
            if known is not None and known > now:
                return False
            self._entries[key] = now + ttl
            self._entries.move_to_end(key)
            return True


class ProofChecker:
    """Parses and checks a proof against one request (everything but the ``jti``
    replay check, whose store differs between callers)."""

    def __init__(
        self,
        *,
        algorithms: Iterable[str] = DEFAULT_DPOP_ALGORITHMS,
        max_age: int = DEFAULT_PROOF_MAX_AGE,
        leeway: int = DEFAULT_PROOF_LEEWAY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.algorithms = check_dpop_algorithms(algorithms)
        if not 1 <= max_age <= 600 or not 0 <= leeway <= 60:
            raise ValueError("max_age must be 1-600 s and leeway 0-60 s")
        self.max_age = max_age
        self.leeway = leeway
        self._clock = clock

    @property
    def replay_window(self) -> float:
        """How long a proof's ``jti`` must be remembered."""
        return float(self.max_age + self.leeway)

    def check(
        self, unverified_proof: str, *, method: str, url: str, access_token: str | None = None
    ) -> DPoPProof:
        if not unverified_proof or len(unverified_proof) > MAX_PROOF_BYTES:
            raise InvalidDPoPProof("the DPoP proof is missing or too large")
        try:
            header = jwt.get_unverified_header(unverified_proof)
        except jwt.InvalidTokenError:
            raise InvalidDPoPProof("the DPoP proof is not a JWT") from None
        if str(header.get("typ", "")).lower() != "dpop+jwt":
            raise InvalidDPoPProof("the DPoP proof's typ is not dpop+jwt")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidDPoPProof("the DPoP proof's alg is not accepted")
        unverified_jwk = header.get("jwk")
        if not isinstance(unverified_jwk, dict):
            raise InvalidDPoPProof("the DPoP proof carries no jwk")
        if _PRIVATE_MEMBERS.intersection(unverified_jwk):
            raise InvalidDPoPProof("the DPoP proof's jwk holds private key material")
        curve = _CURVES.get(alg)
        if curve is not None and unverified_jwk.get("crv") != curve:
            raise InvalidDPoPProof("the DPoP proof's key does not match its alg")
        jkt = jwk_thumbprint(unverified_jwk)
        try:
            key = jwt.PyJWK(unverified_jwk, algorithm=alg)
            claims: dict[str, Any] = jwt.decode(
                unverified_proof, key.key, algorithms=[alg],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "verify_aud": False, "verify_iss": False},
            )
        except (jwt.PyJWKError, jwt.InvalidTokenError, ValueError, TypeError):
            raise InvalidDPoPProof("the DPoP proof's signature does not verify") from None
        return self._claims(claims, jkt, method, url, access_token)

    def _claims(self, claims: dict[str, Any], jkt: str, method: str, url: str,
                access_token: str | None) -> DPoPProof:
        jti, htm, htu, iat = claims.get("jti"), claims.get("htm"), claims.get("htu"), claims.get(
            "iat")
        if not (isinstance(jti, str) and 0 < len(jti) <= _MAX_JTI):
            raise InvalidDPoPProof("the DPoP proof lacks a valid jti")
        if htm != method.upper():
            raise InvalidDPoPProof("the DPoP proof is for another HTTP method")
        expected = normalize_htu(url)
        if not isinstance(htu, str) or expected is None or normalize_htu(htu) != expected:
            raise InvalidDPoPProof("the DPoP proof is for another URL")
        if type(iat) is not int:
            raise InvalidDPoPProof("the DPoP proof lacks a valid iat")
        now = self._clock()
        if iat > now + self.leeway or iat < now - self.max_age:
            raise InvalidDPoPProof("the DPoP proof's iat is outside the accepted window")
        if access_token is not None and claims.get("ath") != access_token_hash(access_token):
            raise InvalidDPoPProof("the DPoP proof's ath does not match the access token")
        nonce = claims.get("nonce")
        if nonce is not None and not isinstance(nonce, str):
            raise InvalidDPoPProof("the DPoP proof's nonce is not a string")
        return DPoPProof(jkt=jkt, jti=jti, iat=iat, nonce=nonce)


def replay_key(proof: DPoPProof, url: str) -> str:
    """What a replay cache remembers: the proof key and jti (a jti is the client's
    choice, unique only per key) for one URL."""
    return hashlib.sha256(f"{proof.jkt}\x00{proof.jti}\x00{normalize_htu(url)}".encode()
                          ).hexdigest()


def bound_thumbprint(claims: Mapping[str, Any]) -> str | None:
    """``cnf.jkt`` of verified claims: the key the token is bound to, if any."""
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str) or not jkt:
        # A cnf we cannot read binds the token to something we cannot check.
        raise DPoPBindingMismatch("the access token's cnf claim is not understood")
    return jkt


class DPoPVerifier:
    """A resource server's DPoP check (RFC 9449 §7): the proof sent with a token
    presented as ``Authorization: DPoP <token>``.

    Use :meth:`check_presentation` after the token itself verified (signature,
    claims, revocation); see :class:`~authd_verifier.middleware.BearerAuthMiddleware`
    (``dpop=``) for the ASGI form.
    """

    def __init__(
        self,
        *,
        replay: ReplayCache | None = None,
        algorithms: Iterable[str] = DEFAULT_DPOP_ALGORITHMS,
        max_age: int = DEFAULT_PROOF_MAX_AGE,
        leeway: int = DEFAULT_PROOF_LEEWAY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.proofs = ProofChecker(algorithms=algorithms, max_age=max_age, leeway=leeway,
                                   clock=clock)
        self.replay: ReplayCache = replay if replay is not None else MemoryReplayCache()

    @property
    def algorithms(self) -> frozenset[str]:
        return self.proofs.algorithms

    def check_presentation(
        self, claims: Mapping[str, Any], access_token: str, unverified_proof: str | None,
        *, method: str, url: str,
    ) -> DPoPProof:
        """The proof for this request with this token, by the key the token is bound to.

        A token without ``cnf.jkt`` sent as DPoP is refused too: the client claims a
        binding the token does not carry (RFC 9449 §7.1)."""
        jkt = bound_thumbprint(claims)
        if jkt is None:
            raise DPoPBindingMismatch("the access token is not DPoP-bound")
        if unverified_proof is None:
            raise InvalidDPoPProof("a DPoP proof is required")
        proof = self.proofs.check(unverified_proof, method=method, url=url,
                                  access_token=access_token)
        if proof.jkt != jkt:
            raise DPoPBindingMismatch("the DPoP proof is signed by another key")
        if not self.replay.first_use(replay_key(proof, url), self.proofs.replay_window):
            raise InvalidDPoPProof("the DPoP proof was used before")
        return proof


def refuse_bound_bearer(claims: Mapping[str, Any]) -> None:
    """RFC 9449 §7.2: a DPoP-bound token presented as ``Bearer`` is refused."""
    if bound_thumbprint(claims) is not None:
        raise DPoPBindingMismatch("a DPoP-bound access token must be presented with DPoP")
