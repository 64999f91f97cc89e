"""Revocation: the in-memory list's semantics and the feed pollers against a real server."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from authd_verifier import (
    AsyncRevocationFeed,
    RevocationFeed,
    RevocationList,
    TokenRevoked,
)
from authd_verifier.revocation import MAX_FEED_BYTES
from authd_verifier.testing import TokenMinter

from .local_server import LocalServer, ManualClock, Reply, Request

FEED_PATH = "/v1/revocations"


def entry(kind: str, value: str, expires_at: int, not_before: int | None = None) -> dict[str, Any]:
    return {"kind": kind, "value": value, "not_before": not_before, "expires_at": expires_at}


def claims(**overrides: Any) -> dict[str, Any]:
    return {"jti": "t-1", "sub": "user-1", "iat": 1_000, "sid": "s-1", **overrides}


class Feed:
    """A revocation feed route: pages of entries keyed by cursor."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.status = 200

    def __call__(self, request: Request) -> Reply:
        if self.status != 200:
            return Reply(self.status)
        since = int(request.query.get("since", ["0"])[0])
        body = {"entries": self.entries[since:], "cursor": str(len(self.entries))}
        return Reply(200, {"Content-Type": "application/json"}, json.dumps(body).encode())


@pytest.fixture
def feed(server: LocalServer) -> Feed:
    """The server answers the revocation feed."""
    route = Feed()
    server.routes[FEED_PATH] = route
    return route


def test_jti_entry_revokes_that_token() -> None:
    """A jti entry revokes the token with that jti and no other."""
    revocations = RevocationList(clock=ManualClock(500))
    revocations.apply([entry("jti", "t-1", expires_at=2_000)])
    assert revocations.is_revoked(claims())
    assert not revocations.is_revoked(claims(jti="t-2"))


def test_sid_entry_revokes_the_session() -> None:
    """A sid entry revokes every token of that session."""
    revocations = RevocationList(clock=ManualClock(500))
    revocations.apply([entry("sid", "s-1", expires_at=2_000)])
    assert revocations.is_revoked(claims(jti="any"))
    assert not revocations.is_revoked(claims(sid="s-2"))


def test_sub_entry_revokes_tokens_issued_before_not_before() -> None:
    """A sub entry revokes that subject's tokens with iat before not_before, not later ones."""
    revocations = RevocationList(clock=ManualClock(500))
    revocations.apply([entry("sub", "user-1", expires_at=2_000, not_before=1_000)])
    assert revocations.is_revoked(claims(iat=999))
    assert not revocations.is_revoked(claims(iat=1_000))
    assert not revocations.is_revoked(claims(sub="user-2", iat=10))


def test_sub_entry_without_not_before_revokes_all_of_the_subject() -> None:
    """A sub entry with not_before null revokes every token of the subject."""
    revocations = RevocationList(clock=ManualClock(500))
    revocations.apply([entry("sub", "user-1", expires_at=2_000)])
    assert revocations.is_revoked(claims(iat=10**9))


def test_entries_are_dropped_after_expires_at() -> None:
    """An entry stops applying, and is pruned, once expires_at has passed."""
    clock = ManualClock(500)
    revocations = RevocationList(clock=clock)
    revocations.apply([entry("jti", "t-1", expires_at=600)])
    clock.advance(100)
    assert not revocations.is_revoked(claims())
    revocations.apply([])
    assert len(revocations) == 0


def test_malformed_entries_are_skipped() -> None:
    """Entries of unknown kind or wrong types are skipped; valid ones still apply."""
    revocations = RevocationList(clock=ManualClock(500))
    revocations.apply(
        [
            {"kind": "everything", "value": "x", "not_before": None, "expires_at": 900},
            entry("jti", "", expires_at=900),
            {"kind": "jti", "value": "t-1", "not_before": None, "expires_at": "900"},
            "junk",
            entry("jti", "t-9", expires_at=900),
        ]
    )
    assert len(revocations) == 1
    assert revocations.is_revoked(claims(jti="t-9"))


def test_feed_poll_follows_the_cursor(server: LocalServer, feed: Feed) -> None:
    """Each poll sends the last cursor as since and applies only what is new."""
    now = int(time.time())
    feed.entries.append(entry("jti", "t-1", expires_at=now + 900))
    with RevocationFeed(server.url, interval=60) as poller:
        assert poller.is_revoked(claims())
        feed.entries.append(entry("jti", "t-2", expires_at=now + 900))
        assert poller.poll_once()
        assert poller.is_revoked(claims(jti="t-2"))
    sinces = [request.query.get("since") for request in server.requests_to(FEED_PATH)]
    assert sinces[0] is None
    assert ["1"] in sinces
    assert sinces[-1] == ["2"]


def test_feed_failure_keeps_the_known_list(server: LocalServer, feed: Feed) -> None:
    """When the feed fails, the revocations already known keep applying."""
    feed.entries.append(entry("jti", "t-1", expires_at=int(time.time()) + 900))
    with RevocationFeed(server.url, interval=60) as poller:
        feed.status = 503
        assert not poller.poll_once()
        assert poller.is_revoked(claims())


def test_feed_answer_without_cursor_is_refused(server: LocalServer) -> None:
    """An answer lacking a cursor is refused and applies nothing."""
    body = json.dumps({"entries": [entry("jti", "t-1", expires_at=2**40)]}).encode()
    server.routes[FEED_PATH] = lambda request: Reply(200, {}, body)
    poller = RevocationFeed(server.url, interval=60)
    assert not poller.poll_once()
    assert not poller.is_revoked(claims())
    poller.close()


def oversized_feed(server: LocalServer) -> bytes:
    """Serve a feed answer three times the cap: a buffering client would read all of it."""
    body = b'{"entries": [], "cursor": "' + b"x" * (3 * MAX_FEED_BYTES) + b'"}'
    server.routes[FEED_PATH] = lambda request: Reply(200, {}, body)
    return body


def test_oversized_feed_answer_is_refused_unread(server: LocalServer) -> None:
    """A feed answer over the cap fails the poll (no exception) and is not read to the end."""
    oversized_feed(server)
    with RevocationFeed(server.url, interval=60) as poller:
        assert poller.last_success is None
        assert not poller.poll_once()
        assert poller.cursor is None
    assert not server.wait_for_reply(FEED_PATH).complete


async def test_async_oversized_feed_answer_is_refused_unread(server: LocalServer) -> None:
    """The async feed refuses an oversized answer the same way, without reading all of it."""
    oversized_feed(server)
    async with AsyncRevocationFeed(server.url, interval=60) as poller:
        assert poller.last_success is None
        assert not await poller.poll_once()
        assert poller.cursor is None
    sent = await asyncio.to_thread(server.wait_for_reply, FEED_PATH)
    assert not sent.complete


def test_verifier_rejects_a_revoked_token(
    server: LocalServer, feed: Feed, minter: TokenMinter
) -> None:
    """A verifier given the feed raises TokenRevoked for a listed jti."""
    token = minter.mint()
    jti = minter.verifier().verify(token).token_id
    feed.entries.append(entry("jti", jti, expires_at=int(time.time()) + 900))
    with RevocationFeed(server.url, interval=60) as poller:
        with pytest.raises(TokenRevoked):
            minter.verifier(revocations=poller).verify(token)
        assert minter.verifier(revocations=poller).verify(minter.mint()).subject == "user-1"


def test_verifier_rejects_tokens_of_a_revoked_subject(
    server: LocalServer, feed: Feed, minter: TokenMinter
) -> None:
    """After 'revoke everything of a subject', that subject's earlier tokens are refused."""
    now = int(time.time())
    token = minter.mint(subject="mallory", iat=now - 60, nbf=now - 60)
    feed.entries.append(entry("sub", "mallory", expires_at=now + 900, not_before=now))
    with RevocationFeed(server.url, interval=60) as poller, pytest.raises(TokenRevoked):
        minter.verifier(revocations=poller).verify(token)


async def test_async_feed_applies_revocations_within_the_interval(
    server: LocalServer, feed: Feed, minter: TokenMinter
) -> None:
    """A revocation published after start is enforced within about one polling interval."""
    token = minter.mint(sid="session-7")
    async with AsyncRevocationFeed(server.url, interval=0.05) as poller:
        verifier = minter.async_verifier(revocations=poller)
        await verifier.verify(token)
        feed.entries.append(entry("sid", "session-7", expires_at=int(time.time()) + 900))
        published = time.monotonic()
        while True:
            try:
                await verifier.verify(token)
            except TokenRevoked:
                break
            assert time.monotonic() - published < 2.0
            await asyncio.sleep(0.01)


def test_plain_http_feed_is_refused_for_remote_hosts() -> None:
    """A non-loopback http:// feed URL is refused unless explicitly allowed."""
    with pytest.raises(ValueError, match="https"):
        RevocationFeed("http://authd.example.com")
