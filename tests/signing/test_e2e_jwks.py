"""The JWKS, the RFC 8414 metadata, the admin key API and start-up with a wrong KEK."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.signing.e2e import admin_key, has_private_material, jwks_kids
from tests.support.servers import REPO, Server, base_env, free_port, new_kek

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture
def server(server_env: dict[str, str], start_server: Callable[..., Server]) -> Server:
    return start_server({**server_env, "AUTHD_JWKS_MAX_AGE": "1"})


def test_jwks_is_rfc7517_with_cache_headers(server: Server) -> None:
    """The JWKS lists next and active keys with public members only, an ETag and
    Cache-Control public max-age."""
    response = httpx.get(f"{server.base_url}/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=1"
    assert response.headers["etag"].startswith('"')
    keys = response.json()["keys"]
    assert len(keys) == 2
    for jwk in keys:
        assert set(jwk) == {"kty", "kid", "use", "alg", "n", "e"}
        assert (jwk["kty"], jwk["use"], jwk["alg"]) == ("RSA", "sig", "RS256")
    assert not has_private_material(response.text)


def test_matching_if_none_match_gets_304(server: Server) -> None:
    """A request carrying the current ETag gets 304 with no body."""
    first = httpx.get(f"{server.base_url}/.well-known/jwks.json")
    again = httpx.get(f"{server.base_url}/.well-known/jwks.json",
                      headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    stale = httpx.get(f"{server.base_url}/.well-known/jwks.json",
                      headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200


def test_etag_changes_when_the_key_set_changes(server: Server) -> None:
    """After a rotation the JWKS has a new ETag and the old one no longer matches."""
    before = httpx.get(f"{server.base_url}/.well-known/jwks.json").headers["etag"]
    while server.cli(["keys", "rotate"], check=False).returncode != 0:
        time.sleep(0.3)
    deadline = time.monotonic() + 2
    response = httpx.get(f"{server.base_url}/.well-known/jwks.json",
                         headers={"If-None-Match": before})
    while response.status_code == 304 and time.monotonic() < deadline:
        time.sleep(0.05)
        response = httpx.get(f"{server.base_url}/.well-known/jwks.json",
                             headers={"If-None-Match": before})
    assert response.status_code == 200 and response.headers["etag"] != before
    assert len(response.json()["keys"]) == 3


def test_metadata_is_rfc8414(server: Server) -> None:
    """The metadata names the issuer, endpoints, jwks_uri, grant types and auth methods."""
    response = httpx.get(f"{server.base_url}/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    doc = response.json()
    issuer = doc["issuer"]
    # No AUTHD_ISSUER: the default is built from the host and the --port served.
    assert issuer == server.base_url
    assert doc["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert doc["token_endpoint"] == f"{issuer}/oauth/token"
    assert doc["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert doc["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert doc["grant_types_supported"] == [
        "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"]
    assert "token_endpoint_auth_signing_alg_values_supported" not in doc
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic", "client_secret_post"}


def test_admin_key_api_needs_the_admin_scope(server: Server) -> None:
    """Listing, rotating and revoking signing keys without credentials is a 401."""
    for method, path in (("GET", "/admin/keys"), ("POST", "/admin/keys/rotate"),
                         ("POST", "/admin/keys/abc/revoke")):
        response = httpx.request(method, f"{server.base_url}{path}")
        assert response.status_code == 401


def test_admin_rotation_too_early_is_409_with_retry_after(server: Server) -> None:
    """An early rotation is refused with 409, the time it becomes possible and Retry-After."""
    api_key = admin_key(server)
    response = httpx.post(f"{server.base_url}/admin/keys/rotate",
                          headers={"X-API-Key": api_key})
    assert response.status_code == 409
    assert "rotation is possible from" in response.json()["detail"]
    assert int(response.headers["retry-after"]) >= 1


def test_admin_list_rotate_and_revoke(server: Server) -> None:
    """The admin API lists keys, rotates when allowed and revokes a key by kid."""
    api_key = admin_key(server)
    headers = {"X-API-Key": api_key}
    listed = httpx.get(f"{server.base_url}/admin/keys", headers=headers).json()["keys"]
    assert sorted(k["state"] for k in listed) == ["active", "next"]
    time.sleep(3.1)
    rotated = httpx.post(f"{server.base_url}/admin/keys/rotate", headers=headers)
    assert rotated.status_code == 200
    change = rotated.json()
    revoked = httpx.post(f"{server.base_url}/admin/keys/{change['retired']}/revoke",
                         headers=headers)
    assert revoked.status_code == 200
    assert change["retired"] not in jwks_kids(server)
    missing = httpx.post(f"{server.base_url}/admin/keys/no-such-kid/revoke", headers=headers)
    assert missing.status_code == 404
    again = httpx.post(f"{server.base_url}/admin/keys/{change['retired']}/revoke",
                       headers=headers)
    assert again.status_code == 409
    assert not has_private_material(server.logs())


def test_wrong_kek_stops_start_up_with_one_line(
    server_env: dict[str, str], start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """A server started with another KEK exits non-zero with one line naming the kid,
    no traceback, and creates no new key."""
    good = start_server(server_env)
    states = json.loads(good.cli(["--json", "keys", "list"]).stdout)["keys"]
    good.stop()
    env = base_env({**server_env, "AUTHD_KEK": new_kek()})
    result = subprocess.run([sys.executable, "-m", "service", "serve", "--port", str(free_port())],
                            env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    failure = [line for line in output.splitlines() if "cannot be decrypted" in line]
    assert len(failure) == 1
    assert any(k["kid"] in failure[0] for k in states)
    assert "Traceback" not in output
    assert not has_private_material(output)
    after = json.loads(good.cli(["--json", "keys", "list"]).stdout)["keys"]
    assert after == states


def test_cli_change_reaches_an_embedded_server_without_redis(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    """On SQLite without Redis, a CLI revocation reaches the running server by its poll."""
    env = {"AUTHD_DATABASE_URL": f"sqlite:///{tmp_path / 'authd.sqlite3'}",
           "AUTHD_KEK": new_kek(), "AUTHD_JWKS_MAX_AGE": "1"}
    server = start_server(env)
    server.wait_ready()
    listed = json.loads(server.cli(["--json", "keys", "list"]).stdout)["keys"]
    next_kid = next(k["kid"] for k in listed if k["state"] == "next")
    server.cli(["keys", "revoke", next_kid])
    deadline = time.monotonic() + 2.0
    while next_kid in jwks_kids(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert next_kid not in jwks_kids(server)
    assert len(jwks_kids(server)) == 2
