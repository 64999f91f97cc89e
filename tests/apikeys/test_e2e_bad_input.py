"""Every malformed or unauthorised token request gets a clear RFC 6749 error, never a
500, and changes nothing (issue 5, "Bad input")."""

from __future__ import annotations

import asyncio
import base64
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.apikeys import keyformat
from tests.apikeys.support import Admin, bootstrap, key_rows
from tests.support.databases import REDIS_URL, create_database
from tests.support.servers import Server, free_port, new_kek

pytestmark = [
    pytest.mark.e2e,
    # tests/support/servers.py leaves each server's log file open (reported to the lead).
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@dataclass
class World:
    server: Server
    database_url: str
    client_a: str
    client_b: str
    key_a: str
    key_b: str
    revoked: str
    expired: str
    disabled: str
    admin: Admin


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    database_url = await create_database("apikeys_bad")
    env = {
        "AUTHD_DATABASE_URL": database_url,
        "AUTHD_REDIS_URL": REDIS_URL,
        "AUTHD_REDIS_PREFIX": f"authd-test:{keyformat.new_id('', 8)}:",
        "AUTHD_KEK": new_kek(),
        # Every refusal here comes from one address; the per-IP limit has its own test.
        "AUTHD_FAILED_LOGIN_RATE": "100000/m",
        "AUTHD_FAILED_API_KEY_RATE": "100000/m",
    }
    log = Path(tmp_path_factory.mktemp("bad")) / "server.log"
    server = Server(env=env, port=free_port(), log_path=log)
    server.cli(["migrate"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        server.start()
    try:
        admin: Admin = bootstrap(server)
        a = admin.client("client-a", "read write")
        b = admin.client("client-b", "read")
        c = admin.client("client-c", "read")
        key_a = admin.key(a["id"], scopes="read")["api_key"]
        key_b = admin.key(b["id"])["api_key"]
        revoked = admin.key(a["id"])
        admin.call("POST", f"/admin/apikeys/{revoked['id']}/revoke")
        expired = admin.key(a["id"], expires_in=1)["api_key"]
        disabled = admin.key(c["id"])["api_key"]
        admin.call("POST", f"/admin/clients/{c['id']}/disable")
        await asyncio.sleep(1.1)  # let the one-second key expire
        yield World(server, database_url, a["id"], b["id"], key_a, key_b,
                    revoked["api_key"], expired, disabled, admin)
    finally:
        server.stop()


def _oauth(world: World, data: Any = None, *, auth: tuple[str, str] | None = None,
           headers: dict[str, str] | None = None, content: bytes | None = None) -> httpx.Response:
    return httpx.post(world.server.base_url + "/oauth/token", data=data, auth=auth,
                      headers=headers, content=content, timeout=10)


def _v1(world: World, headers: dict[str, str], **kw: Any) -> httpx.Response:
    return httpx.post(world.server.base_url + "/v1/token", headers=headers, timeout=10, **kw)


async def _refused(world: World, response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error_description"]
    assert "access_token" not in body
    assert response.headers["cache-control"] == "no-store"


@pytest.fixture
async def unchanged(world: World) -> AsyncIterator[None]:
    before = await key_rows(world.database_url)
    yield
    assert await key_rows(world.database_url) == before


@pytest.mark.usefixtures("unchanged")
async def test_missing_key_is_invalid_client(world: World) -> None:
    """/v1/token without any credential is invalid_client."""
    await _refused(world, _v1(world, {}), 401, "invalid_client")


@pytest.mark.usefixtures("unchanged")
async def test_empty_key_is_invalid_client(world: World) -> None:
    """An empty X-API-Key is invalid_client."""
    await _refused(world, _v1(world, {"X-API-Key": ""}), 401, "invalid_client")


@pytest.mark.usefixtures("unchanged")
async def test_wrong_prefix_is_invalid_client(world: World) -> None:
    """A well-formed key of another environment's prefix is invalid_client."""
    other = keyformat.generate("ak_test")
    await _refused(world, _v1(world, {"X-API-Key": other}), 401, "invalid_client")


@pytest.mark.usefixtures("unchanged")
async def test_bad_checksum_is_invalid_client(world: World) -> None:
    """A key whose checksum does not match is invalid_client."""
    broken = world.key_a[:-1] + ("A" if world.key_a[-1] != "A" else "B")
    response = _v1(world, {"X-API-Key": broken})
    await _refused(world, response, 401, "invalid_client")
    assert "malformed" in response.json()["error_description"]


@pytest.mark.usefixtures("unchanged")
async def test_unknown_key_is_invalid_client(world: World) -> None:
    """A well-formed key that was never issued is invalid_client."""
    response = _v1(world, {"X-API-Key": keyformat.generate("ak_live")})
    await _refused(world, response, 401, "invalid_client")


@pytest.mark.usefixtures("unchanged")
async def test_revoked_key_is_invalid_client(world: World) -> None:
    """A revoked key is invalid_client."""
    response = _v1(world, {"X-API-Key": world.revoked})
    await _refused(world, response, 401, "invalid_client")
    assert "revoked" in response.json()["error_description"]


@pytest.mark.usefixtures("unchanged")
async def test_expired_key_is_invalid_client(world: World) -> None:
    """A key past its expiry is invalid_client."""
    response = _v1(world, {"X-API-Key": world.expired})
    await _refused(world, response, 401, "invalid_client")
    assert "expired" in response.json()["error_description"]


@pytest.mark.usefixtures("unchanged")
async def test_key_of_disabled_client_is_invalid_client(world: World) -> None:
    """A key of a disabled client is invalid_client."""
    response = _v1(world, {"X-API-Key": world.disabled})
    await _refused(world, response, 401, "invalid_client")
    assert "disabled" in response.json()["error_description"]


@pytest.mark.usefixtures("unchanged")
async def test_key_of_client_a_with_client_id_of_b_is_invalid_client(world: World) -> None:
    """client_secret_basic with B's id and A's key is invalid_client with a Basic challenge."""
    response = _oauth(world, {"grant_type": "client_credentials"},
                      auth=(world.client_b, world.key_a))
    await _refused(world, response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.usefixtures("unchanged")
async def test_scope_beyond_the_key_is_invalid_scope(world: World) -> None:
    """Asking for a scope the key does not hold is invalid_scope."""
    response = _oauth(world, {"grant_type": "client_credentials", "scope": "read write"},
                      auth=(world.client_a, world.key_a))
    await _refused(world, response, 400, "invalid_scope")


@pytest.mark.usefixtures("unchanged")
async def test_audience_not_allowed_is_invalid_target(world: World) -> None:
    """Asking for an audience the client may not use is invalid_target."""
    response = _v1(world, {"X-API-Key": world.key_a}, data={"audience": "someone-else"})
    await _refused(world, response, 400, "invalid_target")


@pytest.mark.usefixtures("unchanged")
async def test_unknown_grant_type_is_unsupported_grant_type(world: World) -> None:
    """A grant_type nobody registered is unsupported_grant_type."""
    response = _oauth(world, {"grant_type": "password", "username": "u", "password": "p"},
                      auth=(world.client_a, world.key_a))
    await _refused(world, response, 400, "unsupported_grant_type")


@pytest.mark.usefixtures("unchanged")
async def test_missing_grant_type_is_invalid_request(world: World) -> None:
    """A token request without grant_type is invalid_request."""
    response = _oauth(world, {"scope": "read"}, auth=(world.client_a, world.key_a))
    await _refused(world, response, 400, "invalid_request")


@pytest.mark.usefixtures("unchanged")
async def test_json_body_on_oauth_token_is_invalid_request(world: World) -> None:
    """/oauth/token takes a form; a JSON body is invalid_request."""
    response = _oauth(world, auth=(world.client_a, world.key_a),
                      headers={"Content-Type": "application/json"},
                      content=b'{"grant_type": "client_credentials"}')
    await _refused(world, response, 400, "invalid_request")


@pytest.mark.usefixtures("unchanged")
async def test_repeated_parameter_is_invalid_request(world: World) -> None:
    """A parameter sent twice is invalid_request (RFC 6749 §3.2)."""
    response = _oauth(world, auth=(world.client_a, world.key_a),
                      headers={"Content-Type": "application/x-www-form-urlencoded"},
                      content=b"grant_type=client_credentials&grant_type=client_credentials")
    await _refused(world, response, 400, "invalid_request")


@pytest.mark.usefixtures("unchanged")
async def test_ten_kilobyte_header_is_refused_cleanly(world: World) -> None:
    """A 10 KB X-API-Key is invalid_client, not a crash."""
    response = _v1(world, {"X-API-Key": "ak_live_" + "A" * 10240})
    await _refused(world, response, 401, "invalid_client")


@pytest.mark.usefixtures("unchanged")
async def test_non_utf8_header_bytes_are_refused_cleanly(world: World) -> None:
    """A key header holding non-UTF-8 bytes is invalid_client."""
    raw = world.key_a[:-2].encode() + b"\xff\xfe"
    response = _v1(world, {"X-API-Key": raw})  # type: ignore[dict-item]
    await _refused(world, response, 401, "invalid_client")


@pytest.mark.usefixtures("unchanged")
async def test_non_utf8_form_body_is_invalid_request(world: World) -> None:
    """A form body that is not UTF-8 is invalid_request."""
    response = _oauth(world, auth=(world.client_a, world.key_a),
                      headers={"Content-Type": "application/x-www-form-urlencoded"},
                      content=b"grant_type=client_credentials&scope=\xff\xfe")
    await _refused(world, response, 400, "invalid_request")


@pytest.mark.usefixtures("unchanged")
async def test_non_utf8_basic_credentials_are_invalid_client(world: World) -> None:
    """Basic credentials that decode to non-UTF-8 bytes are invalid_client."""
    encoded = base64.b64encode(b"\xff\xfe:\xfd").decode()
    response = _oauth(world, {"grant_type": "client_credentials"},
                      headers={"Authorization": "Basic " + encoded})
    await _refused(world, response, 401, "invalid_client")


@pytest.mark.usefixtures("unchanged")
async def test_same_key_twice_with_different_values_is_invalid_request(world: World) -> None:
    """X-API-Key and Authorization: ApiKey carrying different keys is invalid_request."""
    response = _v1(world, {"X-API-Key": world.key_a, "Authorization": f"ApiKey {world.key_b}"})
    await _refused(world, response, 400, "invalid_request")


@pytest.mark.usefixtures("unchanged")
async def test_two_client_authentication_methods_is_invalid_request(world: World) -> None:
    """Basic credentials and a client_secret in the form together is invalid_request."""
    response = _oauth(world, {"grant_type": "client_credentials",
                              "client_secret": world.key_a},
                      auth=(world.client_a, world.key_a))
    await _refused(world, response, 400, "invalid_request")


async def test_no_key_reaches_the_logs(world: World) -> None:
    """No API key issued or presented in this module appears in the server's log."""
    _v1(world, {"X-API-Key": world.key_a})
    logs = world.server.logs()
    for key in (world.key_a, world.key_b, world.revoked, world.expired, world.disabled):
        assert key not in logs
        assert key[len("ak_live_"):-6] not in logs


async def _rows_but_last_use(world: World) -> list[dict[str, Any]]:
    """Key and client rows without last_used_at, which an earlier test's exchange may
    still be writing (usage is recorded after the answer)."""
    return [{k: v for k, v in row.items() if k != "last_used_at"}
            for row in await key_rows(world.database_url)]


def _admin_post(world: World, path: str, raw_json: str) -> httpx.Response:
    return httpx.post(world.server.base_url + path, content=raw_json, timeout=10,
                      headers={"X-API-Key": world.admin.admin_key,
                               "Content-Type": "application/json"})


@pytest.mark.parametrize("raw", ['"' + "9" * 400 + 'd"', "1" + "0" * 400, "1e400", "NaN",
                                 '"36600d"'])
@pytest.mark.parametrize("field", ["token_ttl", "expires_in", "overlap"])
async def test_out_of_range_duration_is_invalid_request(
    world: World, field: str, raw: str
) -> None:
    """A duration beyond 100 years, infinite or overflowing a float is a 400 naming the
    field, not a 500 or an expiry of inf; nothing is created."""
    before = await _rows_but_last_use(world)
    if field == "token_ttl":
        path, body = "/admin/clients", f'{{"name": "d", "scopes": "read", "{field}": {raw}}}'
    elif field == "expires_in":
        path, body = f"/admin/clients/{world.client_a}/keys", f'{{"{field}": {raw}}}'
    else:
        key_id = world.admin.call("GET", f"/admin/clients/{world.client_a}/keys")["keys"][0]["id"]
        path, body = f"/admin/apikeys/{key_id}/rotate", f'{{"{field}": {raw}}}'
    response = _admin_post(world, path, body)
    assert response.status_code == 400, response.text
    assert field in response.text
    assert await _rows_but_last_use(world) == before
