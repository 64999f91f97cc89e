"""``authd clients create --exchange-audience/--dpop-required`` and ``authd clients
set-policy`` through the real CLI on the embedded default (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.config import ConfigError, Settings
from tests.support.servers import run_cli


def env(tmp_path: Path) -> dict[str, str]:
    return {"AUTHD_DATA_DIR": str(tmp_path / "data"), "AUTHD_KEYS_DIR": str(tmp_path / "keys")}


def cli(tmp_path: Path, *args: str, check: bool = True) -> Any:
    result = run_cli(["--json", *args], env(tmp_path), check=check)
    return json.loads(result.stdout), result.returncode


def test_create_sets_exchange_audiences_and_dpop(tmp_path: Path) -> None:
    """--exchange-audience (repeated) and --dpop-required land on the new client."""
    client, _ = cli(tmp_path, "clients", "create", "svc-a", "--scope", "a",
                    "--exchange-audience", "svc-b", "--exchange-audience", "svc-c",
                    "--dpop-required")
    assert client["exchange_audiences"] == ["svc-b", "svc-c"]
    assert client["dpop_required"] is True


def test_set_policy_replaces_the_audiences_and_keeps_what_is_not_named(tmp_path: Path) -> None:
    """set-policy replaces the audience list; --no-exchange empties it; DPoP is kept."""
    created, _ = cli(tmp_path, "clients", "create", "svc-a", "--exchange-audience", "svc-b",
                     "--dpop-required")
    changed, _ = cli(tmp_path, "clients", "set-policy", created["id"],
                     "--exchange-audience", "svc-c")
    assert changed["exchange_audiences"] == ["svc-c"] and changed["dpop_required"] is True
    emptied, _ = cli(tmp_path, "clients", "set-policy", created["id"], "--no-exchange",
                     "--no-dpop-required")
    assert emptied["exchange_audiences"] == [] and emptied["dpop_required"] is False


def test_set_policy_of_an_unknown_client_is_not_found(tmp_path: Path) -> None:
    """An unknown client id is a not_found JSON error, no traceback."""
    answer, code = cli(tmp_path, "clients", "set-policy", "cl_missing",
                       "--exchange-audience", "svc-b", check=False)
    assert code == 1 and answer["error"] == "not_found"


def test_an_audience_with_a_space_is_invalid_request(tmp_path: Path) -> None:
    """An exchange audience must be visible characters without spaces."""
    answer, code = cli(tmp_path, "clients", "create", "svc-a", "--exchange-audience", "a b",
                       check=False)
    assert code == 1 and answer["error"] == "invalid_request"


@pytest.mark.parametrize(("variable", "value"), [
    ("AUTHD_DPOP_ALGS", "ES256 HS256"),
    ("AUTHD_DPOP_ALGS", "none"),
    ("AUTHD_DPOP_ALGS", "ES999"),
    ("AUTHD_DPOP_PROOF_MAX_AGE", "1h"),
    ("AUTHD_DPOP_NONCE", "maybe"),
])
def test_a_bad_dpop_setting_names_its_variable(variable: str, value: str) -> None:
    """Every malformed DPoP setting fails at start-up naming the variable."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert variable in str(caught.value)


def test_the_dpop_settings_read_as_given() -> None:
    """Valid DPoP settings are read into the settings object."""
    settings = Settings.from_env({"AUTHD_DPOP_ALGS": "ES256 EdDSA",
                                  "AUTHD_DPOP_PROOF_MAX_AGE": "30s", "AUTHD_DPOP_NONCE": "true"})
    assert settings.dpop_algorithms == ("ES256", "EdDSA")
    assert settings.dpop_proof_max_age == 30.0 and settings.dpop_nonce is True
