"""AUTHD_CORS_ORIGINS: exact origins only, checked at start-up, naming the variable."""

from __future__ import annotations

import pytest

from service.config import ConfigError, Settings

DATABASE = {"AUTHD_DATABASE_URL": "postgresql://db/authd", "AUTHD_KEK": "q" * 43 + "=",
            "AUTHD_ISSUER": "https://auth.example.com"}


def test_cors_is_off_by_default() -> None:
    """Unset, no origin is allowed."""
    assert Settings.from_env({}).cors_origins == ()


def test_origins_are_read_in_their_serialized_form() -> None:
    """Case and a default port do not matter: each entry becomes the string a browser
    sends in ``Origin``; duplicates collapse."""
    settings = Settings.from_env({**DATABASE, "AUTHD_CORS_ORIGINS":
                                  "https://App.Example.com:443, https://app.example.com,"
                                  "https://admin.example.com:8443"})
    assert settings.cors_origins == ("https://app.example.com", "https://admin.example.com:8443")


@pytest.mark.parametrize("value", [
    "*", "https://*.example.com", "null", "https://app.example.com/", "https://app.example.com/spa",
    "https://app.example.com?x=1", "ftp://app.example.com", "app.example.com",
    "https://user@app.example.com", "https://app.example.com:99999", "https://bücher.example",
])
def test_anything_but_an_exact_origin_is_refused(value: str) -> None:
    """Wildcards, ``null``, paths, queries, other schemes, user info, bad ports and
    non-ASCII hosts each stop start-up with an error naming AUTHD_CORS_ORIGINS."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**DATABASE, "AUTHD_CORS_ORIGINS": f"https://ok.example.com,{value}"})
    assert caught.value.variable == "AUTHD_CORS_ORIGINS"


def test_a_wildcard_is_refused_because_credentials_are_allowed() -> None:
    """The refusal of ``*`` says why: these origins may send the user's credentials."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUTHD_CORS_ORIGINS": "*"})
    assert "credentials" in caught.value.problem


def test_a_routable_plain_http_origin_is_refused_in_production() -> None:
    """A page served over plain http could be altered in transit, so such an origin
    needs the same explicit opt-in as an http issuer."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**DATABASE, "AUTHD_CORS_ORIGINS": "http://app.example.com"})
    assert caught.value.variable == "AUTHD_CORS_ORIGINS"
    assert "AUTHD_ALLOW_HTTP_ISSUER" in caught.value.problem


def test_a_loopback_http_origin_is_accepted_in_production() -> None:
    """A developer's SPA on http://127.0.0.1 or localhost is not reachable from outside."""
    settings = Settings.from_env({**DATABASE, "AUTHD_CORS_ORIGINS":
                                  "http://127.0.0.1:5173,http://localhost:3000"})
    assert settings.cors_origins == ("http://127.0.0.1:5173", "http://localhost:3000")


def test_browser_origins_are_the_issuer_and_the_allow_list() -> None:
    """The refresh cookie's CSRF rule accepts the issuer's own origin and the list."""
    settings = Settings.from_env({**DATABASE, "AUTHD_ISSUER": "https://Auth.example.com:443/",
                                  "AUTHD_CORS_ORIGINS": "https://app.example.com"})
    assert settings.browser_origins == {"https://auth.example.com", "https://app.example.com"}
