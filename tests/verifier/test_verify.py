"""Verifier and AsyncVerifier: what an authd access token must satisfy to be accepted."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from authd_verifier import (
    DEFAULT_LEEWAY_SECONDS,
    AsyncJWKSCache,
    AsyncVerifier,
    InsufficientScope,
    InsufficientUserAuthentication,
    JWKSCache,
    MalformedToken,
    TokenExpired,
    TokenNotYetValid,
    VerificationError,
    Verifier,
    WrongAudience,
)
from authd_verifier.testing import TokenMinter
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from .conftest import AUDIENCE, ISSUER
from .local_server import JWKS_PATH, JWKSRoute, LocalServer


@pytest.fixture
def verifier(minter: TokenMinter) -> Verifier:
    """A verifier trusting only the minter's key, from a static JWKS."""
    return minter.verifier()


def test_valid_token_returns_its_claims(verifier: Verifier, minter: TokenMinter) -> None:
    """A well-formed token from the trusted issuer returns typed claims."""
    token = minter.mint(subject="user-42", scope="orders:read orders:write", sid="fam-1")
    claims = verifier.verify(token)
    assert claims.subject == "user-42"
    assert claims.issuer == ISSUER
    assert claims.audience == (AUDIENCE,)
    assert claims.scopes == {"orders:read", "orders:write"}
    assert claims.session_id == "fam-1"
    assert claims.client_id == "test-client"
    assert claims.expires_at - claims.issued_at == minter.lifetime


@pytest.mark.parametrize(
    "thumbprints",
    [
        {"x5t": "dGh1bWJwcmludC1zaGExLTIwLWJ5dGVz"},
        {"x5t#S256": "dGh1bWJwcmludC1zaGEyNTYtMzItYnl0ZXMtbG9uZy0tLQ"},
        {
            "x5t": "dGh1bWJwcmludC1zaGExLTIwLWJ5dGVz",
            "x5t#S256": "dGh1bWJwcmludC1zaGEyNTYtMzItYnl0ZXMtbG9uZy0tLQ",
        },
    ],
    ids=["x5t", "x5t#S256", "both"],
)
def test_certificate_thumbprint_headers_are_accepted(
    verifier: Verifier, minter: TokenMinter, thumbprints: dict[str, str]
) -> None:
    """x5t / x5t#S256 name a certificate next to kid without supplying a key: the token verifies."""
    assert verifier.verify(minter.mint(header=thumbprints, subject="user-7")).subject == "user-7"


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "Application/At+JWT"])
def test_access_token_type_spellings_are_accepted(
    verifier: Verifier, minter: TokenMinter, typ: str
) -> None:
    """typ at+jwt is compared case-insensitively, with or without application/ (RFC 9068 §4)."""
    assert verifier.verify(minter.mint(header={"typ": typ}, subject="user-8")).subject == "user-8"


@pytest.fixture
def issuer_minter(server: LocalServer) -> TokenMinter:
    """A minter whose issuer is the local server, which publishes its key."""
    local = TokenMinter(issuer=server.url, audience=AUDIENCE)
    server.routes[JWKS_PATH] = JWKSRoute(local.jwks())
    return local


def test_verifier_from_issuer_fetches_the_jwks(
    server: LocalServer, issuer_minter: TokenMinter
) -> None:
    """Verifier.for_issuer finds keys at {issuer}/.well-known/jwks.json."""
    with Verifier.for_issuer(server.url, AUDIENCE) as verifier:
        assert verifier.verify(issuer_minter.mint()).issuer == server.url
    assert server.count(JWKS_PATH) == 1


async def test_async_verifier_from_issuer_fetches_the_jwks(
    server: LocalServer, issuer_minter: TokenMinter
) -> None:
    """AsyncVerifier.for_issuer verifies against the fetched JWKS."""
    async with AsyncVerifier.for_issuer(server.url, AUDIENCE) as verifier:
        claims = await verifier.verify(issuer_minter.mint(subject="svc"))
    assert claims.subject == "svc"


async def test_async_verifier_refuses_like_the_sync_one(minter: TokenMinter) -> None:
    """AsyncVerifier raises the same exception types as Verifier."""
    with pytest.raises(WrongAudience):
        await minter.async_verifier().verify(minter.mint(aud="billing"))


def test_audience_list_containing_ours_is_accepted(verifier: Verifier, minter: TokenMinter) -> None:
    """An aud list is accepted when one of its members is this service."""
    assert verifier.verify(minter.mint(aud=["billing", AUDIENCE])).audience == ("billing", AUDIENCE)


def test_empty_audience_list_is_malformed(verifier: Verifier, minter: TokenMinter) -> None:
    """aud: [] is malformed rather than matching nothing silently."""
    with pytest.raises(MalformedToken):
        verifier.verify(minter.mint(aud=[]))


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"])
def test_each_required_claim_is_required(
    verifier: Verifier, minter: TokenMinter, claim: str
) -> None:
    """A token missing any of iss, sub, aud, exp, nbf, iat, jti is malformed."""
    with pytest.raises(MalformedToken):
        verifier.verify(minter.mint(omit=[claim]))


def test_expiry_within_leeway_is_accepted(verifier: Verifier, minter: TokenMinter) -> None:
    """A token expired by less than the leeway still verifies (clock skew)."""
    now = int(time.time())
    token = minter.mint(iat=now - 900, nbf=now - 900, exp=now - DEFAULT_LEEWAY_SECONDS // 2)
    verifier.verify(token)


def test_leeway_is_configurable(minter: TokenMinter) -> None:
    """With leeway=0 a token expired one second ago is refused."""
    now = int(time.time())
    token = minter.mint(iat=now - 900, nbf=now - 900, exp=now - 1)
    with pytest.raises(TokenExpired):
        minter.verifier(leeway=0).verify(token)


@pytest.mark.parametrize(
    ("edge", "offset", "refusal"),
    [
        ("expiry", -0.5, None),
        ("expiry", 0.0, TokenExpired),
        ("expiry", 0.5, TokenExpired),
        ("not-before", -0.5, TokenNotYetValid),
        ("not-before", 0.0, None),
        ("not-before", 0.5, None),
    ],
)
def test_time_edges_hold_for_a_fractional_clock(
    minter: TokenMinter, edge: str, offset: float, refusal: type[VerificationError] | None
) -> None:
    """A token expires at exactly exp + leeway and becomes valid at exactly nbf - leeway,
    also when the clock reads between whole seconds (claims are whole seconds)."""
    at = int(time.time()) + 60
    if edge == "expiry":
        token, clock_at = minter.mint(iat=at - 900, nbf=at - 900, exp=at), at + 5 + offset
    else:
        token, clock_at = minter.mint(iat=at - 900, nbf=at, exp=at + 900), at - 5 + offset
    verifier = minter.verifier(leeway=5, clock=lambda: clock_at)
    if refusal is None:
        assert verifier.verify(token).subject == "user-1"
    else:
        with pytest.raises(refusal):
            verifier.verify(token)


def test_future_nbf_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A token whose nbf is beyond the leeway in the future is not yet valid."""
    now = int(time.time())
    with pytest.raises(TokenNotYetValid):
        verifier.verify(minter.mint(nbf=now + 600, exp=now + 1200))


def test_future_iat_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A token issued in the future (beyond the leeway) is not yet valid."""
    now = int(time.time())
    with pytest.raises(TokenNotYetValid):
        verifier.verify(minter.mint(iat=now + 600, exp=now + 1200))


def test_exp_before_iat_is_malformed(verifier: Verifier, minter: TokenMinter) -> None:
    """A token that expires before it was issued is malformed."""
    now = int(time.time())
    with pytest.raises(MalformedToken):
        verifier.verify(minter.mint(iat=now, nbf=now - 10, exp=now - 5))


def test_non_string_scope_is_malformed(verifier: Verifier, minter: TokenMinter) -> None:
    """A scope claim that is a list instead of a space-separated string is malformed."""
    with pytest.raises(MalformedToken):
        verifier.verify(minter.encode({**minter.claims(), "scope": ["orders:read"]}))


def test_required_scope_present_is_accepted(verifier: Verifier, minter: TokenMinter) -> None:
    """require_scopes passes when every required scope is granted."""
    token = minter.mint(scope="orders:read orders:write")
    assert verifier.verify(token, require_scopes={"orders:read"}).subject == "user-1"


def test_missing_scope_is_insufficient(verifier: Verifier, minter: TokenMinter) -> None:
    """require_scopes raises InsufficientScope naming what was required."""
    with pytest.raises(InsufficientScope) as caught:
        verifier.verify(minter.mint(scope="orders:read"), require_scopes={"orders:write"})
    assert caught.value.required == {"orders:write"}


def test_scope_prefix_does_not_match(verifier: Verifier, minter: TokenMinter) -> None:
    """Scopes are compared whole: 'orders:read' does not grant 'orders'."""
    with pytest.raises(InsufficientScope):
        verifier.verify(minter.mint(scope="orders:read"), require_scopes={"orders"})


def test_verifier_wide_required_scopes_apply(minter: TokenMinter) -> None:
    """Scopes required at construction apply to every verification."""
    verifier = minter.verifier(require_scopes=["orders:read"])
    with pytest.raises(InsufficientScope):
        verifier.verify(minter.mint(scope="billing:read"))


def test_require_mfa_accepts_otp_tokens(verifier: Verifier, minter: TokenMinter) -> None:
    """require_mfa passes when amr contains otp."""
    token = minter.mint(amr=["pwd", "otp"], acr="mfa")
    assert verifier.verify(token, require_mfa=True).amr == ("pwd", "otp")


def test_require_mfa_refuses_password_only_tokens(verifier: Verifier, minter: TokenMinter) -> None:
    """require_mfa refuses a token whose amr lacks otp."""
    with pytest.raises(InsufficientUserAuthentication):
        verifier.verify(minter.mint(amr=["pwd"]), require_mfa=True)


def test_require_mfa_refuses_tokens_without_amr(minter: TokenMinter) -> None:
    """A verifier built with require_mfa refuses a token with no amr claim."""
    with pytest.raises(InsufficientUserAuthentication):
        minter.verifier(require_mfa=True).verify(minter.mint())


def test_error_messages_never_echo_the_token(verifier: Verifier, minter: TokenMinter) -> None:
    """No refusal's message contains any part of the token."""
    tokens = [
        minter.mint(aud="billing"),
        minter.mint(iss="https://evil"),
        minter.mint(exp=10**30),
        minter.mint()[:-5] + "AAAAA",
        "garbage.with.dots",
    ]
    for token in tokens:
        with pytest.raises(VerificationError) as caught:
            verifier.verify(token)
        for part in token.split("."):
            assert part not in str(caught.value)


def test_token_verifies_with_jwcrypto(minter: TokenMinter) -> None:
    """A minted token verifies with jwcrypto against the JWKS we publish (interop)."""
    token = minter.mint(subject="interop")
    key = jwcrypto_jwk.JWK(**minter.jwk())
    signed = jwcrypto_jws.JWS()
    signed.deserialize(token)
    signed.verify(key, alg="RS256")
    assert json.loads(signed.payload)["sub"] == "interop"


def test_jwcrypto_signed_token_verifies(minter: TokenMinter) -> None:
    """A token signed by jwcrypto with the same key verifies here (interop)."""
    private = jwcrypto_jwk.JWK.from_pyca(minter.private_key)
    signed = jwcrypto_jws.JWS(json.dumps(minter.claims(subject="from-jwcrypto")).encode())
    signed.add_signature(
        private, alg="RS256", protected={"alg": "RS256", "typ": "at+jwt", "kid": minter.kid}
    )
    token = signed.serialize(compact=True)
    assert minter.verifier().verify(token).subject == "from-jwcrypto"


def test_tokens_verify_across_a_key_rotation(
    server: LocalServer, minter: TokenMinter, other_minter: TokenMinter
) -> None:
    """With old and new key published, tokens of both verify, then the new one alone."""
    route = JWKSRoute({"keys": [minter.jwk(), other_minter.jwk()]})
    server.routes[JWKS_PATH] = route
    with Verifier(
        keys=JWKSCache(server.url + JWKS_PATH), issuer=ISSUER, audience=AUDIENCE
    ) as verifier:
        assert verifier.verify(minter.mint(subject="old")).subject == "old"
        assert verifier.verify(other_minter.mint(subject="new")).subject == "new"
    assert server.count(JWKS_PATH) == 1


async def test_async_verifier_with_http_jwks(
    server: LocalServer, jwks_route: JWKSRoute, minter: TokenMinter
) -> None:
    """AsyncVerifier with an AsyncJWKSCache verifies a token over real HTTP."""
    cache = AsyncJWKSCache(server.url + JWKS_PATH)
    async with AsyncVerifier(keys=cache, issuer=ISSUER, audience=AUDIENCE) as verifier:
        assert (await verifier.verify(minter.mint(subject="a"))).subject == "a"


@pytest.fixture
def many_tokens(minter: TokenMinter) -> Iterator[list[str]]:
    """A few hundred distinct tokens."""
    yield [minter.mint(subject=f"user-{index}") for index in range(200)]


def test_distinct_tokens_all_verify(verifier: Verifier, many_tokens: list[str]) -> None:
    """Header caching does not mix tokens up: each verifies to its own subject."""
    subjects = [verifier.verify(token).subject for token in many_tokens]
    assert subjects == [f"user-{index}" for index in range(200)]
