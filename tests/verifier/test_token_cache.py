"""The verified-token cache: a repeated token skips the signature, not the checks that change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from authd_verifier import (
    Claims,
    InsufficientScope,
    InsufficientUserAuthentication,
    RevocationList,
    TokenExpired,
    TokenNotYetValid,
    TokenRevoked,
    UnknownKey,
    Verifier,
)
from authd_verifier.claims import DEFAULT_LEEWAY_SECONDS
from authd_verifier.testing import AsyncStaticJWKS, StaticJWKS, TokenMinter
from authd_verifier.verify import AsyncVerifier

from .conftest import AUDIENCE, ISSUER
from .local_server import ManualClock

NOW = 1_800_000_000.0
LIFETIME = 900


@pytest.fixture
def clock() -> ManualClock:
    """A hand-moved wall clock shared by the minter and the verifier."""
    return ManualClock(NOW)


@pytest.fixture
def minter(clock: ManualClock) -> TokenMinter:
    """A minter issuing 15-minute tokens on the test's clock."""
    return TokenMinter(issuer=ISSUER, audience=AUDIENCE, kid="cache-key", clock=clock)


@pytest.fixture
def keys(minter: TokenMinter) -> StaticJWKS:
    """The minter's key, in process."""
    return StaticJWKS(minter.jwks())


def make_verifier(keys: StaticJWKS, clock: ManualClock, **options: Any) -> Verifier:
    """A verifier on the test's clock and key source."""
    return Verifier(keys=keys, issuer=ISSUER, audience=AUDIENCE, clock=clock, **options)


def remember(verifier: Verifier, token: str) -> Claims:
    """Use ``token`` twice, so the verifier remembers it (it admits tokens on their second use)."""
    verifier.verify(token)
    claims = verifier.verify(token)
    assert verifier._verified.get(token) is not None
    return claims


class CountingCheck:
    """Wraps a key's signature check to count how often a signature is verified."""

    def __init__(self, keys: StaticJWKS, kid: str) -> None:
        self.calls = 0
        checks = keys.keys[kid].checks
        self._inner = checks["RS256"]
        checks["RS256"] = self

    def __call__(self, signing_input: bytes, signature: bytes) -> bool:
        self.calls += 1
        return self._inner(signing_input, signature)


def test_repeated_token_is_not_verified_again(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """From its third use on, an accepted token is accepted without a signature check."""
    verifier = make_verifier(keys, clock)
    counting = CountingCheck(keys, minter.kid)
    token = minter.mint(subject="user-1", scope="orders:read")
    subjects = [verifier.verify(token).subject for _ in range(5)]
    assert (subjects, counting.calls) == (["user-1"] * 5, 2)


def test_token_used_once_is_not_remembered(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """A token accepted once leaves no entry: only tokens that come back are kept."""
    verifier = make_verifier(keys, clock)
    verifier.verify(minter.mint())
    assert len(verifier._verified) == 0


def test_remembered_token_expires(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """A remembered token is refused as expired once exp (plus leeway) has passed."""
    verifier = make_verifier(keys, clock)
    token = minter.mint()
    remember(verifier, token)
    clock.advance(LIFETIME + DEFAULT_LEEWAY_SECONDS)
    with pytest.raises(TokenExpired):
        verifier.verify(token)


def test_remembered_token_is_checked_against_not_before(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """When the clock steps back before nbf (minus leeway), a remembered token is not valid yet."""
    verifier = make_verifier(keys, clock)
    token = minter.mint()
    remember(verifier, token)
    clock.now = NOW - DEFAULT_LEEWAY_SECONDS - 1
    with pytest.raises(TokenNotYetValid):
        verifier.verify(token)


def test_remembered_token_revoked_after_first_use_is_refused(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """A revocation learnt after a token was remembered (and hit) refuses its next use."""
    revocations = RevocationList(clock=clock)
    verifier = make_verifier(keys, clock, revocations=revocations)
    token = minter.mint()
    remember(verifier, token)
    jti = verifier.verify(token).token_id
    revocations.apply(
        [{"kind": "jti", "value": jti, "not_before": None, "expires_at": int(NOW) + LIFETIME}]
    )
    with pytest.raises(TokenRevoked):
        verifier.verify(token)


class JtiDenylist:
    """A revocation source of the caller's own, without a generation counter."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        return claims["jti"] in self.revoked


def test_revocation_source_without_generation_is_asked_on_every_hit(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """A revocation source with no generation counter is consulted on every use of a token."""
    denylist = JtiDenylist()
    verifier = make_verifier(keys, clock, revocations=denylist)
    token = minter.mint()
    remember(verifier, token)
    denylist.revoked.add(verifier.verify(token).token_id)
    with pytest.raises(TokenRevoked):
        verifier.verify(token)


def test_remembered_token_is_checked_for_the_scopes_of_each_call(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """A token remembered by a call needing no scope still needs the next call's scopes."""
    verifier = make_verifier(keys, clock)
    token = minter.mint(scope="orders:read")
    remember(verifier, token)
    with pytest.raises(InsufficientScope):
        verifier.verify(token, require_scopes={"orders:write"})


def test_remembered_token_is_checked_for_mfa(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """A remembered token without an OTP factor is refused where the call requires MFA."""
    verifier = make_verifier(keys, clock)
    token = minter.mint(amr=["pwd"])
    remember(verifier, token)
    with pytest.raises(InsufficientUserAuthentication):
        verifier.verify(token, require_mfa=True)


def test_remembered_token_of_an_unpublished_key_is_refused(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """Once its key is no longer published (revoked at authd), a remembered token is refused."""
    verifier = make_verifier(keys, clock)
    token = minter.mint()
    remember(verifier, token)
    del keys.keys[minter.kid]
    with pytest.raises(UnknownKey):
        verifier.verify(token)


def test_cache_holds_at_most_its_size(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """However many distinct tokens come back, the cache never holds more than its size."""
    verifier = make_verifier(keys, clock, token_cache_size=8)
    sizes = []
    for index in range(40):
        token = minter.mint(subject=f"user-{index}")
        verifier.verify(token)
        verifier.verify(token)
        sizes.append(len(verifier._verified))
    assert max(sizes) == 8


def test_full_cache_drops_expired_tokens_before_live_ones(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """When the cache is full, expired entries make room and every live one is kept."""
    verifier = make_verifier(keys, clock, token_cache_size=4)
    for index in range(2):
        remember(verifier, minter.mint(subject=f"old-{index}"))
    clock.advance(LIFETIME + DEFAULT_LEEWAY_SECONDS)
    live = [minter.mint(subject=f"new-{index}") for index in range(3)]
    for token in live:
        remember(verifier, token)
    counting = CountingCheck(keys, minter.kid)
    for token in live:
        verifier.verify(token)
    assert (len(verifier._verified), counting.calls) == (3, 0)


def test_zero_size_remembers_nothing(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """token_cache_size=0 turns the cache off: every use checks the signature."""
    verifier = make_verifier(keys, clock, token_cache_size=0)
    counting = CountingCheck(keys, minter.kid)
    token = minter.mint()
    for _ in range(3):
        verifier.verify(token)
    assert (counting.calls, len(verifier._verified)) == (3, 0)


def test_refused_token_is_not_remembered(
    keys: StaticJWKS, clock: ManualClock, minter: TokenMinter
) -> None:
    """A token refused on its first use leaves nothing in the cache."""
    verifier = make_verifier(keys, clock)
    with pytest.raises(TokenExpired):
        verifier.verify(minter.mint(exp=int(NOW) - 3600, iat=int(NOW) - 4000, nbf=int(NOW) - 4000))
    assert len(verifier._verified) == 0


def test_negative_size_is_refused(keys: StaticJWKS, clock: ManualClock) -> None:
    """A negative token_cache_size is a configuration error, not a silently disabled cache."""
    with pytest.raises(ValueError, match="token_cache_size"):
        make_verifier(keys, clock, token_cache_size=-1)


async def test_async_verifier_rechecks_expiry_of_remembered_tokens(
    clock: ManualClock, minter: TokenMinter
) -> None:
    """The async verifier remembers tokens too and still refuses them once expired."""
    verifier = AsyncVerifier(
        keys=AsyncStaticJWKS(minter.jwks()), issuer=ISSUER, audience=AUDIENCE, clock=clock
    )
    token = minter.mint(subject="user-9")
    subjects = [(await verifier.verify(token)).subject for _ in range(3)]
    assert (subjects, len(verifier._verified)) == (["user-9"] * 3, 1)
    clock.advance(LIFETIME + DEFAULT_LEEWAY_SECONDS)
    with pytest.raises(TokenExpired):
        await verifier.verify(token)
