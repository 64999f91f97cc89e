"""Real authd tokens from every grant verify with the library (sync and async), user
tokens carry their session, MFA is enforceable, and another JOSE library agrees."""

from __future__ import annotations

import json

import httpx
import pytest
from authd_verifier import (
    AsyncVerifier,
    InsufficientUserAuthentication,
    Verifier,
)
from jwcrypto import jwk, jwt

from tests.verifier.e2e_support import AUDIENCE, PYTEST_MARKS, StartAuthd, start_authd

__all__ = ["start_authd"]
pytestmark = PYTEST_MARKS


def test_client_credentials_token_verifies_with_verifier_for_issuer(
    start_authd: StartAuthd,
) -> None:
    """A client_credentials token from /oauth/token verifies with the sync
    ``Verifier.for_issuer`` and carries the client and its scopes."""
    authd = start_authd()
    client_id, api_key = authd.service_client("orders:read orders:write")
    token = authd.client_credentials(client_id, api_key, scope="orders:read")
    with Verifier.for_issuer(authd.issuer, AUDIENCE) as verifier:
        claims = verifier.verify(token, require_scopes={"orders:read"})
    assert claims.issuer == authd.issuer and claims.audience == (AUDIENCE,)
    assert claims.subject == client_id and claims.client_id == client_id
    assert claims.scopes == {"orders:read"} and claims.session_id is None


async def test_v1_token_verifies_with_async_verifier(start_authd: StartAuthd) -> None:
    """An API-key exchange token from /v1/token verifies with ``AsyncVerifier.for_issuer``."""
    authd = start_authd()
    client_id, api_key = authd.service_client("orders:read")
    token = authd.v1_token(api_key)
    async with AsyncVerifier.for_issuer(authd.issuer, AUDIENCE) as verifier:
        claims = await verifier.verify(token, require_scopes=["orders:read"])
    assert claims.client_id == client_id and claims.scopes == {"orders:read"}


async def test_login_token_verifies_and_carries_the_session(start_authd: StartAuthd) -> None:
    """A /v1/login access token verifies (sync and async) with the user as subject and
    the login session as ``sid``."""
    authd = start_authd()
    user_id = authd.user("reader@example.com")
    token = authd.login("reader@example.com")["access_token"]
    async with AsyncVerifier.for_issuer(authd.issuer, AUDIENCE) as verifier:
        async_claims = await verifier.verify(token)
    with Verifier.for_issuer(authd.issuer, AUDIENCE) as sync_verifier:
        sync_claims = sync_verifier.verify(token)
    assert async_claims.raw == sync_claims.raw
    assert async_claims.subject == user_id
    assert async_claims.session_id is not None and async_claims.session_id.startswith("sid_")


async def test_mfa_login_token_passes_require_mfa(start_authd: StartAuthd) -> None:
    """A token from the TOTP second step (/v1/login/mfa) passes ``require_mfa``."""
    authd = start_authd()
    user = authd.enrol_totp("two-factor@example.com")
    token = authd.mfa_login(user)["access_token"]
    async with AsyncVerifier.for_issuer(authd.issuer, AUDIENCE) as verifier:
        claims = await verifier.verify(token, require_mfa=True)
    assert "otp" in claims.amr and claims.acr == "aal2" and claims.subject == user.user_id


async def test_password_only_token_fails_require_mfa(start_authd: StartAuthd) -> None:
    """A password-only login token verifies, but with ``require_mfa`` it is refused with
    ``InsufficientUserAuthentication``."""
    authd = start_authd()
    authd.user("password-only@example.com")
    token = authd.login("password-only@example.com")["access_token"]
    async with AsyncVerifier.for_issuer(authd.issuer, AUDIENCE) as verifier:
        assert (await verifier.verify(token)).amr == ("pwd",)
        with pytest.raises(InsufficientUserAuthentication):
            await verifier.verify(token, require_mfa=True)


def test_jwcrypto_verifies_a_real_token_against_the_real_jwks(start_authd: StartAuthd) -> None:
    """jwcrypto, given only authd's published JWKS, verifies an authd token and reads
    the same claims as this library."""
    authd = start_authd()
    _, api_key = authd.service_client("orders:read")
    token = authd.v1_token(api_key)
    key_set = jwk.JWKSet.from_json(httpx.get(f"{authd.issuer}/.well-known/jwks.json").text)
    checked = jwt.JWT(
        jwt=token, key=key_set, algs=["RS256"], expected_type="JWS",
        check_claims={"iss": authd.issuer, "aud": AUDIENCE, "exp": None},
    )
    with Verifier.for_issuer(authd.issuer, AUDIENCE) as verifier:
        ours = verifier.verify(token)
    assert checked.token.jose_header["typ"] == "at+jwt"
    assert json.loads(checked.claims) == dict(ours.raw)
