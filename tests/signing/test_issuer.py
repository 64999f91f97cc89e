"""The token issuer and the key ring's verify (RFC 9068, DESIGN §4)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import jwt
import pytest

from service.errors import InvalidToken
from service.signing.errors import NoActiveKey
from service.store import Database
from tests.signing.helpers import ISSUER, Signing, build


@pytest.fixture
async def signing(database: Database) -> AsyncIterator[Signing]:
    built = build(database)
    await built.rotation.ensure_keys()
    yield built
    await built.issuer.close()


async def issue(signing: Signing, **extra: object) -> str:
    issued = await signing.issuer.issue(
        subject="user-1", audience="api", scope="read write", client_id="client-1", ttl=900,
        extra=extra or None,
    )
    return issued.token


async def test_header_is_rs256_at_jwt_with_active_kid(signing: Signing) -> None:
    """The header carries alg RS256, typ at+jwt and the active key's kid."""
    header = jwt.get_unverified_header(await issue(signing))
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": signing.keys.signer().kid}


async def test_claims_follow_design(signing: Signing) -> None:
    """The token carries iss, sub, aud, exp, iat, nbf, jti, client_id and scope."""
    before = int(time.time())
    issued = await signing.issuer.issue(subject="user-1", audience="api", scope="read write",
                                        client_id="client-1", ttl=900)
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    assert claims == issued.claims
    assert claims["iss"] == ISSUER and claims["sub"] == "user-1" and claims["aud"] == "api"
    assert claims["client_id"] == "client-1" and claims["scope"] == "read write"
    assert before <= claims["iat"] == claims["nbf"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 900 == issued.expires_at
    assert claims["jti"] == issued.jti and issued.kid == signing.keys.signer().kid


async def test_jti_is_unique(signing: Signing) -> None:
    """Every token gets its own jti."""
    jtis = {jwt.decode(await issue(signing), options={"verify_signature": False})["jti"]
            for _ in range(50)}
    assert len(jtis) == 50


async def test_extra_claims_are_added(signing: Signing) -> None:
    """extra adds claims such as sid and amr."""
    claims = signing.keys.verify(await issue(signing, sid="fam-1", amr=["pwd"]))
    assert claims["sid"] == "fam-1" and claims["amr"] == ["pwd"]


async def test_extra_cannot_override_reserved_claims(signing: Signing) -> None:
    """extra may not replace iss, sub or any other claim the issuer owns."""
    with pytest.raises(ValueError, match="sub"):
        await issue(signing, sub="admin")


async def test_token_verifies_with_pyjwt_and_the_jwks(signing: Signing) -> None:
    """A token verifies with plain PyJWT against the published JWKS."""
    token = await issue(signing)
    jwk_set = jwt.PyJWKSet.from_dict(json.loads(signing.keys.jwks_body))
    key = next(k for k in jwk_set.keys if k.key_id == jwt.get_unverified_header(token)["kid"])
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="api", issuer=ISSUER)
    assert claims["sub"] == "user-1"


async def test_verify_accepts_own_token(signing: Signing) -> None:
    """verify() returns the claims of a token this issuer signed."""
    assert signing.keys.verify(await issue(signing))["client_id"] == "client-1"


async def test_verify_rejects_tampered_token(signing: Signing) -> None:
    """A token whose payload was changed fails verification."""
    header, _payload, signature = (await issue(signing)).split(".")
    forged = jwt.utils.base64url_encode(b'{"sub":"admin"}').decode()
    with pytest.raises(InvalidToken):
        signing.keys.verify(f"{header}.{forged}.{signature}")


async def test_verify_rejects_other_algorithms(signing: Signing) -> None:
    """An HS256 token made with the public key as secret is refused (alg pinned)."""
    kid = signing.keys.signer().kid
    token = jwt.encode({"iss": ISSUER, "sub": "x", "exp": int(time.time()) + 60,
                        "iat": int(time.time()), "jti": "j"}, "k" * 32, algorithm="HS256",
                       headers={"kid": kid, "typ": "at+jwt"})
    with pytest.raises(InvalidToken):
        signing.keys.verify(token)


async def test_verify_rejects_wrong_typ(signing: Signing) -> None:
    """A JWT signed by the active key but typed JWT (not at+jwt) is refused."""
    key = signing.keys.signer()
    token = jwt.encode({"iss": ISSUER, "sub": "x", "exp": int(time.time()) + 60,
                        "iat": int(time.time()), "jti": "j"}, key.private_key,
                       algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})
    with pytest.raises(InvalidToken):
        signing.keys.verify(token)


async def test_verify_rejects_wrong_issuer(signing: Signing) -> None:
    """A token of another issuer, same key, is refused."""
    key = signing.keys.signer()
    token = jwt.encode({"iss": "https://evil", "sub": "x", "exp": int(time.time()) + 60,
                        "iat": int(time.time()), "jti": "j"}, key.private_key,
                       algorithm="RS256", headers={"kid": key.kid, "typ": "at+jwt"})
    with pytest.raises(InvalidToken):
        signing.keys.verify(token)


async def test_verify_rejects_expired(signing: Signing) -> None:
    """A token past exp plus the leeway is refused as expired."""
    key = signing.keys.signer()
    now = int(time.time())
    token = jwt.encode({"iss": ISSUER, "sub": "x", "aud": "api", "exp": now - 120,
                        "iat": now - 1000, "nbf": now - 1000, "jti": "j"},
                       key.private_key, algorithm="RS256",
                       headers={"kid": key.kid, "typ": "at+jwt"})
    with pytest.raises(InvalidToken, match="expired"):
        signing.keys.verify(token)


async def test_verify_rejects_unknown_kid_and_garbage(signing: Signing) -> None:
    """Unknown kids and non-JWT strings are InvalidToken, never another error."""
    key = signing.keys.signer()
    token = jwt.encode({"iss": ISSUER}, key.private_key, algorithm="RS256",
                       headers={"kid": "nope", "typ": "at+jwt"})
    for bad in (token, "garbage", "", "a.b.c", "eyJhbGciOiJub25lIn0.e30."):
        with pytest.raises(InvalidToken):
            signing.keys.verify(bad)


async def test_no_active_key_means_503(database: Database) -> None:
    """Issuing before any key is loaded raises NoActiveKey (503), not a crash."""
    built = build(database)
    with pytest.raises(NoActiveKey) as caught:
        await built.issuer.issue(subject="s", audience="a", scope="", client_id="c", ttl=60)
    assert caught.value.status == 503
    await built.issuer.close()


def test_token_ids_are_version_4_uuids_and_distinct() -> None:
    """jti comes from a buffer of CSPRNG bytes: still UUIDv4 text, never repeated."""
    import uuid

    from service.signing.issuer import _uuid4

    ids = [_uuid4() for _ in range(2000)]  # several refills of the buffer
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_process_does_not_repeat_the_parents_token_ids() -> None:
    """The buffer is dropped in a forked child: a child and its parent draw different ids."""
    import os

    from service.signing.issuer import _uuid4

    _uuid4()  # the buffer holds unread ids now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, _uuid4().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child != _uuid4()


@pytest.mark.parametrize("claims", [
    {"iss": "http://a", "sub": 'cl_"x\\é', "aud": "https://api", "exp": 10, "iat": 5,
     "nbf": 5, "jti": "u-1", "client_id": "c\u2028\ud83d\ude00", "scope": "read write"},
    {"iss": "i", "sub": "s", "aud": "a", "exp": 2, "iat": 1, "nbf": 1, "jti": "j",
     "client_id": "c", "scope": "", "cnf": {"jkt": "t"}, "act": {"sub": "x", "act": {"sub": "y"}}},
    {"iss": "i", "sub": "s", "aud": ["a", "b"], "exp": 2, "iat": 1, "nbf": 1, "jti": "j",
     "client_id": "c", "scope": ""},
    {"iss": "i", "sub": "s", "aud": "a", "exp": True, "iat": 1, "nbf": 1.5, "jti": "j",
     "client_id": "c", "scope": ""},
    {"sub": "s", "iss": "i", "aud": "a", "exp": 2, "iat": 1, "nbf": 1, "jti": "j",
     "client_id": "c", "scope": ""},
    {"iss": "i", "sub": "s"},
])
def test_the_claims_template_writes_what_json_dumps_writes(claims: dict[str, object]) -> None:
    """The payload template is byte for byte json.dumps' compact output, escapes and
    non-ASCII included, and falls back to json.dumps for any other shape."""
    from service.signing.issuer import claims_json

    assert claims_json(claims) == json.dumps(claims, separators=(",", ":")).encode()
