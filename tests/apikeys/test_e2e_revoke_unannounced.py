"""A key revocation that no channel carried to the other replicas is not a 200.

The real server on PostgreSQL + Redis: Redis is cut at a TCP forwarder and PostgreSQL
refuses change-cursor rows through a trigger (a real statement failure), so neither
path by which other replicas learn of a revocation takes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import asyncpg
import httpx
import pytest

from tests.apikeys.support import Admin, bootstrap
from tests.support.databases import REDIS_URL
from tests.support.forwarder import Forwarder
from tests.support.servers import Server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

REFUSE_CHANGES = """
CREATE FUNCTION authd_test_refuse_change() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RAISE EXCEPTION 'change rows refused by the test'; END $$;
CREATE TRIGGER authd_test_refuse_change BEFORE INSERT ON changes
  FOR EACH ROW EXECUTE FUNCTION authd_test_refuse_change();
"""
ACCEPT_CHANGES = """
DROP TRIGGER authd_test_refuse_change ON changes;
DROP FUNCTION authd_test_refuse_change();
"""


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def cut_off(
    start_server: Callable[..., Server], server_env: dict[str, str],
    redis_forwarder: Forwarder,
) -> Iterator[tuple[Admin, Callable[[], None]]]:
    """A server and its admin; calling the second item cuts both announcement paths,
    which are restored after the test."""
    env = {**server_env, "AUTHD_REDIS_URL": redis_forwarder.url_through(REDIS_URL)}
    server = start_server(env)
    server.wait_ready()
    admin = bootstrap(server)
    url = server_env["AUTHD_DATABASE_URL"]
    refused = False

    def cut() -> None:
        nonlocal refused
        redis_forwarder.stop()
        asyncio.run(_execute(url, REFUSE_CHANGES))
        refused = True

    yield admin, cut
    if refused:
        asyncio.run(_execute(url, ACCEPT_CHANGES))
    if not redis_forwarder.running:
        redis_forwarder.start()


def _post(admin: Admin, path: str) -> httpx.Response:
    return httpx.post(admin.server.base_url + path, headers={"X-API-Key": admin.admin_key},
                      timeout=10)


def test_a_key_revocation_no_channel_announced_answers_503(
    cut_off: tuple[Admin, Callable[[], None]],
) -> None:
    """With the change row refused and Redis down, revoking a key answers 503 problem+json
    with Retry-After, and the key is revoked in the database all the same."""
    admin, cut = cut_off
    client = admin.client("announce", "read:things")
    key = admin.key(client["id"])
    cut()
    answer = _post(admin, f"/admin/apikeys/{key['id']}/revoke")
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["retry-after"] == "1"
    assert answer.json()["status"] == 503
    listed = admin.call("GET", f"/admin/clients/{client['id']}/keys")
    assert [k["status"] for k in listed["keys"] if k["id"] == key["id"]] == ["revoked"]


def test_disabling_a_client_no_channel_announced_answers_503(
    cut_off: tuple[Admin, Callable[[], None]],
) -> None:
    """Disabling a client is refused with 503 likewise when nothing carried it."""
    admin, cut = cut_off
    client = admin.client("announce-client", "read:things")
    cut()
    answer = _post(admin, f"/admin/clients/{client['id']}/disable")
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_key_revocation_retried_once_a_channel_is_back_answers_200(
    cut_off: tuple[Admin, Callable[[], None]], redis_forwarder: Forwarder,
) -> None:
    """Retrying the revocation when Redis answers again announces it: 200."""
    admin, cut = cut_off
    client = admin.client("announce-retry", "read:things")
    key = admin.key(client["id"])
    cut()
    assert _post(admin, f"/admin/apikeys/{key['id']}/revoke").status_code == 503
    redis_forwarder.start()
    answer = _post(admin, f"/admin/apikeys/{key['id']}/revoke")
    assert answer.status_code == 200
    assert answer.json()["status"] == "revoked"
