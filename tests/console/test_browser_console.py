"""The operator console in a real browser (Debian's chromium through Playwright)
against a real server on PostgreSQL + Redis.

Codes are computed from the TOTP secret as an authenticator app would. Every page is
photographed into ``build/test-artifacts/console/`` (two of them illustrate the
README). The ``__Host-`` cookie is Secure; chromium keeps and sends Secure cookies on
``http://127.0.0.1`` (a potentially trustworthy origin), as it would over https.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pyotp
import pytest
from playwright.async_api import BrowserContext, Page

from tests.console.helpers import COOKIE, operator, operator_without_mfa
from tests.mfa.helpers import Enrolled
from tests.sessions.helpers import PASSWORD, create_user
from tests.support.databases import REDIS_URL, RUN_ID, create_database
from tests.support.servers import REPO, Server, free_port, new_kek

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.browser]

SHOTS = REPO / "build" / "test-artifacts" / "console"
_count = iter(range(1_000_000))


def email(label: str) -> str:
    return f"{label}-{next(_count)}@example.com"


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    env = {
        "AUTHD_DATABASE_URL": await create_database("console_browser"),
        "AUTHD_REDIS_URL": REDIS_URL,
        "AUTHD_REDIS_PREFIX": f"authd-test:{RUN_ID}:console-browser:",
        "AUTHD_KEK": new_kek(),
        # A next key may sign 2 s + 5 s after it was published: a rotation test can
        # see a refusal and, a few seconds later, the rotation.
        "AUTHD_JWKS_MAX_AGE": "5",
    }
    server = Server(env=env, port=free_port(),
                    log_path=tmp_path_factory.mktemp("console-browser") / "server.log")
    server.cli(["migrate"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        server.start()
    server.wait_ready()
    yield server
    server.stop()


async def shot(page: Page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def password_step(page: Page, server: Server, who: str,
                        password: str = PASSWORD) -> None:
    await page.goto(server.base_url + "/console")
    await page.get_by_label("Email").fill(who)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Continue").click()


async def sign_in(page: Page, server: Server, who: Enrolled) -> None:
    await password_step(page, server, who.email)
    await page.wait_for_url("**/console/login/code")
    await page.get_by_label("Authenticator code").fill(who.next_code())
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console")


async def accept_dialogs(page: Page) -> None:
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))


async def test_an_operator_signs_in_with_password_and_code(
        server: Server, browser_context: BrowserContext) -> None:
    """Password then code reach the overview; nothing is in web storage and the
    session cookie is invisible to scripts."""
    admin = operator(server, email("op"))
    page = await browser_context.new_page()
    await page.goto(server.base_url + "/console")
    await shot(page, "01-sign-in")
    await password_step(page, server, admin.email)
    await page.wait_for_url("**/console/login/code")
    await shot(page, "02-code")
    await page.get_by_label("Authenticator code").fill(admin.next_code())
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console")
    assert await page.get_by_role("heading", name="Overview").is_visible()
    await shot(page, "03-overview")
    storage = await page.evaluate(
        "() => [localStorage.length, sessionStorage.length, document.cookie]")
    assert storage == [0, 0, ""]
    [cookie] = await browser_context.cookies(server.base_url)
    assert (cookie["name"], cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (
        COOKIE, True, True, "Strict")


async def test_an_operator_without_mfa_is_taken_to_enrolment(
        server: Server, browser_context: BrowserContext) -> None:
    """After the password an operator without TOTP enrols, then is signed in."""
    who = email("new-op")
    operator_without_mfa(server, who)
    page = await browser_context.new_page()
    await password_step(page, server, who)
    await page.wait_for_url("**/console/enrol")
    await page.get_by_role("button", name="Start setup").click()
    secret = (await page.locator("#totp-secret").inner_text()).strip()
    await shot(page, "04-enrolment")
    await page.get_by_label("Authenticator code").fill(pyotp.TOTP(secret).now())
    await page.get_by_role("button", name="Confirm and sign in").click()
    assert await page.get_by_role("heading", name="Two-factor sign-in is on").is_visible()
    await page.get_by_role("link", name="Continue to the console").click()
    assert await page.get_by_role("heading", name="Overview").is_visible()


async def test_a_user_without_the_role_is_refused(
        server: Server, browser_context: BrowserContext) -> None:
    """A correct password of a non-operator shows a refusal and sets no cookie."""
    who = email("plain")
    create_user(server, who)
    page = await browser_context.new_page()
    await password_step(page, server, who)
    assert await page.get_by_role("alert").inner_text() == \
        "this account does not hold the admin role"
    assert await browser_context.cookies(server.base_url) == []


async def test_a_wrong_password_is_refused(
        server: Server, browser_context: BrowserContext) -> None:
    """A wrong password shows the form again with an error, no cookie."""
    admin = operator(server, email("op"))
    page = await browser_context.new_page()
    await password_step(page, server, admin.email, "wrong password entirely")
    assert "Wrong email or password" in await page.get_by_role("alert").inner_text()
    assert await browser_context.cookies(server.base_url) == []


async def test_a_wrong_code_is_refused(
        server: Server, browser_context: BrowserContext) -> None:
    """A wrong code keeps the operator on the code step."""
    admin = operator(server, email("op"))
    page = await browser_context.new_page()
    await password_step(page, server, admin.email)
    await page.wait_for_url("**/console/login/code")
    wrong = "000000" if admin.next_code() != "000000" else "111111"
    await page.get_by_label("Authenticator code").fill(wrong)
    await page.get_by_role("button", name="Sign in").click()
    assert await page.get_by_role("alert").is_visible()
    await page.goto(server.base_url + "/console/users")
    assert page.url.endswith("/console/login/code")


async def test_an_idle_session_expires(
        start_server: Callable[..., Server], server_env: dict[str, str],
        browser_context: BrowserContext) -> None:
    """With a 10 s idle timeout, a page opened after 11 s idle sends to sign-in."""
    short = start_server({**server_env, "AUTHD_CONSOLE_IDLE_TIMEOUT": "10s"})
    admin = operator(short, email("idle"))
    page = await browser_context.new_page()
    await sign_in(page, short, admin)
    await asyncio.sleep(11)
    await page.goto(short.base_url + "/console/keys")
    assert page.url.endswith("/console/login")
    assert await page.get_by_role("heading", name="Sign in").is_visible()


async def exchange(server: Server, key: str) -> int:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post("/v1/token", headers={"X-API-Key": key})
    return response.status_code


async def test_a_key_made_in_the_console_is_shown_once_exchanges_and_stops_when_revoked(
        server: Server, browser_context: BrowserContext) -> None:
    """Create a client and a key; the secret shows once and is masked on reload;
    it exchanges; revoked in the console it stops within 1 s; neither the key nor
    the session id is in the server's log; the audit page lists the actions with the
    operator as actor."""
    admin = operator(server, email("op"))
    page = await browser_context.new_page()
    await accept_dialogs(page)
    await sign_in(page, server, admin)
    await page.get_by_role("link", name="Clients & API keys").click()
    name = f"billing-{next(_count)}"
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_label("Scopes (space separated)").fill("invoices:read invoices:write")
    await page.get_by_role("button", name="Create client").click()
    await page.get_by_role("heading", name=name).wait_for()
    await page.get_by_label("Expires in (e.g. 90d, empty: never)").fill("90d")
    await page.get_by_label("Rate limit (e.g. 100/m, empty: the default)").fill("100/m")
    await page.get_by_role("button", name="Create key").click()
    await page.wait_for_url("**/new-key")
    secret = (await page.locator("#new-key").inner_text()).strip()
    assert secret.startswith("ak_")
    await shot(page, "06-new-api-key")

    await page.reload()
    assert await page.locator("#new-key").count() == 0
    assert secret not in await page.content()
    assert "shown once and is gone" in await page.get_by_role("status").inner_text()
    await shot(page, "07-client")

    assert await exchange(server, secret) == 200
    await page.get_by_text("Manage…").click()
    await page.get_by_role("button", name="Revoke key").click()
    await page.get_by_text("Done: key revoke.").wait_for()
    revoked_at = time.monotonic()
    status = await exchange(server, secret)
    while status == 200 and time.monotonic() - revoked_at < 1.0:
        await asyncio.sleep(0.05)
        status = await exchange(server, secret)
    assert status == 401

    [cookie] = await browser_context.cookies(server.base_url)
    logs = server.logs()
    assert secret not in logs and cookie["value"] not in logs

    await page.goto(server.base_url + f"/console/audit?actor={admin.user_id}")
    await shot(page, "08-audit")
    rows = await page.locator("tbody tr").all_inner_texts()
    for action in ("client.create", "apikey.create", "apikey.revoke"):
        assert any(action in row and admin.user_id in row for row in rows), action

    await page.goto(server.base_url + "/console/clients")
    await shot(page, "05-clients")
    await page.goto(server.base_url + "/console")
    assert await page.get_by_role("img", name="tokens issued per minute, grant api_key").count()
    await shot(page, "12-overview-with-traffic")


async def test_rotating_in_the_console_moves_the_timeline_and_an_early_one_says_when(
        server: Server, browser_context: BrowserContext) -> None:
    """A rotation makes the next key active (the table and timeline show it); one
    right after is refused, saying from when it is possible."""
    admin = operator(server, email("op"))
    page = await browser_context.new_page()
    await sign_in(page, server, admin)
    await page.goto(server.base_url + "/console/keys")
    rotated = False
    for _ in range(40):
        await page.get_by_role("button", name="Rotate now").click()
        if await page.get_by_text("Rotated:").count():
            rotated = True
            break
        assert "rotation is possible from" in await page.get_by_role("alert").inner_text()
        await asyncio.sleep(0.5)
        await page.goto(server.base_url + "/console/keys")
    assert rotated
    assert await page.locator("svg rect.period.retired").count() >= 1
    assert await page.locator("svg rect.period.active").count() >= 1
    await shot(page, "09-signing-keys")

    await page.get_by_role("button", name="Rotate now").click()
    refusal = await page.get_by_role("alert").inner_text()
    assert "rotation is possible from" in refusal


async def test_the_users_pages_find_and_show_a_user(
        server: Server, browser_context: BrowserContext) -> None:
    """Search finds a user by the start of the email; the page shows status, roles
    and MFA; unlock is done and audited."""
    admin = operator(server, email("op"))
    who = email("customer")
    create_user(server, who)
    page = await browser_context.new_page()
    await sign_in(page, server, admin)
    await page.goto(server.base_url + "/console/users")
    await page.get_by_label("Email (or its start) or user id").fill(who.split("@")[0])
    await page.get_by_role("button", name="Search").click()
    await shot(page, "10-users")
    await page.get_by_role("link", name=who).click()
    await page.get_by_role("heading", name=who).wait_for()
    await page.get_by_role("button", name="Unlock").click()
    assert "Done: unlock." in await page.get_by_role("status").inner_text()
    await shot(page, "11-user")
