"""The attack suite (issue 7): each forged or malformed token has its own test and error."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from authd_verifier import (
    CachePolicy,
    DisallowedAlgorithm,
    InvalidSignature,
    JWKSCache,
    MalformedToken,
    TokenExpired,
    UnknownKey,
    Verifier,
    WrongAudience,
    WrongIssuer,
    WrongType,
)
from authd_verifier.testing import TokenMinter
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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


@pytest.fixture
def fetching_verifier(server: LocalServer, jwks_route: JWKSRoute) -> Iterator[Verifier]:
    """A verifier whose keys come from the local JWKS server over HTTP."""
    cache = JWKSCache(server.url + JWKS_PATH)
    with Verifier(keys=cache, issuer=ISSUER, audience=AUDIENCE) as verifier:
        yield verifier


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused_in_any_capitalisation(
    verifier: Verifier, minter: TokenMinter, alg: str
) -> None:
    """An unsigned token with alg none, however spelled, is refused as a disallowed algorithm."""
    token = f"{b64(compact(minter.header(alg=alg)))}.{b64(compact(minter.claims()))}."
    with pytest.raises(DisallowedAlgorithm):
        verifier.verify(token)


def test_hs256_signed_with_the_public_key_is_refused(
    verifier: Verifier, minter: TokenMinter
) -> None:
    """An HS256 token keyed with the RSA public key's PEM (key confusion) is refused."""
    pem = minter.private_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64(compact(minter.header(alg='HS256')))}.{b64(compact(minter.claims()))}"
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(DisallowedAlgorithm):
        verifier.verify(f"{signing_input}.{b64(signature)}")


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


def test_embedded_certificate_chain_header_is_refused(
    verifier: Verifier, minter: TokenMinter
) -> None:
    """An x5c header (a key supplied by the token) is refused."""
    with pytest.raises(MalformedToken, match="supplies its own key"):
        verifier.verify(minter.mint(header={"x5c": ["MIIB"]}))


def test_unknown_crit_header_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A crit header naming an extension we do not implement is refused (RFC 7515 §4.1.11)."""
    token = minter.mint(header={"crit": ["http://example.invalid/ext"]})
    with pytest.raises(MalformedToken, match="critical extensions"):
        verifier.verify(token)


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


def test_duplicate_claims_are_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A validly signed payload naming sub twice is refused, whichever copy a parser would keep."""
    claims = compact(minter.claims(subject="alice"))
    payload = claims[:-1] + b',"sub":"admin"}'
    token = minter.sign(compact(minter.header()), payload)
    with pytest.raises(MalformedToken, match="duplicate"):
        verifier.verify(token)


def test_duplicate_header_members_are_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A header naming alg twice is refused."""
    header = b'{"alg":"RS256","typ":"at+jwt","kid":"key-2026-01","alg":"none"}'
    token = minter.sign(header, compact(minter.claims()))
    with pytest.raises(MalformedToken, match="duplicate"):
        verifier.verify(token)


def test_string_exp_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """An exp given as a string of digits is malformed, not compared as a number."""
    token = minter.mint(exp=str(int(time.time()) + 600))
    with pytest.raises(MalformedToken):
        verifier.verify(token)


def test_absurd_exp_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """An exp of 10**30 is malformed, not a token that never expires."""
    with pytest.raises(MalformedToken):
        verifier.verify(minter.mint(exp=10**30))


def test_padded_signature_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A signature segment with '==' padding is not canonical base64url and is refused."""
    token = minter.mint()
    with pytest.raises(MalformedToken):
        verifier.verify(token + "==")


def test_tampered_payload_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """Changing the payload of a signed token breaks its signature."""
    header, _, signature = minter.mint(subject="alice").split(".")
    forged = b64(compact(minter.claims(subject="admin", scope="orders:admin")))
    with pytest.raises(InvalidSignature):
        verifier.verify(f"{header}.{forged}.{signature}")


def test_stripped_signature_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A token whose signature segment was emptied is refused as unsigned."""
    header, payload, _ = minter.mint().split(".")
    with pytest.raises(InvalidSignature):
        verifier.verify(f"{header}.{payload}.")


def test_token_without_signature_segment_is_refused(
    verifier: Verifier, minter: TokenMinter
) -> None:
    """A two-segment token (no signature part at all) is malformed."""
    header, payload, _ = minter.mint().split(".")
    with pytest.raises(MalformedToken):
        verifier.verify(f"{header}.{payload}")


def test_expired_token_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A token whose exp is past (beyond the leeway) raises TokenExpired."""
    now = int(time.time())
    token = minter.mint(iat=now - 1000, nbf=now - 1000, exp=now - 100)
    with pytest.raises(TokenExpired):
        verifier.verify(token)


def test_wrong_issuer_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A token from another issuer raises WrongIssuer even when the key is trusted."""
    with pytest.raises(WrongIssuer):
        verifier.verify(minter.mint(iss="https://evil.example"))


def test_wrong_audience_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A token meant for another service raises WrongAudience."""
    with pytest.raises(WrongAudience):
        verifier.verify(minter.mint(aud=["billing", "payments"]))


@pytest.mark.parametrize("typ", ["JWT", "id_token+jwt", "at+jwt+x"])
def test_wrong_type_is_refused(verifier: Verifier, minter: TokenMinter, typ: str) -> None:
    """A token whose typ is not at+jwt (e.g. an ID token) raises WrongType."""
    with pytest.raises(WrongType):
        verifier.verify(minter.mint(header={"typ": typ}))


def test_token_without_type_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A token with no typ header raises WrongType."""
    header = compact({"alg": "RS256", "kid": minter.kid})
    with pytest.raises(WrongType):
        verifier.verify(minter.sign(header, compact(minter.claims())))


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


def test_same_kid_signed_by_another_key_is_refused(
    verifier: Verifier, other_minter: TokenMinter
) -> None:
    """A token naming a trusted kid but signed with a different key has an invalid signature."""
    with pytest.raises(InvalidSignature):
        verifier.verify(other_minter.mint(header={"kid": "key-2026-01"}))


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


def test_non_canonical_base64_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A segment whose unused trailing bits are set (a second spelling) is refused."""
    header, payload, signature = minter.mint().split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # A 2048-bit signature is 256 bytes: 342 characters, the last carrying 2 data bits.
    assert len(signature) % 4 == 2
    last = alphabet.index(signature[-1])
    altered = signature[:-1] + alphabet[last | 1]
    assert base64.urlsafe_b64decode(altered + "==") == base64.urlsafe_b64decode(signature + "==")
    with pytest.raises(MalformedToken):
        verifier.verify(f"{header}.{payload}.{altered}")


def test_standard_base64_alphabet_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A segment spelled with '+' or '/' instead of '-' or '_' is refused."""
    token = minter.mint()
    while "-" not in token and "_" not in token:
        token = minter.mint()
    with pytest.raises(MalformedToken):
        verifier.verify(token.replace("-", "+").replace("_", "/"))


def test_algorithm_not_announced_by_the_key_is_refused(minter: TokenMinter) -> None:
    """RS384 is refused when the JWKS key announces RS256, even if the caller allows RS384."""
    verifier = minter.verifier(algorithms=["RS256", "RS384"])
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{b64(compact(minter.header(alg='RS384')))}.{b64(compact(minter.claims()))}"
    signature = minter.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA384())
    with pytest.raises(DisallowedAlgorithm):
        verifier.verify(f"{signing_input}.{b64(signature)}")


def test_hmac_and_none_cannot_be_allowed(minter: TokenMinter) -> None:
    """Configuring a verifier to accept HS256 or none fails at construction."""
    for algorithms in (["HS256"], ["none"], ["RS256", "HS512"]):
        with pytest.raises(ValueError, match="unsupported algorithms"):
            minter.verifier(algorithms=algorithms)


def test_non_ascii_token_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A token with a non-ASCII character is malformed."""
    with pytest.raises(MalformedToken):
        verifier.verify(minter.mint() + "é")


def test_nan_in_payload_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """A payload using the non-standard JSON constant NaN is refused."""
    payload = compact(minter.claims())[:-1] + b',"x":NaN}'
    with pytest.raises(MalformedToken):
        verifier.verify(minter.sign(compact(minter.header()), payload))


def test_boolean_time_claim_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """nbf: true is not an integer, even though Python's bool is an int subclass."""
    with pytest.raises(MalformedToken):
        verifier.verify(minter.mint(nbf=True))


def test_float_time_claim_is_refused(verifier: Verifier, minter: TokenMinter) -> None:
    """exp given as a float is refused: authd issues plain integers."""
    with pytest.raises(MalformedToken):
        verifier.verify(minter.mint(exp=time.time() + 600.5))
