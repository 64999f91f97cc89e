"""The attack suite (issues 7 and 16): each forged or malformed token has its own case and error.

The forgeries themselves are the catalogue in ``attacks.py``, which also runs against a
real server's introspection endpoint; here they meet authd-verifier, for a trusted key
of each algorithm authd signs with. The tests below the catalogue's need a verifier
fetching keys over HTTP or a particular configuration.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from authd_verifier import (
    CachePolicy,
    DisallowedAlgorithm,
    JWKSCache,
    MalformedToken,
    UnknownKey,
    Verifier,
)
from authd_verifier.testing import MINTABLE_ALGORITHMS, StaticJWKS, TokenMinter

from .attacks import Forgery, forgeries_for
from .conftest import AUDIENCE, ISSUER
from .local_server import JWKS_PATH, JWKSRoute, LocalServer, ManualClock


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@pytest.fixture
def verifier(minter: TokenMinter) -> Verifier:
    """A verifier trusting only the minter's key, from a static JWKS."""
    return minter.verifier()


@pytest.fixture(scope="session")
def minters() -> dict[str, tuple[TokenMinter, TokenMinter]]:
    """For each algorithm authd signs with, a trusted minter and an attacker's minter."""
    return {
        alg: (
            TokenMinter(issuer=ISSUER, audience=AUDIENCE, kid=f"trusted-{alg}", algorithm=alg),
            TokenMinter(issuer=ISSUER, audience=AUDIENCE, kid=f"attacker-{alg}", algorithm=alg),
        )
        for alg in MINTABLE_ALGORITHMS
    }


@pytest.mark.parametrize(
    ("algorithm", "forgery"),
    [
        pytest.param(alg, forgery, id=f"{alg}-{forgery.name}")
        for alg in MINTABLE_ALGORITHMS
        for forgery in forgeries_for(alg)
    ],
)
def test_forgery_is_refused_with_its_error(
    minters: dict[str, tuple[TokenMinter, TokenMinter]], algorithm: str, forgery: Forgery
) -> None:
    """Each forgery of the catalogue, against a trusted key of each algorithm, raises its error."""
    trusted, attacker = minters[algorithm]
    token = forgery.build(trusted, attacker)
    with pytest.raises(forgery.refused_as, match=forgery.match):
        trusted.verifier().verify(token)


@pytest.mark.parametrize("algorithm", MINTABLE_ALGORITHMS)
def test_the_catalogue_control_token_is_accepted(
    minters: dict[str, tuple[TokenMinter, TokenMinter]], algorithm: str
) -> None:
    """The trusted minter's own token verifies, so every refusal above is the forgery's doing."""
    trusted, _ = minters[algorithm]
    assert trusted.verifier().verify(trusted.mint(subject="alice")).subject == "alice"


def test_es256_token_naming_an_rsa_key_is_refused(
    minters: dict[str, tuple[TokenMinter, TokenMinter]],
) -> None:
    """An ES256 token whose kid is a published RSA key's is a disallowed algorithm, even
    though ES256 is allowed and an ES256 key is published beside it."""
    rsa_minter, _ = minters["RS256"]
    ec_minter, _ = minters["ES256"]
    keys = StaticJWKS({"keys": [rsa_minter.jwk(), ec_minter.jwk()]})
    verifier = Verifier(keys=keys, issuer=ISSUER, audience=AUDIENCE)
    with pytest.raises(DisallowedAlgorithm):
        verifier.verify(ec_minter.mint(header={"kid": rsa_minter.kid}))
    assert verifier.verify(ec_minter.mint()).subject == "user-1"


@pytest.fixture
def fetching_verifier(server: LocalServer, jwks_route: JWKSRoute) -> Iterator[Verifier]:
    """A verifier whose keys come from the local JWKS server over HTTP."""
    cache = JWKSCache(server.url + JWKS_PATH)
    with Verifier(keys=cache, issuer=ISSUER, audience=AUDIENCE) as verifier:
        yield verifier


@pytest.mark.parametrize(
    "kid", ["../../../etc/passwd", "x' OR '1'='1", "key; DROP TABLE keys;--", "a/b", "k" * 65, ""]
)
def test_kid_with_path_or_sql_characters_is_refused_without_a_fetch(
    fetching_verifier: Verifier, server: LocalServer, minter: TokenMinter, kid: str
) -> None:
    """A kid outside [A-Za-z0-9_-]{1,64} is malformed and never reaches the JWKS."""
    token = minter.mint(header={"kid": kid})
    with pytest.raises(MalformedToken):
        fetching_verifier.verify(token)
    assert server.requests == []


@pytest.mark.parametrize("member", ["jku", "x5u"])
def test_key_url_headers_are_refused_and_never_fetched(
    fetching_verifier: Verifier, server: LocalServer, minter: TokenMinter, member: str
) -> None:
    """A jku or x5u header pointing at an attacker's URL is refused; nothing is fetched."""
    token = minter.mint(header={member: server.url + "/attacker/keys"})
    with pytest.raises(MalformedToken, match="supplies its own key"):
        fetching_verifier.verify(token)
    assert server.requests == []


def test_embedded_jwk_header_is_refused(
    fetching_verifier: Verifier, server: LocalServer, other_minter: TokenMinter
) -> None:
    """A token carrying its own signing key in a jwk header is refused, whoever signed it."""
    token = other_minter.mint(header={"jwk": other_minter.jwk(), "kid": "key-2026-01"})
    with pytest.raises(MalformedToken, match="supplies its own key"):
        fetching_verifier.verify(token)
    assert server.requests == []


def test_one_megabyte_token_is_refused_before_parsing(
    fetching_verifier: Verifier, server: LocalServer, minter: TokenMinter
) -> None:
    """A 1 MB token is refused by the size cap before any parsing or fetching.

    The token is well formed and validly signed, so only the cap can refuse it:
    any later step would either accept it or fail with another message.
    """
    token = minter.mint(padding="x" * (1024 * 1024))
    with pytest.raises(MalformedToken, match=r"^the access token is too large$"):
        fetching_verifier.verify(token)
    assert server.requests == []


def test_token_signed_by_a_removed_key_is_refused(
    server: LocalServer, minter: TokenMinter, other_minter: TokenMinter
) -> None:
    """Once its key left the JWKS, a token signed with it raises UnknownKey (after a refetch)."""
    server.routes[JWKS_PATH] = JWKSRoute(other_minter.jwks())
    policy = CachePolicy(refetch_interval=0)
    with Verifier(
        keys=JWKSCache(server.url + JWKS_PATH, policy=policy), issuer=ISSUER, audience=AUDIENCE
    ) as verifier:
        verifier.verify(other_minter.mint())
        with pytest.raises(UnknownKey):
            verifier.verify(minter.mint())
    assert server.count(JWKS_PATH) == 2


def test_thousand_random_kids_cause_only_rate_limited_fetches(
    server: LocalServer, jwks_route: JWKSRoute, minter: TokenMinter, clock: ManualClock
) -> None:
    """1,000 tokens with random kids over 50 s cause at most one fetch per 10 s interval."""
    cache = JWKSCache(
        server.url + JWKS_PATH, policy=CachePolicy(refetch_interval=10.0), clock=clock
    )
    with Verifier(keys=cache, issuer=ISSUER, audience=AUDIENCE) as verifier:
        for _ in range(1000):
            with pytest.raises(UnknownKey):
                verifier.verify(minter.mint(header={"kid": secrets.token_urlsafe(12)}))
            clock.advance(0.05)
        verifier.verify(minter.mint())
    # The initial fetch plus one per elapsed 10 s interval (50 s in all).
    assert 2 <= server.count(JWKS_PATH) <= 1 + 5


def test_algorithm_not_announced_by_the_key_is_refused(minter: TokenMinter) -> None:
    """RS384 is refused when the JWKS key announces RS256, even if the caller allows RS384."""
    verifier = minter.verifier(algorithms=["RS256", "RS384"])
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    signing_input = f"{b64(compact(minter.header(alg='RS384')))}.{b64(compact(minter.claims()))}"
    assert isinstance(minter.private_key, rsa.RSAPrivateKey)
    signature = minter.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA384())
    with pytest.raises(DisallowedAlgorithm):
        verifier.verify(f"{signing_input}.{b64(signature)}")


def test_hmac_and_none_cannot_be_allowed(minter: TokenMinter) -> None:
    """Configuring a verifier to accept HS256 or none fails at construction."""
    for algorithms in (["HS256"], ["none"], ["RS256", "HS512"]):
        with pytest.raises(ValueError, match="unsupported algorithms"):
            minter.verifier(algorithms=algorithms)
