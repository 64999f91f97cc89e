"""A single-page app on another origin, in a real browser (Debian's chromium).

authd runs production-shaped (PostgreSQL, Redis) in cookie mode with the SPA's origin
on ``AUTHD_CORS_ORIGINS``; the SPA (``spa/index.html``) and a forging page
(``spa/form.html``) are served from other loopback ports — other origins of the same
site, as ``app.example.com`` is to ``auth.example.com``.

The refresh cookie is ``Secure``; chromium treats ``http://127.0.0.1`` as a
potentially trustworthy origin and keeps and sends Secure cookies there, so the flow
runs over plain http on loopback exactly as it would over https in production.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import BrowserContext, Page

from tests.sessions.families import UNTOUCHED, Family, family, sid_of
from tests.sessions.helpers import PASSWORD, create_user
from tests.support.browser import StaticSite
from tests.support.databases import REDIS_URL, RUN_ID, create_database
from tests.support.servers import Server, free_port, new_kek

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.browser]

SPA_FILES = Path(__file__).parent / "spa"


@dataclass
class World:
    server: Server
    app: StaticSite  # on AUTHD_CORS_ORIGINS
    stranger: StaticSite  # not on it

    def page_url(self, site: StaticSite, page: str, **query: str) -> str:
        params = "&".join(f"{k}={v}" for k, v in {"authd": self.server.base_url, **query}.items())
        return site.url(f"/{page}?{params}")


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[StaticSite, StaticSite]]:
    with StaticSite(SPA_FILES) as app, StaticSite(SPA_FILES) as stranger:
        yield app, stranger


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory,
                sites: tuple[StaticSite, StaticSite]) -> AsyncIterator[World]:
    app, stranger = sites
    env = {
        "AUTHD_DATABASE_URL": await create_database("spa"),
        "AUTHD_REDIS_URL": REDIS_URL,
        "AUTHD_REDIS_PREFIX": f"authd-test:{RUN_ID}:spa:",
        "AUTHD_KEK": new_kek(),
        "AUTHD_REFRESH_COOKIE": "true",
        "AUTHD_CORS_ORIGINS": app.origin,
    }
    server = Server(env=env, port=free_port(),
                    log_path=tmp_path_factory.mktemp("spa") / "server.log")
    server.cli(["migrate"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        server.start()
    yield World(server, app, stranger)
    server.stop()


async def spa(context: BrowserContext, world: World, site: StaticSite) -> Page:
    page = await context.new_page()
    await page.goto(world.page_url(site, "index.html"))
    return page


async def run(page: Page, script: str, *args: Any) -> dict[str, Any]:
    """Evaluate ``script`` (a function of ``args``) in the page; its JSON result."""
    result: dict[str, Any] = await page.evaluate(script, list(args))
    return result


async def login(page: Page, email: str) -> dict[str, Any]:
    answer = await run(page, "([e, p]) => spa.login(e, p)", email, PASSWORD)
    assert answer["status"] == 200, answer
    return answer


async def sessions_of(world: World, email: str) -> int:
    conn = await asyncpg.connect(world.server.env["AUTHD_DATABASE_URL"])
    try:
        count: int = await conn.fetchval(
            "SELECT COUNT(*) FROM refresh_families f JOIN users u ON u.id = f.user_id"
            " WHERE u.email = $1", email)
        return count
    finally:
        await conn.close()


async def test_the_spa_logs_in_calls_refreshes_and_logs_out(
    world: World, browser_context: BrowserContext
) -> None:
    """From the allowed origin, with credentials "include": login sets the HttpOnly
    cookie and hands the page an access token (no refresh token), the token reads
    the user's resource, the cookie refreshes the session (a new access token, one
    rotation in the database), logout revokes it, and a refresh afterwards — even
    with the old cookie put back — is refused."""
    create_user(world.server, "spa@example.com")
    page = await spa(browser_context, world, world.app)

    logged_in = await login(page, "spa@example.com")
    assert "refresh_token" not in logged_in["body"]
    sid = sid_of(logged_in["body"]["access_token"])
    cookies = await browser_context.cookies(world.server.base_url + "/v1/refresh")
    assert [(c["name"], c["httpOnly"], c["secure"]) for c in cookies] == [
        ("authd_refresh", True, True)]

    resource = await run(page, "() => spa.mfaStatus()")
    assert resource["status"] == 200, resource

    refreshed = await run(page, "() => spa.refresh()")
    assert refreshed["status"] == 200, refreshed
    assert refreshed["body"]["access_token"] != logged_in["body"]["access_token"]
    assert await family(world.server, sid) == Family(tokens=2, spent=1, revoke_reason=None)
    [rotated] = await browser_context.cookies(world.server.base_url + "/v1/refresh")

    logged_out = await run(page, "() => spa.logout()")
    assert logged_out["status"] == 204, logged_out
    assert (await family(world.server, sid)).revoke_reason == "logout"

    after = await run(page, "() => spa.refresh()")
    assert after["status"] == 400, after
    await browser_context.add_cookies([{  # the cookie the logout cleared, put back
        "name": rotated["name"], "value": rotated["value"], "domain": rotated["domain"],
        "path": rotated["path"], "secure": True, "httpOnly": True, "sameSite": "Strict"}])
    replayed = await run(page, "() => spa.refresh()")
    assert replayed["status"] == 400, replayed
    assert replayed["body"]["type"] == "urn:authd:problem:invalid_grant"


async def test_the_same_spa_on_an_origin_not_on_the_list_is_blocked(
    world: World, browser_context: BrowserContext
) -> None:
    """From an origin authd does not list, the browser's preflight is refused, so
    the login request is never sent: the page sees a network error and no session
    is created."""
    create_user(world.server, "stranger@example.com")
    page = await spa(browser_context, world, world.stranger)
    answer = await run(page, "([e, p]) => spa.login(e, p)", "stranger@example.com", PASSWORD)
    assert answer["status"] == 0, answer
    assert "Failed to fetch" in answer["error"]
    assert await sessions_of(world, "stranger@example.com") == 0


@pytest.mark.parametrize(("origin", "enctype"), [
    ("stranger", "application/x-www-form-urlencoded"),
    ("stranger", "text/plain"),
    ("app", "application/x-www-form-urlencoded"),
])
async def test_a_cross_origin_form_post_to_refresh_rotates_nothing(
    world: World, browser_context: BrowserContext, origin: str, enctype: str
) -> None:
    """An HTML form on another page — even one of the allowed origin — posting to
    ``/v1/refresh`` goes out with the cookie (same site, so ``SameSite=Strict``
    lets it), is refused with 403 ``cross_site_request``, and the family is as it
    was: nothing rotated, nothing revoked."""
    email = f"form-{origin}-{enctype.split('/')[1]}@example.com"
    create_user(world.server, email)
    page = await spa(browser_context, world, world.app)
    sid = sid_of((await login(page, email))["body"]["access_token"])

    site = world.stranger if origin == "stranger" else world.app
    await page.goto(world.page_url(site, "form.html", enctype=enctype))
    async with page.expect_response(world.server.base_url + "/v1/refresh") as answered:
        await page.evaluate("() => document.getElementById('forged').submit()")
    response = await answered.value
    assert response.status == 403
    assert json.loads(await response.body())["type"] == "urn:authd:problem:cross_site_request"
    assert "authd_refresh=" in (await response.request.all_headers()).get("cookie", "")
    assert await family(world.server, sid) == UNTOUCHED
