"""/oauth/introspect and /oauth/revoke as standard OAuth clients call them (RFC 7662
§2.1, RFC 7009 §2.1): Authlib's OAuth2Session (Python) and openid-client (node),
unmodified, authenticating as a client with ``client_secret_basic`` or
``client_secret_post`` against a real server."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session

from tests.support.node import run_script
from tests.support.servers import Server

pytestmark = pytest.mark.e2e


def _client_with_key(server: Server, name: str, scope: str) -> tuple[str, str]:
    created = json.loads(server.cli(["--json", "clients", "create", name,
                                     "--scope", scope]).stdout)
    issued = json.loads(server.cli(["--json", "apikeys", "create", "--client",
                                    created["id"]]).stdout)
    return str(created["id"]), str(issued["api_key"])


@pytest.fixture
def server(server_env: dict[str, str], start_server: Callable[..., Server]) -> Server:
    return start_server({**server_env, "AUTHD_FAILED_API_KEY_RATE": "3/m"})


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_fetches_introspects_and_revokes_as_a_client(server: Server, method: str) -> None:
    """Authlib gets a token by client_credentials, introspects it (active, with its
    claims) and revokes it (then inactive), authenticating the way ``method`` says."""
    client_id, secret = _client_with_key(server, "gateway", "authd:introspect read")
    base = server.base_url
    with OAuth2Session(client_id, secret, token_endpoint_auth_method=method) as oauth:
        token = oauth.fetch_token(f"{base}/oauth/token", grant_type="client_credentials",
                                  scope="read", timeout=30)
        introspected = oauth.introspect_token(f"{base}/oauth/introspect",
                                              token=token["access_token"], timeout=30)
        assert introspected.status_code == 200, introspected.text
        body = introspected.json()
        assert body["active"] is True
        assert (body["client_id"], body["sub"], body["scope"]) == (client_id, client_id, "read")
        revoked = oauth.revoke_token(f"{base}/oauth/revoke", token=token["access_token"],
                                     token_type_hint="access_token", timeout=30)
        assert revoked.status_code == 200, revoked.text
        after = oauth.introspect_token(f"{base}/oauth/introspect",
                                       token=token["access_token"], timeout=30)
    assert after.json() == {"active": False}


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_openid_client_discovers_introspects_and_revokes(server: Server, method: str) -> None:
    """node openid-client finds the endpoints in the RFC 8414 metadata, gets a token,
    introspects it (active), revokes it and introspects it again (inactive)."""
    client_id, secret = _client_with_key(server, "node-gateway", "authd:introspect read")
    seen = run_script("openid_client_introspect.mjs", server.base_url, client_id, secret,
                      method)
    assert seen["before"]["active"] is True
    assert (seen["before"]["client_id"], seen["before"]["scope"]) == (client_id, "read")
    assert seen["after"] == {"active": False}


def test_a_bad_client_secret_is_invalid_client_and_spends_the_budget(server: Server) -> None:
    """A wrong secret is 401 invalid_client with a Basic challenge (RFC 6749 §5.2); past
    the address's API-key budget the next failing attempt is 429, while the right
    secret is still served."""
    client_id, secret = _client_with_key(server, "gateway", "authd:introspect")
    wrong = secret[:-8] + ("A" if secret[-8] != "A" else "B") + secret[-7:]
    url = server.base_url + "/oauth/introspect"
    with httpx.Client(timeout=30) as http:
        failures = [http.post(url, data={"token": "x"}, auth=(client_id, wrong))
                    for _ in range(3)]
        limited = http.post(url, data={"token": "x"}, auth=(client_id, wrong))
        served = http.post(url, data={"token": "x"}, auth=(client_id, secret))
    for failure in failures:
        assert failure.status_code == 401, failure.text
        assert failure.json()["error"] == "invalid_client"
        assert failure.headers["www-authenticate"].startswith("Basic ")
    assert limited.status_code == 429
    assert served.status_code == 200 and served.json() == {"active": False}


def test_a_client_without_the_introspect_scope_is_forbidden(server: Server) -> None:
    """An authenticated client lacking authd:introspect gets 403 insufficient_scope."""
    client_id, secret = _client_with_key(server, "reader", "read")
    response = httpx.post(server.base_url + "/oauth/introspect",
                          data={"token": "x", "client_id": client_id, "client_secret": secret},
                          timeout=30)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "insufficient_scope"


def test_a_bearer_token_with_the_scope_still_introspects(server: Server) -> None:
    """A Bearer access token holding authd:introspect is accepted as before."""
    client_id, secret = _client_with_key(server, "gateway", "authd:introspect")
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        token = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(client_id, secret)).json()["access_token"]
        answer = http.post("/oauth/introspect", data={"token": token},
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is True


def test_two_client_authentication_methods_at_once_are_refused(server: Server) -> None:
    """Basic and a posted client_secret together are 400 invalid_request, not a guess."""
    client_id, secret = _client_with_key(server, "gateway", "authd:introspect")
    response = httpx.post(server.base_url + "/oauth/introspect",
                          data={"token": "x", "client_secret": secret},
                          auth=(client_id, secret), timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


def test_metadata_names_the_client_authentication_methods(server: Server) -> None:
    """RFC 8414 metadata lists how introspection and revocation callers authenticate."""
    metadata = httpx.get(server.base_url + "/.well-known/oauth-authorization-server",
                         timeout=30).json()
    assert metadata["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic", "client_secret_post"]
    assert metadata["revocation_endpoint_auth_methods_supported"] == [
        "client_secret_basic", "client_secret_post", "none"]
