"""authd serves HTTPS itself from AUTHD_TLS_CERT_FILE / AUTHD_TLS_KEY_FILE, with
modern suites only, and sends HSTS whenever its issuer is https."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.deploy.tls import CertificateFiles, self_signed
from tests.support.servers import Server

pytestmark = pytest.mark.e2e


@pytest.fixture
def certificate(tmp_path: Path) -> CertificateFiles:
    return self_signed(tmp_path)


@pytest.fixture
def tls_server(server_env: dict[str, str], certificate: CertificateFiles,
               start_server: Callable[..., Server]) -> Server:
    return start_server({**server_env, "AUTHD_TLS_CERT_FILE": str(certificate.cert),
                         "AUTHD_TLS_KEY_FILE": str(certificate.key)})


def trusting(certificate: CertificateFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate.cert))


def test_serves_https_with_the_given_certificate(
    tls_server: Server, certificate: CertificateFiles
) -> None:
    """A client that trusts only the test certificate completes a verified HTTPS request."""
    assert tls_server.base_url.startswith("https://")
    response = httpx.get(f"{tls_server.base_url}/healthz", verify=trusting(certificate))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_https_responses_carry_hsts(tls_server: Server, certificate: CertificateFiles) -> None:
    """With TLS on, the issuer is https and every response sends Strict-Transport-Security."""
    with httpx.Client(base_url=tls_server.base_url, verify=trusting(certificate)) as client:
        for path in ("/healthz", "/.well-known/jwks.json", "/no-such-route"):
            header = client.get(path).headers.get("strict-transport-security", "")
            max_age = header.removeprefix("max-age=").split(";")[0]
            assert max_age.isdigit() and int(max_age) >= 365 * 86400, header


def test_cleartext_http_is_not_served_on_the_tls_port(tls_server: Server) -> None:
    """A plain-http request to the TLS listener gets no HTTP answer."""
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{tls_server.port}/healthz", timeout=5)


def test_weak_tls12_suites_are_refused(tls_server: Server) -> None:
    """A TLS 1.2 client offering only a CBC/SHA-1 suite cannot complete the handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-ECDSA-AES128-SHA")
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw).close()


def test_tls12_with_a_modern_suite_is_accepted(tls_server: Server) -> None:
    """A TLS 1.2 client offering ECDHE with AES-GCM completes the handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw:
        with context.wrap_socket(raw) as secured:
            assert secured.version() == "TLSv1.2"


def test_an_https_issuer_behind_a_proxy_sends_hsts(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """authd behind a TLS-terminating proxy (plain http, https issuer) still sends HSTS."""
    server = start_server({**server_env, "AUTHD_ISSUER": "https://auth.example.com"})
    response = httpx.get(f"{server.base_url}/healthz")
    assert "strict-transport-security" in response.headers


def test_an_http_issuer_sends_no_hsts(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """A local http:// deployment does not pin browsers to HTTPS."""
    server = start_server(server_env)
    response = httpx.get(f"{server.base_url}/healthz")
    assert "strict-transport-security" not in response.headers
