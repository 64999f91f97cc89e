"""TOTP enrolment, the two-step login, replay, recovery codes, brute force and the
operator's reset, against a real server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pyotp

from tests.mfa.helpers import (
    bearer,
    claims,
    enrol,
    password_step,
    second_step,
    ticket_of,
)
from tests.sessions.helpers import fetchval, login
from tests.support.servers import Server


def test_after_enrolment_login_needs_the_second_step_and_tokens_say_otp(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """An enrolled user's password answers mfa_required with a ticket; the ticket and a
    code give tokens whose amr holds pwd and otp and whose acr is aal2."""
    server = start_server(server_env)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        user = enrol(server, client, "two-step@example.com")
        assert len(user.recovery_codes) == 10 and len(set(user.recovery_codes)) == 10
        ticket = ticket_of(password_step(client, user.email))
        done = second_step(client, ticket, code=user.next_code())
        assert done.status_code == 200, done.text
        token = claims(done.json()["access_token"])
    assert token["amr"] == ["pwd", "otp"] and token["acr"] == "aal2"
    assert token["sub"] == user.user_id


def test_a_password_only_login_says_pwd_and_aal1(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Without MFA the login answers tokens at once, with amr ["pwd"] and acr aal1."""
    server = start_server(server_env)
    from tests.sessions.helpers import create_user

    create_user(server, "plain@example.com")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        token = claims(login(client, "plain@example.com")["access_token"])
    assert token["amr"] == ["pwd"] and token["acr"] == "aal1"


def test_a_code_replayed_in_its_window_is_rejected(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """The code that completed one login cannot complete another, though still in its
    30 s window; the ticket stays unspent and a recovery code then completes it."""
    server = start_server(server_env)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        user = enrol(server, client, "replay@example.com")
        code = user.next_code()
        assert second_step(client, ticket_of(password_step(client, user.email)),
                           code=code).status_code == 200
        ticket = ticket_of(password_step(client, user.email))
        replayed = second_step(client, ticket, code=code)
        assert replayed.status_code == 401
        assert replayed.json()["type"].endswith(":mfa_rejected")
        completed = second_step(client, ticket, recovery_code=user.recovery_codes[0])
        assert completed.status_code == 200


def test_a_ticket_is_single_use(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Once a ticket completed a login, the same ticket with another valid code is refused."""
    server = start_server(server_env)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        user = enrol(server, client, "ticket@example.com")
        ticket = ticket_of(password_step(client, user.email))
        assert second_step(client, ticket, code=user.next_code()).status_code == 200
        again = second_step(client, ticket, recovery_code=user.recovery_codes[0])
        assert again.status_code == 401


def test_a_recovery_code_works_once(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """A recovery code completes one login (amr otp); the same code is refused after."""
    server = start_server(server_env)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        user = enrol(server, client, "recovery@example.com")
        code = user.recovery_codes[3].upper()  # typed from paper: case does not matter
        first = second_step(client, ticket_of(password_step(client, user.email)),
                            recovery_code=code)
        assert first.status_code == 200, first.text
        assert "otp" in claims(first.json()["access_token"])["amr"]
        again = second_step(client, ticket_of(password_step(client, user.email)),
                            recovery_code=code)
        assert again.status_code == 401


def test_regenerated_recovery_codes_replace_the_old_ones(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """After regeneration an old recovery code is refused and a new one works."""
    server = start_server(server_env)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        user = enrol(server, client, "regen@example.com")
        tokens = second_step(client, ticket_of(password_step(client, user.email)),
                             recovery_code=user.recovery_codes[9]).json()
        fresh = client.post("/v1/mfa/recovery-codes", headers=bearer(tokens["access_token"]),
                            json={"code": user.next_code()})
        assert fresh.status_code == 200, fresh.text
        new_codes = fresh.json()["recovery_codes"]
        old = second_step(client, ticket_of(password_step(client, user.email)),
                          recovery_code=user.recovery_codes[0])
        assert old.status_code == 401
        new = second_step(client, ticket_of(password_step(client, user.email)),
                          recovery_code=new_codes[0])
        assert new.status_code == 200


def test_refreshed_tokens_keep_the_second_factor(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """A refresh of an MFA session issues access tokens that still carry amr otp."""
    server = start_server(server_env)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        user = enrol(server, client, "refresh@example.com")
        tokens = second_step(client, ticket_of(password_step(client, user.email)),
                             code=user.next_code()).json()
        refreshed = client.post("/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
    assert claims(refreshed.json()["access_token"])["amr"] == ["pwd", "otp"]


def test_enrolment_completes_only_with_a_valid_code(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """A pending enrolment with a wrong first code stays pending: login asks no code."""
    server = start_server(server_env)
    from tests.sessions.helpers import create_user

    create_user(server, "pending@example.com")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        access = login(client, "pending@example.com")["access_token"]
        secret = client.post("/v1/mfa/totp/enroll", headers=bearer(access)).json()["secret"]
        right = pyotp.TOTP(secret)
        wrong = next(c for c in ("123456", "654321", "111111")
                     if not right.verify(c, valid_window=1))
        refused = client.post("/v1/mfa/totp/verify", headers=bearer(access), json={"code": wrong})
        assert refused.status_code == 400
        assert password_step(client, "pending@example.com").status_code == 200


def test_brute_force_of_codes_is_stopped_after_a_handful(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Wrong codes against one ticket meet 429 after at most 5 tries (far below the
    10,000 that are 1 % of the code space); then even the right code is refused, and
    the account is locked for the password step as well."""
    server = start_server(server_env)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        user = enrol(server, client, "brute@example.com")
        ticket = ticket_of(password_step(client, user.email))
        valid = {user.code_for_step(int(time.time() // 30) + d) for d in (-1, 0, 1, 2)}
        guesses = (f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)
        statuses = []
        for guess in guesses:
            status = second_step(client, ticket, code=guess).status_code
            statuses.append(status)
            if status == 429 or len(statuses) >= 200:
                break
        tried = statuses.index(429) if 429 in statuses else len(statuses)
        assert tried <= 5, statuses
        assert second_step(client, ticket, code=user.next_code()).status_code == 429
        assert password_step(client, user.email).status_code == 401


def test_disable_needs_a_current_code(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Disabling with a wrong code is refused; with a current code login is one step again."""
    server = start_server(server_env)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        user = enrol(server, client, "disable@example.com")
        access = second_step(client, ticket_of(password_step(client, user.email)),
                             recovery_code=user.recovery_codes[1]).json()["access_token"]
        wrong = client.post("/v1/mfa/totp/disable", headers=bearer(access),
                            json={"code": user.last_code()})  # used by the enrolment
        assert wrong.status_code == 400
        assert password_step(client, user.email).status_code == 401
        ok = client.post("/v1/mfa/totp/disable", headers=bearer(access),
                         json={"code": user.next_code()})
        assert ok.status_code == 204, ok.text
        assert password_step(client, user.email).status_code == 200


async def test_operator_reset_removes_mfa_and_is_audited(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """``authd users mfa-reset`` lets the password alone log in again and lands in the
    audit log with the operator as actor."""
    server = start_server(server_env)
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        user = enrol(server, client, "lost-phone@example.com")
        out = json.loads(server.cli(["--json", "users", "mfa-reset", user.email]).stdout)
        assert out == {"user_id": user.user_id, "reset": True}
        assert password_step(client, user.email).status_code == 200
    actor = await fetchval(server, "SELECT actor FROM audit_events WHERE action = 'mfa.reset'"
                           " AND subject = $1", user.user_id)
    assert actor == "cli"


def test_a_client_token_cannot_enrol(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """An API-key access token (no user session) gets 403 at the enrolment endpoint."""
    server = start_server(server_env)
    from tests.sessions.helpers import api_key_with_scope

    key = api_key_with_scope(server, "svc-mfa", "read")
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        token = client.post("/v1/token", headers={"X-API-Key": key}).json()["access_token"]
        refused = client.post("/v1/mfa/totp/enroll", headers=bearer(token))
    assert refused.status_code == 403


async def test_no_secret_code_or_recovery_code_in_logs_or_audit(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """After enrolment, logins with codes and recovery codes, failures and a replay, no
    TOTP secret, code, recovery code or MFA ticket appears in any log line or audit
    event."""
    server = start_server({**server_env, "AUTHD_LOG_LEVEL": "debug"})
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        user = enrol(server, client, "quiet@example.com")
        code = user.next_code()
        tickets: list[str] = []
        for answer in ({"code": code}, {"code": code},
                       {"recovery_code": user.recovery_codes[0]},
                       {"recovery_code": user.recovery_codes[0]}):
            tickets.append(ticket_of(password_step(client, user.email)))
            second_step(client, tickets[-1], **answer)
    server.stop()  # flushes the audit buffer
    conn_rows = await _audit_text(server)
    logs = server.logs()
    secrets_ = [user.secret, *user.codes_seen, *user.recovery_codes,
                *(c.replace("-", "") for c in user.recovery_codes), *tickets]
    for secret in secrets_:
        assert secret not in logs, "a secret or code reached the log"
        assert secret not in conn_rows, "a secret or code reached the audit log"
    assert "mfa.verify" in conn_rows  # the failures were audited, without the codes


async def _audit_text(server: Server) -> str:
    import asyncpg

    conn = await asyncpg.connect(server.env["AUTHD_DATABASE_URL"])
    try:
        rows = await conn.fetch("SELECT action, actor, subject, ip, outcome, details"
                                " FROM audit_events")
    finally:
        await conn.close()
    return "\n".join(json.dumps(dict(r)) for r in rows)
