"""Console sessions and operator roles on both storage backends, with a clock the
test turns: the idle and absolute timeouts, the pending stages' short life, the CSRF
binding, the one-time display, the role. The password check, the second factor and
the denylist are small stand-ins here (the e2e tests use the real ones)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from service.audit.log import AuditLog
from service.audit.store import AuditStore
from service.console.errors import CsrfRejected, FreshCodeRequired, NotOperator, SignInRequired
from service.console.sessions import (
    ACTIVE,
    ENROL,
    PENDING_LIFETIME,
    TOTP,
    ConsoleSession,
    ConsoleSessions,
)
from service.console.store import ADMIN, SqlConsoleStore
from service.mfa.errors import InvalidCode
from service.mfa.factors import Enrolment
from service.sessions.store import SqlUserStore
from service.signing.kek import Kek
from service.store import Database

IDLE = 900.0
ABSOLUTE = 8 * 3600.0


@dataclass
class Account:
    id: str
    email: str


@dataclass
class Passwords:
    users: dict[str, str]

    async def verify_password(self, unverified_email: str, unverified_password: str, *,
                              ip: str, user_agent: str | None) -> Account:
        return Account(self.users[unverified_email], unverified_email)


@dataclass
class Factors:
    enrolled_users: set[str]
    code: str = "123456"

    async def enrolled(self, user_id: str) -> bool:
        return user_id in self.enrolled_users

    async def enrol(self, user_id: str, account: str, *, ip: str | None) -> Enrolment:
        return Enrolment("SECRET", "otpauth://totp/x")

    async def confirm(self, user_id: str, unverified_code: str, *, ip: str) -> list[str]:
        await self.verify(user_id, code=unverified_code, recovery_code=None, ip=ip,
                          purpose="enrol")
        self.enrolled_users.add(user_id)
        return ["r1"]

    async def verify(self, user_id: str, *, code: str | None, recovery_code: str | None,
                     ip: str, purpose: str) -> str:
        if code != self.code:
            raise InvalidCode("wrong")
        return "otp"


@dataclass
class Denylist:
    subjects: dict[str, float] = field(default_factory=dict)

    async def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        before = self.subjects.get(claims["sub"])
        return before is not None and claims["iat"] < before


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    sessions: ConsoleSessions
    store: SqlConsoleStore
    clock: Clock
    factors: Factors
    denylist: Denylist


@pytest.fixture
async def world(database: Database) -> World:
    users = SqlUserStore(database)
    for user_id, email in (("usr_op", "op@example.com"), ("usr_new", "new@example.com"),
                           ("usr_plain", "plain@example.com")):
        await users.create(user_id, email, "hash", 1.0)
    store = SqlConsoleStore(database)
    for user_id in ("usr_op", "usr_new"):
        await store.grant(user_id, ADMIN, 1.0, "test")
    clock, factors, denylist = Clock(), Factors({"usr_op"}), Denylist()
    sessions = ConsoleSessions(
        store, Passwords({"op@example.com": "usr_op", "new@example.com": "usr_new",
                          "plain@example.com": "usr_plain"}),
        factors, denylist, Kek(os.urandom(32)), AuditLog(AuditStore(database)),
        idle_timeout=IDLE, absolute_timeout=ABSOLUTE, clock=clock)
    return World(sessions, store, clock, factors, denylist)


async def signed_in(world: World) -> str:
    session_id, session = await world.sessions.sign_in("op@example.com", "pw", ip="::1",
                                                       user_agent=None)
    await world.sessions.complete_totp(session, "123456", ip="::1")
    return session_id


async def test_a_session_is_live_within_the_idle_timeout(world: World) -> None:
    """A request just inside the idle timeout finds the session and restarts its clock."""
    session_id = await signed_in(world)
    for _ in range(3):
        world.clock.now += IDLE - 1
        assert (await world.sessions.resolve(session_id)).stage == ACTIVE


async def test_the_idle_timeout_ends_a_session(world: World) -> None:
    """No request for the idle timeout: the session is over, and stays over."""
    session_id = await signed_in(world)
    world.clock.now += IDLE
    with pytest.raises(SignInRequired, match="idle timeout"):
        await world.sessions.resolve(session_id)
    world.clock.now -= IDLE
    with pytest.raises(SignInRequired):
        await world.sessions.resolve(session_id)


async def test_the_absolute_timeout_ends_a_busy_session(world: World) -> None:
    """However active, a session ends at the absolute timeout after sign-in."""
    session_id = await signed_in(world)
    start = world.clock.now
    while world.clock.now + IDLE / 2 < start + ABSOLUTE:
        world.clock.now += IDLE / 2
        await world.sessions.resolve(session_id)
    world.clock.now = start + ABSOLUTE
    with pytest.raises(SignInRequired, match="absolute timeout"):
        await world.sessions.resolve(session_id)


async def test_a_password_only_session_expires_after_the_pending_lifetime(
        world: World) -> None:
    """Between password and code a session lives at most PENDING_LIFETIME."""
    session_id, _ = await world.sessions.sign_in("op@example.com", "pw", ip="::1",
                                                 user_agent=None)
    world.clock.now += PENDING_LIFETIME
    with pytest.raises(SignInRequired):
        await world.sessions.resolve(session_id, stages=(TOTP,))


async def test_a_password_only_session_opens_no_page(world: World) -> None:
    """Before the code the pages send to the code step."""
    session_id, _ = await world.sessions.sign_in("op@example.com", "pw", ip="::1",
                                                 user_agent=None)
    with pytest.raises(SignInRequired) as sent:
        await world.sessions.resolve(session_id)
    assert sent.value.headers["Location"] == "/console/login/code"


async def test_an_operator_without_totp_starts_at_enrolment(world: World) -> None:
    """No TOTP: the session starts at ``enrol`` and is signed in by the confirmation."""
    session_id, session = await world.sessions.sign_in("new@example.com", "pw", ip="::1",
                                                       user_agent=None)
    assert session.stage == ENROL
    await world.sessions.confirm_enrolment(session, "123456", ip="::1")
    assert (await world.sessions.resolve(session_id)).stage == ACTIVE


async def test_a_user_without_the_role_gets_no_session(world: World) -> None:
    """A correct password of a non-operator is NotOperator."""
    with pytest.raises(NotOperator):
        await world.sessions.sign_in("plain@example.com", "pw", ip="::1", user_agent=None)


async def test_a_subject_revocation_ends_the_session(world: World) -> None:
    """A subject revocation after sign-in ends the session."""
    session_id = await signed_in(world)
    world.denylist.subjects["usr_op"] = world.clock.now + 1
    with pytest.raises(SignInRequired, match="subject revoked"):
        await world.sessions.resolve(session_id)


async def test_a_session_signed_in_after_a_revocation_lives(world: World) -> None:
    """A revocation before sign-in does not touch a later session."""
    world.denylist.subjects["usr_op"] = world.clock.now - 10
    session_id = await signed_in(world)
    assert (await world.sessions.resolve(session_id)).user_id == "usr_op"


async def test_losing_the_role_ends_the_session(world: World) -> None:
    """The role is checked on every request."""
    session_id = await signed_in(world)
    await world.store.revoke("usr_op", ADMIN)
    with pytest.raises(SignInRequired, match="role revoked"):
        await world.sessions.resolve(session_id)


async def test_the_csrf_token_belongs_to_its_session(world: World) -> None:
    """A session's own token passes; another session's and none are refused."""
    first = await world.sessions.resolve(await signed_in(world))
    second = await world.sessions.resolve(await signed_in(world))
    world.sessions.check_csrf(first, first.csrf_token)
    for token in (second.csrf_token, None, ""):
        with pytest.raises(CsrfRejected):
            world.sessions.check_csrf(first, token)


async def test_a_destructive_action_needs_a_code_entered_with_it(world: World) -> None:
    """No code is FreshCodeRequired, a wrong one InvalidCode, the right one passes."""
    session = await world.sessions.resolve(await signed_in(world))
    with pytest.raises(FreshCodeRequired):
        await world.sessions.require_fresh_code(session, None, ip="::1", action="x")
    with pytest.raises(InvalidCode):
        await world.sessions.require_fresh_code(session, "999999", ip="::1", action="x")
    await world.sessions.require_fresh_code(session, "123456", ip="::1", action="x")


async def test_a_held_secret_is_shown_once(world: World) -> None:
    """What ``hold_once`` keeps, ``take_once`` gives back once, then nothing."""
    session: ConsoleSession = await world.sessions.resolve(await signed_in(world))
    await world.sessions.hold_once(session, "ak_test_secret")
    assert await world.sessions.take_once(session) == "ak_test_secret"
    assert await world.sessions.take_once(session) is None


async def test_the_session_id_is_stored_only_as_a_digest(world: World,
                                                         database: Database) -> None:
    """The table holds no session id in the clear."""
    session_id = await signed_in(world)
    rows = await database.fetch("SELECT digest FROM console_sessions")
    assert rows and all(session_id.encode() not in bytes(r["digest"]) for r in rows)


async def test_roles_are_granted_once_and_revoked(world: World) -> None:
    """Granting twice changes nothing the second time; revoking removes the role."""
    assert await world.store.grant("usr_plain", ADMIN, 2.0, "test") is True
    assert await world.store.grant("usr_plain", ADMIN, 3.0, "test") is False
    assert await world.store.roles("usr_plain") == [ADMIN]
    assert await world.store.revoke("usr_plain", ADMIN) is True
    assert await world.store.roles("usr_plain") == []


async def test_user_search_finds_by_email_start_and_id_not_by_wildcard(world: World) -> None:
    """The search matches an email's start or an exact id; ``%`` is a character."""
    assert [u["id"] for u in await world.store.search_users("op@")] == ["usr_op"]
    assert [u["id"] for u in await world.store.search_users("usr_new")] == ["usr_new"]
    assert await world.store.search_users("%") == []
