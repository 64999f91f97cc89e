"""The claims of a verified access token, and the rules they must meet.

authd issues RFC 9068 access tokens (DESIGN §4): ``iss``, ``sub``, ``aud``,
``exp``, ``iat``, ``nbf``, ``jti``, ``client_id``, ``scope``; user tokens add
``sid``; MFA tokens add ``amr`` and ``acr``. :class:`ClaimRules` checks every
one of them with exact types, because a check on a value of the wrong type
("exp": "9999999999", "aud": {"x": 1}) is where lenient verifiers go wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from math import floor
from typing import Any, Final

from .delegation import actor_chain
from .errors import (
    InsufficientScope,
    InsufficientUserAuthentication,
    MalformedToken,
    TokenExpired,
    TokenNotYetValid,
    WrongAudience,
    WrongIssuer,
)

#: The one leeway, in seconds, applied to ``exp``, ``nbf`` and ``iat`` for clock
#: skew between authd and this service. Small on purpose: tokens live minutes.
DEFAULT_LEEWAY_SECONDS: Final = 30

#: A timestamp further than this from now is not a clock-skew problem but a bug or
#: an attack (``exp`` of 10**30); it is refused as malformed.
TIMESTAMP_HORIZON_SECONDS: Final = 10 * 365 * 86_400

#: The ``amr`` value (RFC 8176) authd sets after a one-time-password second factor.
MFA_METHOD: Final = "otp"


class AnyAudience:
    """The audience rule of authd's own checks (introspection, its admin API).

    authd answers for tokens of every audience it issued (RFC 7662 §2.2 leaves the
    audience to the resource server). A downstream service never uses this: a
    verifier that accepts any audience accepts tokens minted for someone else.
    ``aud`` must still be present and well-formed.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY_AUDIENCE"


#: The one :class:`AnyAudience` value.
ANY_AUDIENCE: Final = AnyAudience()


class Claims:
    """The verified claims of one access token; read-only.

    Typed accessors cover authd's claims; ``claims.raw`` is the full JSON object
    (including claims this library does not know). All values were type-checked
    before this object was made.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return f"Claims(sub={self.subject!r}, client_id={self.client_id!r}, jti={self.token_id!r})"

    def __getitem__(self, name: str) -> Any:
        return self.raw[name]

    def get(self, name: str, default: Any = None) -> Any:
        """The raw claim ``name``, or ``default``."""
        return self.raw.get(name, default)

    @property
    def subject(self) -> str:
        """``sub``: the user or client the token speaks for."""
        return str(self.raw["sub"])

    @property
    def issuer(self) -> str:
        """``iss``: the authd issuer URL."""
        return str(self.raw["iss"])

    @property
    def audience(self) -> tuple[str, ...]:
        """``aud`` as a tuple, whether the token carried a string or a list."""
        aud = self.raw["aud"]
        return (aud,) if isinstance(aud, str) else tuple(aud)

    @property
    def expires_at(self) -> int:
        """``exp``, seconds since the epoch."""
        return int(self.raw["exp"])

    @property
    def issued_at(self) -> int:
        """``iat``, seconds since the epoch."""
        return int(self.raw["iat"])

    @property
    def not_before(self) -> int:
        """``nbf``, seconds since the epoch."""
        return int(self.raw["nbf"])

    @property
    def token_id(self) -> str:
        """``jti``: unique per token; what single-token revocation names."""
        return str(self.raw["jti"])

    @property
    def client_id(self) -> str | None:
        """``client_id``: the OAuth client the token was issued to."""
        value = self.raw.get("client_id")
        return value if isinstance(value, str) else None

    @property
    def session_id(self) -> str | None:
        """``sid``: the login session (refresh family) of a user token."""
        value = self.raw.get("sid")
        return value if isinstance(value, str) else None

    @property
    def scopes(self) -> frozenset[str]:
        """``scope`` split on spaces (RFC 6749 §3.3)."""
        value = self.raw.get("scope")
        return frozenset(value.split()) if isinstance(value, str) else frozenset()

    @property
    def amr(self) -> tuple[str, ...]:
        """``amr``: how the user authenticated (RFC 8176), empty if absent."""
        value = self.raw.get("amr")
        return tuple(value) if isinstance(value, list) else ()

    @property
    def acr(self) -> str | None:
        """``acr``: the authentication context class, if any."""
        value = self.raw.get("acr")
        return value if isinstance(value, str) else None

    @property
    def actors(self) -> tuple[str, ...]:
        """The delegation chain of an exchanged token (RFC 8693 ``act``), the acting
        client first; empty for a first-hand token. See :mod:`authd_verifier.delegation`."""
        return actor_chain(self.raw)

    @property
    def dpop_thumbprint(self) -> str | None:
        """``cnf.jkt``: the RFC 7638 thumbprint of the key a DPoP-bound token needs."""
        cnf = self.raw.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        return jkt if isinstance(jkt, str) else None


class ClaimRules:
    """What a token's claims must satisfy for one verifier."""

    __slots__ = ("audiences", "issuer", "leeway", "require_mfa", "required_scopes")

    def __init__(
        self,
        issuer: str,
        audience: str | Iterable[str] | AnyAudience,
        leeway: int = DEFAULT_LEEWAY_SECONDS,
        required_scopes: Iterable[str] = (),
        require_mfa: bool = False,
    ) -> None:
        audiences: frozenset[str] | None = None
        if not isinstance(audience, AnyAudience):
            audiences = frozenset((audience,) if isinstance(audience, str) else audience)
            if not audiences or not all(audiences):
                raise ValueError("a verifier needs an issuer and at least one audience")
        if not issuer:
            raise ValueError("a verifier needs an issuer and at least one audience")
        if not 0 <= leeway <= 300:
            raise ValueError("leeway must be between 0 and 300 seconds")
        self.issuer = issuer
        self.audiences = audiences
        self.leeway = leeway
        self.required_scopes = frozenset(required_scopes)
        self.require_mfa = require_mfa

    def check(self, claims: dict[str, Any], now: float) -> None:
        """Raise the matching :class:`VerificationError` unless ``claims`` are acceptable now.

        Authentication first (well-formed, ours, for us, current), authorization
        (scopes, MFA) separately in :meth:`authorize`, so an expired token is
        reported as expired even when it also lacks a scope.
        """
        try:
            exp = claims["exp"]
            nbf = claims["nbf"]
            iat = claims["iat"]
            sub = claims["sub"]
            jti = claims["jti"]
            iss = claims["iss"]
            aud = claims["aud"]
        except KeyError:
            raise MalformedToken("the access token lacks a required claim") from None
        # Whole seconds: every bound below is an integer, for which ``k > now`` and
        # ``k > floor(now)`` agree, and int-to-int comparisons are the cheap kind.
        # (math.floor, not int(): the same for any clock reading after 1970, and
        # about half the interpreter's work on this, the first-seen token's path.)
        whole = floor(now)
        low = whole - TIMESTAMP_HORIZON_SECONDS
        high = whole + TIMESTAMP_HORIZON_SECONDS
        # `type(x) is int` refuses bool, float and str; the range refuses 10**30.
        if not (
            type(exp) is int
            and type(nbf) is int
            and type(iat) is int
            and low < iat < exp < high
            and low < nbf < exp
        ):
            raise MalformedToken("the access token has invalid time claims")
        if not (type(sub) is str and sub and type(jti) is str and jti):
            raise MalformedToken("the access token has invalid sub or jti claims")
        # Each optional claim is tested the way it usually is first: client_id and
        # scope are in every authd token, sid in user tokens, acr rarely. Called as
        # ``claims.get`` (not a bound ``get``), which the interpreter specialises.
        client_id, scope = claims.get("client_id"), claims.get("scope")
        sid, acr = claims.get("sid"), claims.get("acr")
        if not (
            (type(client_id) is str or client_id is None)
            and (type(scope) is str or scope is None)
            and (type(sid) is str or sid is None)
            and (acr is None or type(acr) is str)
        ):
            raise MalformedToken("the access token has a claim of the wrong type")
        if iss != self.issuer:
            raise WrongIssuer()
        audiences = self.audiences
        if type(aud) is str:
            if audiences is not None and aud not in audiences:
                raise WrongAudience()
        elif type(aud) is list and aud and all(type(item) is str for item in aud):
            if audiences is not None and audiences.isdisjoint(aud):
                raise WrongAudience()
        else:
            raise MalformedToken("the access token has an invalid aud claim")
        leeway = self.leeway
        if whole - leeway >= exp:
            raise TokenExpired()
        latest = whole + leeway
        if nbf > latest or iat > latest:
            raise TokenNotYetValid()

    @property
    def authorizes(self) -> bool:
        """Whether this verifier itself requires scopes or MFA of every token."""
        return bool(self.required_scopes or self.require_mfa)

    def authorize(
        self, claims: Mapping[str, Any], required_scopes: frozenset[str], require_mfa: bool
    ) -> None:
        """Raise unless the token grants ``required_scopes`` (plus the configured ones) and MFA."""
        required = (
            self.required_scopes | required_scopes if required_scopes else (self.required_scopes)
        )
        if required:
            scope = claims.get("scope")
            granted = scope.split() if isinstance(scope, str) else ()
            if not required.issubset(granted):
                raise InsufficientScope(required)
        if require_mfa or self.require_mfa:
            amr = claims.get("amr")
            if not (isinstance(amr, list) and MFA_METHOD in amr):
                raise InsufficientUserAuthentication()
