"""Settings are parsed once, validated, and name the variable when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import ConfigError, Rate, Settings, parse_duration, parse_rate
from tests.support.servers import run_cli


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
        ("AUTHD_FAILED_LOGIN_RATE", "0/m"),
        ("AUTHD_FAILED_API_KEY_RATE", "lots"),
        ("AUTHD_TRUSTED_PROXIES", "not-a-network"),
        ("AUTHD_KEK_FILE", "/nonexistent/kek"),
        ("AUTHD_DATABASE_URL", "postgresql://u:p@h:notaport/db"),
        ("AUTHD_DATABASE_URL", "postgresql://u:p@h:99999/db"),
        ("AUTHD_REDIS_URL", "redis://:p@h:notaport/0"),
        ("AUTHD_MAX_IN_FLIGHT", "0"),
        ("AUTHD_MAX_IN_FLIGHT", "many"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    """Every malformed setting raises ConfigError carrying the variable's name."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
    assert variable in str(caught.value)


def test_the_former_shared_failed_auth_budget_is_refused_naming_its_successors() -> None:
    """AUTHD_FAILED_AUTH_RATE no longer exists (two budgets replaced it); setting it
    fails at start-up and says what to set instead, rather than being ignored."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"AUTHD_FAILED_AUTH_RATE": "30/m"})
    assert caught.value.variable == "AUTHD_FAILED_AUTH_RATE"
    assert "AUTHD_FAILED_LOGIN_RATE" in str(caught.value)
    assert "AUTHD_FAILED_API_KEY_RATE" in str(caught.value)


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


@pytest.mark.parametrize(
    ("variable", "url"),
    [("AUTHD_DATABASE_URL", "postgresql://app:pw-Zq81x@db:port5432/authd"),
     ("AUTHD_REDIS_URL", "redis://:pw-Zq81x@cache:63 79/0")],
)
def test_a_bad_port_is_refused_without_echoing_the_password(variable: str, url: str) -> None:
    """A URL whose port is not a number stops `config check`, not the first query,
    and the message names the variable but not the password."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: url, "AUTHD_KEK": "q" * 43 + "="})
    assert caught.value.variable == variable
    assert "pw-Zq81x" not in str(caught.value)


def test_several_postgres_hosts_are_accepted() -> None:
    """libpq's ``host:port,host`` list is valid; only each port is checked."""
    url = "postgresql://app@db1:5432,db2/authd"
    assert Settings.from_env({"AUTHD_DATABASE_URL": url, "AUTHD_KEK": "q" * 43 + "="}
                             ).database_url == url


def test_url_passwords_are_masked_in_repr() -> None:
    """repr(Settings) shows the database and Redis URLs with their passwords masked."""
    settings = Settings.from_env({
        "AUTHD_DATABASE_URL": "postgresql://app:pg-Pw7@db:5432/authd",
        "AUTHD_REDIS_URL": "redis://:rd-Pw7@cache:6379/0",
        "AUTHD_KEK": "q" * 43 + "=",
    })
    shown = repr(settings)
    assert "pg-Pw7" not in shown
    assert "rd-Pw7" not in shown
    assert "postgresql://app:****@db:5432/authd" in shown
    assert settings.database_url == "postgresql://app:pg-Pw7@db:5432/authd"


def test_an_unusable_data_dir_is_reported_naming_it(tmp_path: Path) -> None:
    """AUTHD_DATA_DIR under a plain file cannot be created: one line naming the
    variable and a non-zero exit, no traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {"AUTHD_DATA_DIR": str(blocker / "data"), "AUTHD_KEYS_DIR": str(tmp_path / "keys")}
    result = run_cli(["migrate"], env, check=False)
    assert result.returncode != 0
    assert "AUTHD_DATA_DIR" in result.stderr
    assert "Traceback" not in result.stderr
