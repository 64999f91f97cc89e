"""Settings are parsed once, validated, and name the variable when wrong."""

from __future__ import annotations

import pytest

from service.config import ConfigError, Rate, Settings, parse_duration, parse_rate


def test_defaults_are_the_embedded_single_process_shape() -> None:
    """With no environment the service runs on SQLite, without Redis, on loopback."""
    settings = Settings.from_env({})
    assert settings.embedded
    assert settings.redis_url is None
    assert settings.issuer == "http://127.0.0.1:8000"
    assert settings.effective_database_url.startswith("sqlite:///")
    assert settings.access_token_ttl == 900
    assert settings.refresh_token_ttl == 30 * 86400


def test_issuer_follows_host_and_port_when_not_set() -> None:
    """AUTHD_HOST / AUTHD_PORT shape the default issuer."""
    settings = Settings.from_env({"AUTHD_HOST": "127.0.0.2", "AUTHD_PORT": "9001"})
    assert settings.issuer == "http://127.0.0.2:9001"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AUTHD_PORT", "eighty"),
        ("AUTHD_PORT", "70000"),
        ("AUTHD_DATABASE_URL", "mysql://x"),
        ("AUTHD_REDIS_URL", "http://x"),
        ("AUTHD_ISSUER", "not a url"),
        ("AUTHD_ACCESS_TOKEN_TTL", "forever"),
        ("AUTHD_ACCESS_TOKEN_TTL", "2d"),
        ("AUTHD_LOG_FORMAT", "xml"),
        ("AUTHD_RSA_KEY_BITS", "1024"),
        ("AUTHD_API_KEY_DEFAULT_RATE", "lots"),
        ("AUTHD_TRUSTED_PROXIES", "not-a-network"),
        ("AUTHD_KEK_FILE", "/nonexistent/kek"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    """Every malformed setting raises ConfigError carrying the variable's name."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    assert variable in str(caught.value)


def test_a_configured_database_requires_a_kek() -> None:
    """Only the embedded default may generate a KEK; production must be given one."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUTHD_DATABASE_URL": "postgresql://db/authd"})
    assert caught.value.variable == "AUTHD_KEK"


def test_http_issuer_refused_when_not_allowed() -> None:
    """A production deployment can forbid a plain-http issuer."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUTHD_ALLOW_HTTP_ISSUER": "false"})
    assert caught.value.variable == "AUTHD_ISSUER"


def test_kek_value_is_masked_in_repr() -> None:
    """The KEK never shows in a repr of the settings."""
    kek = "q" * 43 + "="
    settings = Settings.from_env({"AUTHD_KEK": kek})
    assert kek not in repr(settings)


def test_durations_and_rates_parse() -> None:
    """Durations and rates accept the operator's shorthand."""
    assert parse_duration("90d") == 90 * 86400
    assert parse_duration("15m") == 900
    assert parse_duration("500ms") == 0.5
    assert parse_rate("100/m") == Rate(100, 60)
    assert parse_rate("1000/5m") == Rate(1000, 300)
