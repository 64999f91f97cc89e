"""The outage settings (issue 14): defaults, parsing, and refusals naming the variable."""

from __future__ import annotations

import pytest

from service.config import ConfigError, Settings


def test_outage_defaults_bound_every_wait_and_keep_known_keys_for_15_minutes() -> None:
    """Unset, the waits are bounded and stale-if-error is on for 15 minutes."""
    settings = Settings.from_env({})
    assert settings.api_key_stale_if_error == 900
    assert settings.database_connect_timeout == 2
    assert settings.database_acquire_timeout == 2
    assert settings.database_statement_timeout == 5
    assert settings.redis_timeout == 0.5


def test_durations_in_milliseconds_are_accepted() -> None:
    """Timeouts may be written in ms, and a zero window turns stale-if-error off."""
    settings = Settings.from_env({
        "AUTHD_DATABASE_STATEMENT_TIMEOUT": "1500ms", "AUTHD_REDIS_TIMEOUT": "200ms",
        "AUTHD_API_KEY_STALE_IF_ERROR": "0",
    })
    assert settings.database_statement_timeout == 1.5
    assert settings.redis_timeout == 0.2
    assert settings.api_key_stale_if_error == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AUTHD_API_KEY_STALE_IF_ERROR", "2d"),
        ("AUTHD_API_KEY_STALE_IF_ERROR", "forever"),
        ("AUTHD_DATABASE_CONNECT_TIMEOUT", "0"),
        ("AUTHD_DATABASE_ACQUIRE_TIMEOUT", "2h"),
        ("AUTHD_DATABASE_STATEMENT_TIMEOUT", "-1s"),
        ("AUTHD_REDIS_TIMEOUT", "1m"),
    ],
)
def test_a_bad_outage_setting_names_its_variable(variable: str, value: str) -> None:
    """An out-of-range or malformed value stops start-up naming the variable."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert caught.value.variable == variable
