"""An http:// issuer is production-refused: allowed in the embedded default and on
local names, refused with a configured database unless explicitly allowed."""

from __future__ import annotations

import pytest

from service.config import ConfigError, Settings

DATABASE = {"AUTHD_DATABASE_URL": "postgresql://db/authd", "AUTHD_KEK": "q" * 43 + "="}


def test_embedded_default_accepts_an_http_issuer() -> None:
    """`make run` (no database configured) keeps working on http://."""
    assert Settings.from_env({"AUTHD_ISSUER": "http://192.0.2.10:8000"}).issuer.startswith("http:")


def test_a_routable_http_issuer_is_refused_with_a_database() -> None:
    """A production-shaped deployment on a public http:// name fails at start-up."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**DATABASE, "AUTHD_ISSUER": "http://auth.example.com"})
    assert caught.value.variable == "AUTHD_ISSUER"
    assert "AUTHD_ALLOW_HTTP_ISSUER" in str(caught.value)


def test_the_default_issuer_of_a_container_is_refused() -> None:
    """Listening on 0.0.0.0 without an issuer gives http://0.0.0.0:8000, which is refused."""
    with pytest.raises(ConfigError):
        Settings.from_env({**DATABASE, "AUTHD_HOST": "0.0.0.0"})  # noqa: S104


@pytest.mark.parametrize("issuer", [
    "http://127.0.0.1:8000", "http://127.0.0.2:9000", "http://[::1]:8000",
    "http://localhost:8000", "http://authd.test", "http://auth.localhost",
])
def test_local_http_issuers_are_accepted_with_a_database(issuer: str) -> None:
    """Loopback and special-use names (RFC 6761) cannot be reached from outside."""
    assert Settings.from_env({**DATABASE, "AUTHD_ISSUER": issuer}).issuer == issuer


def test_explicit_allow_accepts_any_http_issuer() -> None:
    """AUTHD_ALLOW_HTTP_ISSUER=true is the operator's override, e.g. a private network."""
    settings = Settings.from_env(
        {**DATABASE, "AUTHD_ISSUER": "http://authd.internal", "AUTHD_ALLOW_HTTP_ISSUER": "true"})
    assert settings.allow_http_issuer


def test_explicit_refusal_applies_even_to_loopback() -> None:
    """AUTHD_ALLOW_HTTP_ISSUER=false refuses every http:// issuer."""
    with pytest.raises(ConfigError):
        Settings.from_env({"AUTHD_ALLOW_HTTP_ISSUER": "false"})


def test_an_https_issuer_is_always_accepted() -> None:
    """https:// needs no switch."""
    settings = Settings.from_env({**DATABASE, "AUTHD_ISSUER": "https://auth.example.com",
                                  "AUTHD_ALLOW_HTTP_ISSUER": "false"})
    assert settings.issuer == "https://auth.example.com"
