"""The console against a real server on PostgreSQL + Redis, spoken to over HTTP:
sign-in, the session cookie, CSRF, fresh codes, the ways a session ends, the headers."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import AsyncIterator, Iterator

import httpx
import pyotp
import pytest

from tests.console.helpers import (
    COOKIE,
    ConsoleClient,
    csrf_of,
    operator,
    operator_without_mfa,
    secret_of,
)
from tests.mfa.helpers import Enrolled
from tests.sessions.helpers import admin_key, create_user
from tests.support.databases import REDIS_URL, RUN_ID, create_database
from tests.support.servers import Server, free_port, new_kek

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

PAGES = ("/console", "/console/keys", "/console/clients", "/console/users",
         "/console/audit")


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    env = {
        "AUTHD_DATABASE_URL": await create_database("console"),
        "AUTHD_REDIS_URL": REDIS_URL,
        "AUTHD_REDIS_PREFIX": f"authd-test:{RUN_ID}:console:",
        "AUTHD_KEK": new_kek(),
    }
    server = Server(env=env, port=free_port(),
                    log_path=tmp_path_factory.mktemp("console") / "server.log")
    server.cli(["migrate"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        server.start()
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture
def console(server: Server) -> Iterator[ConsoleClient]:
    client = ConsoleClient(server)
    yield client
    client.close()


_count = iter(range(1_000_000))


def email(label: str) -> str:
    return f"{label}-{next(_count)}@example.com"


@pytest.fixture
def admin(server: Server) -> Enrolled:
    return operator(server, email("op"))


def test_an_operator_signs_in_with_password_and_code(console: ConsoleClient,
                                                     admin: Enrolled) -> None:
    """Password, then a TOTP code: the overview answers 200 in the session."""
    console.sign_in(admin)
    page = console.get("/console")
    assert page.status_code == 200
    assert "<h1>Overview</h1>" in page.text


def test_the_session_cookie_is_host_prefixed_httponly_secure_and_strict(
        console: ConsoleClient, admin: Enrolled) -> None:
    """The cookie is ``__Host-`` with Secure, HttpOnly, SameSite=Strict, Path=/ and
    no Domain, and holds an opaque id only."""
    response = console.password(admin.email)
    header = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert header.startswith(COOKIE + "=cs_")
    assert {"secure", "httponly", "samesite", "path"} <= attributes
    assert "samesite=strict" in header.lower() and "path=/" in header.lower()
    assert "domain" not in attributes


def test_an_operator_without_totp_is_taken_to_enrolment_first(
        console: ConsoleClient, server: Server) -> None:
    """After the password an operator without TOTP lands on enrolment, cannot reach
    the pages before, and is signed in once the first code confirms it."""
    who = email("new-op")
    operator_without_mfa(server, who)
    first = console.password(who)
    assert first.headers["location"] == "/console/enrol"
    assert console.get("/console").headers["location"] == "/console/enrol"
    started = console.post_form("/console/enrol", "/console/enrol/start")
    secret = secret_of(started)
    confirmed = console.post("/console/enrol/confirm", {
        "csrf": csrf_of(started), "code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200 and "recovery codes" in confirmed.text
    assert console.get("/console").status_code == 200


def test_a_user_without_the_admin_role_is_refused(console: ConsoleClient,
                                                  server: Server) -> None:
    """A correct password of a user who is not an operator: 403, no session."""
    who = email("plain")
    create_user(server, who)
    response = console.password(who)
    assert response.status_code == 403
    assert COOKIE not in response.headers.get("set-cookie", "")


def test_a_wrong_password_is_refused(console: ConsoleClient, admin: Enrolled) -> None:
    """A wrong password: 401 and the sign-in form again, no session."""
    response = console.password(admin.email, "not the password")
    assert response.status_code == 401
    assert "Wrong email or password" in response.text
    assert "set-cookie" not in response.headers


def test_a_wrong_code_is_refused_and_the_session_stays_unsigned(
        console: ConsoleClient, admin: Enrolled) -> None:
    """A wrong TOTP code is refused and the pages still send to the code step."""
    console.password(admin.email)
    refused = console.post_form("/console/login/code", "/console/login/code",
                                {"code": "000000" if admin.next_code() != "000000" else "111111"})
    assert refused.status_code == 400
    assert console.get("/console/keys").headers["location"] == "/console/login/code"


def test_a_post_without_the_csrf_token_is_refused(console: ConsoleClient,
                                                  admin: Enrolled) -> None:
    """A state-changing POST without the CSRF token: 403, nothing rotates."""
    console.sign_in(admin)
    response = console.post("/console/keys/rotate", {})
    assert response.status_code == 403
    assert "CSRF" in response.text


def test_another_sessions_csrf_token_is_refused(server: Server, admin: Enrolled) -> None:
    """The token is bound to its session: one from another session is a 403."""
    first, second = ConsoleClient(server), ConsoleClient(server)
    try:
        first.sign_in(admin)
        second.sign_in(admin)
        foreign = csrf_of(first.get("/console/users"))
        response = second.post("/console/users", {"csrf": foreign, "email": "x@example.com",
                                                  "password": "long enough password"})
        assert response.status_code == 403
    finally:
        first.close()
        second.close()


def test_a_post_from_another_origin_is_refused(console: ConsoleClient,
                                               admin: Enrolled) -> None:
    """Even with the right token, a form sent from another origin is refused."""
    console.sign_in(admin)
    token = csrf_of(console.get("/console/keys"))
    response = console.post("/console/keys/rotate", {"csrf": token},
                            origin="http://evil.example")
    assert response.status_code == 403


def test_every_page_carries_the_security_headers_and_no_inline_script(
        console: ConsoleClient, admin: Enrolled) -> None:
    """CSP default-src 'self' with frame-ancestors 'none', nosniff, no-referrer,
    no-store on every page; no inline script, style element or style attribute."""
    console.sign_in(admin)
    for path in (*PAGES, "/console/login"):
        page = console.get(path)
        assert page.status_code == 200, path
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) == [], path
        assert "<style" not in page.text and " style=" not in page.text, path
        assert " on" + "click=" not in page.text


def test_a_destructive_action_needs_a_fresh_code(console: ConsoleClient, admin: Enrolled,
                                                 server: Server) -> None:
    """Revoking a signing key without a code is refused and changes nothing; with a
    fresh code it is done, with the operator as the audit actor."""
    console.sign_in(admin)
    keys = json.loads(server.cli(["--json", "keys", "list"]).stdout)["keys"]
    kid = next(k["kid"] for k in keys if k["state"] == "next")
    refused = console.post_form("/console/keys", f"/console/keys/{kid}/revoke")
    assert refused.status_code == 403
    assert "authenticator code" in refused.text
    done = console.post_form("/console/keys", f"/console/keys/{kid}/revoke",
                             {"code": admin.next_code()})
    assert done.status_code == 303, done.text
    events = json.loads(server.cli(["--json", "audit", "tail", "--action",
                                    "signing_key.revoke"]).stdout)["events"]
    assert any(e["subject"] == kid and e["actor"] == admin.user_id for e in events)


def test_granting_the_admin_role_needs_a_fresh_code(console: ConsoleClient, admin: Enrolled,
                                                   server: Server) -> None:
    """Making another user an operator is refused without a fresh code (a hijacked
    session must not make operators) and done with one."""
    other = create_user(server, email("helper"))
    console.sign_in(admin)
    page = f"/console/users/{other['id']}"
    refused = console.post_form(page, f"{page}/grant-admin")
    assert refused.status_code == 403
    operators = httpx.get(server.base_url + "/admin/operators", timeout=30,
                          headers={"X-API-Key": admin_key(server)}).json()
    assert other["id"] not in json.dumps(operators)
    done = console.post_form(page, f"{page}/grant-admin", {"code": admin.next_code()})
    assert done.status_code == 303, done.text


def test_a_subject_revocation_ends_the_console_session(console: ConsoleClient,
                                                       admin: Enrolled,
                                                       server: Server) -> None:
    """``authd revoke subject`` of the operator signs them out of the console."""
    console.sign_in(admin)
    server.cli(["revoke", "subject", admin.user_id])
    response = console.get("/console")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login"


def test_taking_the_admin_role_ends_the_console_session(console: ConsoleClient,
                                                        admin: Enrolled,
                                                        server: Server) -> None:
    """``authd users revoke-admin`` ends the user's console sessions at once."""
    console.sign_in(admin)
    server.cli(["users", "revoke-admin", admin.email])
    assert console.get("/console").status_code == 303


def test_signing_out_ends_the_session(console: ConsoleClient, admin: Enrolled) -> None:
    """After sign-out the old cookie opens nothing."""
    console.sign_in(admin)
    out = console.post_form("/console", "/console/logout")
    assert out.status_code == 303
    assert console.get("/console").headers["location"] == "/console/login"


def test_the_admin_api_grants_and_takes_the_role_audited(server: Server) -> None:
    """PUT and DELETE /admin/users/{user}/roles/admin change the role and each lands
    in the audit log with the caller as actor."""
    who = email("api-op")
    user_id = create_user(server, who)["id"]
    headers = {"X-API-Key": admin_key(server)}
    with httpx.Client(base_url=server.base_url, headers=headers) as client:
        granted = client.put(f"/admin/users/{who}/roles/admin")
        assert granted.status_code == 200 and granted.json()["roles"] == ["admin"]
        taken = client.delete(f"/admin/users/{user_id}/roles/admin")
        assert taken.status_code == 200 and taken.json()["roles"] == []
        events = client.get("/admin/audit", params={"subject": user_id}).json()["events"]
    actors = {e["action"]: e["actor"] for e in events}
    assert actors["user.grant_admin"] == actors["user.revoke_admin"] != user_id
    assert actors["user.grant_admin"]


def test_the_cli_grants_the_role_and_refuses_an_unknown_user(server: Server) -> None:
    """``users grant-admin`` answers the roles; an unknown user is an error, not a
    traceback."""
    who = email("cli-op")
    create_user(server, who)
    granted = json.loads(server.cli(["--json", "users", "grant-admin", who]).stdout)
    assert granted["roles"] == ["admin"]
    unknown = server.cli(["--json", "users", "grant-admin", "nobody@example.com"], check=False)
    assert unknown.returncode != 0
    assert json.loads(unknown.stdout)["error"] and "Traceback" not in unknown.stderr


def test_the_audit_export_is_csv_of_the_console_actions(console: ConsoleClient,
                                                        admin: Enrolled) -> None:
    """The CSV export lists a console action with the operator as actor."""
    console.sign_in(admin)
    created = console.post_form("/console/clients", "/console/clients",
                                {"name": f"csv-{next(_count)}", "scopes": "a:read"})
    assert created.status_code == 303, created.text
    export = console.get(f"/console/audit.csv?action=client.create&actor={admin.user_id}")
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    lines = export.text.strip().splitlines()
    assert lines[0] == "id,at,action,outcome,actor,subject,ip"
    assert len(lines) == 2 and admin.user_id in lines[1]


def test_bad_input_is_a_clear_error_page_never_a_500(console: ConsoleClient,
                                                     admin: Enrolled) -> None:
    """A bad audit date, an unknown user, a repeated form field and a JSON body
    (which cannot carry the form's token) are 4xx pages."""
    console.sign_in(admin)
    assert console.get("/console/audit?since=yesterday").status_code == 400
    assert console.get("/console/users/usr_nobody").status_code == 404
    token = csrf_of(console.get("/console/clients"))
    cookie = {"Cookie": f"{COOKIE}={console.session_id}"}
    repeated = console.http.post(
        "/console/clients", content=f"csrf={token}&name=a&name=b",
        headers={**cookie, "Content-Type": "application/x-www-form-urlencoded"})
    assert repeated.status_code == 400
    as_json = console.http.post("/console/clients", json={"csrf": token}, headers=cookie)
    assert as_json.status_code == 403
    assert as_json.headers["content-type"].startswith("text/html")
