"""The CSRF rule on the real server: a refresh or logout authenticated by the cookie
alone must be JSON from the issuer's or an allow-listed origin; a refused one
rotates and revokes nothing (checked in PostgreSQL)."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.sessions.families import UNTOUCHED, Family, family, sid_of
from tests.sessions.helpers import PASSWORD, create_user
from tests.support.databases import REDIS_URL, RUN_ID, create_database
from tests.support.servers import Server, free_port, new_kek

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

APP_ORIGIN = "https://app.example.com"
SIBLING_ORIGIN = "https://evil.example.com"
EMAIL = "csrf@example.com"


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """A production-shaped server in cookie mode with one allowed origin and a user."""
    root = tmp_path_factory.mktemp("csrf")
    env = {
        "AUTHD_DATABASE_URL": await create_database("csrf"),
        "AUTHD_REDIS_URL": REDIS_URL,
        "AUTHD_REDIS_PREFIX": f"authd-test:{RUN_ID}:csrf:",
        "AUTHD_KEK": new_kek(),
        "AUTHD_REFRESH_COOKIE": "true",
        "AUTHD_CORS_ORIGINS": APP_ORIGIN,
    }
    started = Server(env=env, port=free_port(), log_path=root / "server.log")
    started.cli(["migrate"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        started.start()
    create_user(started, EMAIL)
    yield started
    started.stop()


async def new_session(server: Server) -> tuple[str, str]:
    """Log in; return the refresh cookie and the session id."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.post("/v1/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.cookies["authd_refresh"], sid_of(response.json()["access_token"])


async def post(server: Server, path: str, cookie: str, headers: dict[str, str],
               **body: Any) -> httpx.Response:
    """POST with the cookie set by hand: it is Secure, and this is plain http."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        return await http.post(path, headers={"Cookie": f"authd_refresh={cookie}", **headers},
                               **body)


@pytest.mark.parametrize("headers", [
    {"Origin": APP_ORIGIN},
    {"Referer": APP_ORIGIN + "/account"},
], ids=["allowed-origin", "allowed-referer"])
async def test_json_from_an_allowed_page_refreshes_through_the_cookie(
    server: Server, headers: dict[str, str]
) -> None:
    """The SPA's refresh — a JSON body, the allowed origin in Origin or Referer —
    rotates the session and sets the successor cookie."""
    cookie, sid = await new_session(server)
    response = await post(server, "/v1/refresh", cookie, headers, json={})
    assert response.status_code == 200, response.text
    assert response.cookies["authd_refresh"] != cookie
    assert await family(server, sid) == Family(tokens=2, spent=1, revoke_reason=None)


async def test_json_from_the_issuers_own_origin_refreshes_through_the_cookie(
    server: Server
) -> None:
    """A page served by the issuer's own origin needs no allow-list entry."""
    cookie, _ = await new_session(server)
    response = await post(server, "/v1/refresh", cookie, {"Origin": server.base_url}, json={})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("headers", "body"), [
    ({"Origin": SIBLING_ORIGIN}, {"json": {}}),
    ({"Origin": "null"}, {"json": {}}),
    ({}, {"json": {}}),
    ({"Origin": APP_ORIGIN}, {"data": {"x": "1"}}),
    ({"Origin": APP_ORIGIN, "Content-Type": "text/plain"}, {"content": b"{}"}),
    ({"Origin": APP_ORIGIN}, {}),
], ids=["sibling-origin", "origin-null", "no-origin-or-referer", "form-body",
        "text-plain", "no-body"])
async def test_a_cross_site_shaped_refresh_is_refused_and_rotates_nothing(
    server: Server, headers: dict[str, str], body: dict[str, Any]
) -> None:
    """What another page (or an HTML form) could send with the cookie gets a 403
    ``cross_site_request`` problem, and the family is as it was."""
    cookie, sid = await new_session(server)
    response = await post(server, "/v1/refresh", cookie, headers, **body)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:authd:problem:cross_site_request"
    assert "set-cookie" not in response.headers
    assert await family(server, sid) == UNTOUCHED


async def test_a_cross_site_logout_through_the_cookie_revokes_nothing(server: Server) -> None:
    """Logging a user out from another page is refused the same way."""
    cookie, sid = await new_session(server)
    response = await post(server, "/v1/logout", cookie, {"Origin": SIBLING_ORIGIN}, json={})
    assert response.status_code == 403, response.text
    assert await family(server, sid) == UNTOUCHED


async def test_a_refresh_token_in_the_body_needs_no_origin(server: Server) -> None:
    """The rule guards the cookie only: a client sending its token in the body (not
    something a browser attaches by itself) is answered as before."""
    cookie, sid = await new_session(server)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.post("/v1/refresh", json={"refresh_token": cookie})
    assert response.status_code == 200, response.text
    assert await family(server, sid) == Family(tokens=2, spent=1, revoke_reason=None)
