"""DPoP proof checks (RFC 9449 §4.3) of authd_verifier.dpop, one refusal per check,
and the binding of a token to its key (§7)."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from authd_verifier.dpop import (
    DPoPBindingMismatch,
    DPoPVerifier,
    InvalidDPoPProof,
    MemoryReplayCache,
    ProofChecker,
    access_token_hash,
    b64url,
    jwk_thumbprint,
    normalize_htu,
    refuse_bound_bearer,
)
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.support.dpop import DPoPKey

URL = "https://api.example.test/orders"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"


def check(proof: str, **kw: Any) -> Any:
    options: dict[str, Any] = {"method": "GET", "url": URL, **kw}
    return ProofChecker().check(proof, **options)


def refused(proof: str, **kw: Any) -> None:
    with pytest.raises(InvalidDPoPProof):
        check(proof, **kw)


def test_a_well_formed_proof_yields_the_key_thumbprint() -> None:
    """A fresh ES256 proof for this request passes and names its key's thumbprint."""
    key = DPoPKey()
    assert check(key.proof("GET", URL)).jkt == key.thumbprint


def test_an_eddsa_proof_is_accepted() -> None:
    """Ed25519 keys (OKP) are among the default algorithms."""
    key = DPoPKey("EdDSA")
    assert check(key.proof("GET", URL)).jkt == key.thumbprint


def test_the_thumbprint_is_rfc_7638() -> None:
    """The RFC 7638 §3.1 example key hashes to the RFC's thumbprint."""
    jwk = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29", "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YG"
        "jQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt"
        "-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDK"
        "gw")}
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_another_typ_is_refused() -> None:
    """typ must be dpop+jwt."""
    refused(DPoPKey().proof("GET", URL, header={"typ": "JWT"}))


def test_an_algorithm_outside_the_list_is_refused() -> None:
    """A proof signed with HS256 (a symmetric key) is refused."""
    key = DPoPKey()
    forged = jwt.encode({"jti": "j", "htm": "GET", "htu": URL, "iat": int(time.time())},
                        "secret-secret-secret-secret-secret!", algorithm="HS256",
                        headers={"typ": "dpop+jwt", "jwk": key.public_jwk})
    refused(forged)


def test_a_symmetric_algorithm_cannot_be_allowed() -> None:
    """Configuring HS256 as a DPoP algorithm is an error."""
    with pytest.raises(ValueError, match="asymmetric"):
        ProofChecker(algorithms=["ES256", "HS256"])


def test_a_private_jwk_is_refused() -> None:
    """A jwk with the private member d is refused."""
    key = DPoPKey()
    refused(key.proof("GET", URL, header={"jwk": {**key.public_jwk, "d": "AAAA"}}))


def test_a_proof_without_jwk_is_refused() -> None:
    """The header must carry the public key."""
    key = DPoPKey()
    proof = jwt.encode({"jti": "j", "htm": "GET", "htu": URL, "iat": int(time.time())},
                       key.private, algorithm="ES256", headers={"typ": "dpop+jwt"})
    refused(proof)


def test_a_key_of_another_curve_than_the_alg_is_refused() -> None:
    """ES256 named with a P-384 key is refused."""
    private = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    header = b64url(json.dumps({"alg": "ES256", "typ": "dpop+jwt", "jwk": jwk}).encode())
    payload = b64url(json.dumps(
        {"jti": "j", "htm": "GET", "htu": URL, "iat": int(time.time())}).encode())
    r, s = decode_dss_signature(
        private.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256())))
    refused(f"{header}.{payload}.{b64url(r.to_bytes(48, 'big') + s.to_bytes(48, 'big'))}")


def test_a_signature_by_another_key_is_refused() -> None:
    """The jwk of one key on a proof signed by another does not verify."""
    signer, shown = DPoPKey(), DPoPKey()
    refused(signer.proof("GET", URL, header={"jwk": shown.public_jwk}))


def test_an_rsa_proof_is_accepted() -> None:
    """RS256 proofs by an RSA key pass."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    proof = jwt.encode({"jti": "j", "htm": "GET", "htu": URL, "iat": int(time.time())},
                       private, algorithm="RS256", headers={"typ": "dpop+jwt", "jwk": jwk})
    assert check(proof).jkt == jwk_thumbprint(jwk)


def test_another_method_is_refused() -> None:
    """htm must equal the request's method."""
    refused(DPoPKey().proof("POST", URL))


def test_another_url_is_refused() -> None:
    """htu must equal the request's URL."""
    refused(DPoPKey().proof("GET", "https://api.example.test/refunds"))


def test_the_url_is_compared_normalised() -> None:
    """Scheme and host case, the default port and query/fragment do not matter."""
    key = DPoPKey()
    assert check(key.proof("GET", "HTTPS://API.example.test:443/orders?x=1#f"))


def test_normalisation_keeps_the_path_case_and_other_ports() -> None:
    """The path is case-sensitive and a non-default port is kept."""
    assert normalize_htu("https://a.test/Orders") != normalize_htu("https://a.test/orders")
    assert normalize_htu("https://a.test:8443/x") == "https://a.test:8443/x"
    assert normalize_htu("ftp://a.test/x") is None


def test_a_stale_iat_is_refused() -> None:
    """A proof older than max_age is refused."""
    refused(DPoPKey().proof("GET", URL, iat=time.time() - 120))


def test_a_future_iat_is_refused() -> None:
    """A proof from further in the future than the leeway is refused."""
    refused(DPoPKey().proof("GET", URL, iat=time.time() + 60))


def test_a_missing_jti_is_refused() -> None:
    """jti is required."""
    refused(DPoPKey().proof("GET", URL, drop=("jti",)))


def test_a_string_iat_is_refused() -> None:
    """iat must be a number of seconds, not a string."""
    refused(DPoPKey().proof("GET", URL, claims={"iat": str(int(time.time()))}))


def test_a_wrong_ath_is_refused() -> None:
    """With an access token, ath must be its hash."""
    refused(DPoPKey().proof("GET", URL, access_token="other"), access_token=TOKEN)


def test_a_missing_ath_is_refused() -> None:
    """With an access token, a proof without ath is refused."""
    refused(DPoPKey().proof("GET", URL), access_token=TOKEN)


def test_the_right_ath_passes() -> None:
    """ath = base64url(SHA-256(token)) passes."""
    key = DPoPKey()
    assert check(key.proof("GET", URL, access_token=TOKEN), access_token=TOKEN)
    assert access_token_hash(TOKEN) != access_token_hash(TOKEN + "x")


def test_garbage_is_refused() -> None:
    """Something that is not a JWT is refused, not an exception of another type."""
    refused("garbage")
    refused("")


# ---- the resource server's check ------------------------------------------------------


def _claims(jkt: str | None) -> dict[str, Any]:
    return {"sub": "u"} if jkt is None else {"sub": "u", "cnf": {"jkt": jkt}}


def test_a_presentation_by_the_bound_key_passes() -> None:
    """The proof key equal to cnf.jkt, with ath, passes once."""
    key = DPoPKey()
    verifier = DPoPVerifier()
    proof = key.proof("GET", URL, access_token=TOKEN)
    assert verifier.check_presentation(_claims(key.thumbprint), TOKEN, proof, method="GET",
                                       url=URL).jkt == key.thumbprint


def test_a_replayed_presentation_is_refused() -> None:
    """The same proof twice is refused the second time."""
    key = DPoPKey()
    verifier = DPoPVerifier()
    proof = key.proof("GET", URL, access_token=TOKEN)
    verifier.check_presentation(_claims(key.thumbprint), TOKEN, proof, method="GET", url=URL)
    with pytest.raises(InvalidDPoPProof, match="used before"):
        verifier.check_presentation(_claims(key.thumbprint), TOKEN, proof, method="GET",
                                    url=URL)


def test_a_presentation_by_another_key_is_refused() -> None:
    """A proof by a key other than cnf.jkt is a binding mismatch."""
    with pytest.raises(DPoPBindingMismatch):
        DPoPVerifier().check_presentation(
            _claims(DPoPKey().thumbprint), TOKEN, DPoPKey().proof("GET", URL, access_token=TOKEN),
            method="GET", url=URL)


def test_an_unbound_token_presented_as_dpop_is_refused() -> None:
    """A token without cnf cannot be presented with the DPoP scheme."""
    key = DPoPKey()
    with pytest.raises(DPoPBindingMismatch):
        DPoPVerifier().check_presentation(_claims(None), TOKEN,
                                          key.proof("GET", URL, access_token=TOKEN),
                                          method="GET", url=URL)


def test_a_bound_token_as_bearer_is_refused() -> None:
    """refuse_bound_bearer refuses a token carrying cnf.jkt and lets others pass."""
    with pytest.raises(DPoPBindingMismatch):
        refuse_bound_bearer(_claims("abc"))
    refuse_bound_bearer(_claims(None))


def test_the_replay_cache_forgets_after_the_window() -> None:
    """An entry is refused within its ttl and accepted again after it."""
    now = [0.0]
    cache = MemoryReplayCache(clock=lambda: now[0])
    assert cache.first_use("k", 10) and not cache.first_use("k", 10)
    now[0] = 11.0
    assert cache.first_use("k", 10)


def test_the_replay_cache_is_bounded() -> None:
    """Past max_entries the oldest entries are dropped."""
    cache = MemoryReplayCache(max_entries=2)
    for key in ("a", "b", "c"):
        assert cache.first_use(key, 60)
    assert cache.first_use("a", 60)
