"""The revocation feed against authd's real ``/v1/revocations``: a token revoked at
authd (by jti, by session, by subject) is refused here within the polling interval,
and only that token, session or subject is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from authd_verifier import AsyncRevocationFeed, AsyncVerifier, TokenRevoked

from tests.verifier.e2e_support import AUDIENCE, PYTEST_MARKS, Authd, StartAuthd, start_authd

__all__ = ["start_authd"]
pytestmark = PYTEST_MARKS

#: The polling interval, i.e. the revocation lag the verifier is configured for.
INTERVAL = 1.0
#: Waiting one interval plus this covers a poll that started just before the revocation.
MARGIN = 0.5

Watched = Callable[[Authd], Awaitable[AsyncVerifier]]


@pytest.fixture
async def watched() -> AsyncIterator[Watched]:
    """An ``AsyncVerifier`` following authd's revocation feed every ``INTERVAL``."""
    opened: list[tuple[AsyncVerifier, AsyncRevocationFeed]] = []

    async def open_for(authd: Authd) -> AsyncVerifier:
        feed = await AsyncRevocationFeed(authd.issuer, interval=INTERVAL).start()
        assert feed.last_success is not None
        verifier = AsyncVerifier.for_issuer(authd.issuer, AUDIENCE, revocations=feed)
        opened.append((verifier, feed))
        return verifier

    yield open_for
    for verifier, feed in opened:
        await verifier.aclose()
        await feed.aclose()


async def within_the_interval() -> None:
    await asyncio.sleep(INTERVAL + MARGIN)


async def test_oauth_revoke_of_a_token_is_enforced_within_the_interval(
    start_authd: StartAuthd, watched: Watched
) -> None:
    """An access token revoked at /oauth/revoke (by jti) is refused with TokenRevoked
    one polling interval later; another token of the same client still verifies."""
    authd = start_authd()
    _, api_key = authd.service_client("orders:read")
    revoked, kept = authd.v1_token(api_key), authd.v1_token(api_key)
    verifier = await watched(authd)
    await verifier.verify(revoked)
    response = authd.http.post("/oauth/revoke", data={"token": revoked})
    assert response.status_code == 200, response.text
    await within_the_interval()
    with pytest.raises(TokenRevoked):
        await verifier.verify(revoked)
    assert (await verifier.verify(kept)).token_id


async def test_logout_revokes_the_session_within_the_interval(
    start_authd: StartAuthd, watched: Watched
) -> None:
    """After /v1/logout, the access token of that session (by sid) is refused within one
    polling interval; the same user's other session still verifies."""
    authd = start_authd()
    authd.user("two-sessions@example.com")
    leaving, staying = authd.login("two-sessions@example.com"), authd.login(
        "two-sessions@example.com")
    verifier = await watched(authd)
    assert (await verifier.verify(leaving["access_token"])).session_id
    response = authd.http.post("/v1/logout", json={"refresh_token": leaving["refresh_token"]})
    assert response.status_code == 204, response.text
    await within_the_interval()
    with pytest.raises(TokenRevoked):
        await verifier.verify(leaving["access_token"])
    assert (await verifier.verify(staying["access_token"])).session_id


async def test_revoke_subject_covers_earlier_tokens_within_the_interval(
    start_authd: StartAuthd, watched: Watched
) -> None:
    """``authd revoke subject`` refuses every earlier token of that user within one
    polling interval; another user's token and a later login still verify."""
    authd = start_authd()
    user_id = authd.user("revoked@example.com")
    authd.user("bystander@example.com")
    earlier = [authd.login("revoked@example.com")["access_token"] for _ in range(2)]
    bystander = authd.login("bystander@example.com")["access_token"]
    verifier = await watched(authd)
    for token in earlier:
        await verifier.verify(token)
    authd.cli_json("revoke", "subject", user_id)
    await within_the_interval()
    for token in earlier:
        with pytest.raises(TokenRevoked):
            await verifier.verify(token)
    assert (await verifier.verify(bystander)).subject != user_id
    # authd rounds the cut-off up to a whole second (``iat`` is whole seconds).
    await asyncio.sleep(1.0)
    later = authd.login("revoked@example.com")["access_token"]
    assert (await verifier.verify(later)).subject == user_id
