"""The console's settings: AUTHD_CONSOLE_IDLE_TIMEOUT, AUTHD_CONSOLE_ABSOLUTE_TIMEOUT and
AUTHD_ADMIN_LISTEN, validated at start-up naming the variable."""

from __future__ import annotations

import pytest

from service.config import ConfigError, Settings


def test_the_defaults_are_15_minutes_idle_8_hours_absolute_and_one_port() -> None:
    """Unset: idle 15 min, absolute 8 h, no admin listener."""
    settings = Settings.from_env({})
    assert (settings.console_idle_timeout, settings.console_absolute_timeout) == (900.0, 28800.0)
    assert settings.admin_listen is None


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:9000", ("127.0.0.1", 9000)),
    ("10.0.0.5:9000", ("10.0.0.5", 9000)),
    ("[::1]:9001", ("::1", 9001)),
    ("admin.internal:9000", ("admin.internal", 9000)),
])
def test_the_admin_listener_is_host_and_port(text: str, expected: tuple[str, int]) -> None:
    """``host:port`` (IPv6 in brackets) is read as such."""
    assert Settings.from_env({"AUTHD_ADMIN_LISTEN": text}).admin_listen == expected


@pytest.mark.parametrize("text", ["9000", ":9000", "host:", "host:port", "host:0",
                                  "host:70000", "host:\uff19\uff10\uff10\uff10"])
def test_a_bad_admin_listener_is_refused_naming_the_variable(text: str) -> None:
    """A value without a usable host and port fails naming AUTHD_ADMIN_LISTEN."""
    with pytest.raises(ConfigError, match="AUTHD_ADMIN_LISTEN"):
        Settings.from_env({"AUTHD_ADMIN_LISTEN": text})


def test_the_admin_listener_needs_its_own_port() -> None:
    """The admin port equal to the public one is refused."""
    with pytest.raises(ConfigError, match="AUTHD_ADMIN_LISTEN: must use another port"):
        Settings.from_env({"AUTHD_PORT": "9000", "AUTHD_ADMIN_LISTEN": "127.0.0.1:9000"})


@pytest.mark.parametrize(("name", "value"), [
    ("AUTHD_CONSOLE_IDLE_TIMEOUT", "5s"), ("AUTHD_CONSOLE_IDLE_TIMEOUT", "soon"),
    ("AUTHD_CONSOLE_ABSOLUTE_TIMEOUT", "30s"), ("AUTHD_CONSOLE_ABSOLUTE_TIMEOUT", "30d"),
])
def test_timeouts_out_of_range_are_refused(name: str, value: str) -> None:
    """Idle from 10 s to 24 h, absolute from 1 min to 7 d, else the variable is named."""
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_an_idle_timeout_longer_than_the_absolute_one_is_refused() -> None:
    """Idle beyond absolute could never apply: refused naming the idle variable."""
    with pytest.raises(ConfigError, match="AUTHD_CONSOLE_IDLE_TIMEOUT"):
        Settings.from_env({"AUTHD_CONSOLE_IDLE_TIMEOUT": "9h"})
