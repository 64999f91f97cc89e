"""The core ``authd`` commands: config check, migrate, serve; and the --json rule."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.databases import create_database
from tests.support.servers import REPO, base_env, free_port, new_kek, run_cli


def embedded(tmp_path: Path) -> dict[str, str]:
    return {"AUTHD_DATA_DIR": str(tmp_path / "data"), "AUTHD_KEYS_DIR": str(tmp_path / "keys")}


def one_json_object(stdout: str) -> dict[str, object]:
    """The --json contract: stdout is exactly one JSON object and nothing else."""
    decoded = json.loads(stdout)
    assert isinstance(decoded, dict)
    assert stdout.strip().count("\n") == 0
    return decoded


def test_config_check_passes_on_the_embedded_default(tmp_path: Path) -> None:
    """With nothing configured the settings are valid and the command exits 0."""
    result = run_cli(["config", "check"], embedded(tmp_path))
    assert result.returncode == 0
    assert "ok" in result.stdout


def test_config_check_json_prints_one_object(tmp_path: Path) -> None:
    """``--json`` works before or after the command and prints one JSON object."""
    for args in (["--json", "config", "check"], ["config", "check", "--json"]):
        result = run_cli(args, embedded(tmp_path))
        assert one_json_object(result.stdout)["status"] == "ok"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AUTHD_PORT", "eighty"), ("AUTHD_LOG_FORMAT", "xml"),
     ("AUTHD_DATABASE_URL", "mysql://db/authd"), ("AUTHD_KEK", "not-base64!")],
)
def test_config_check_names_a_bad_variable_in_one_line(
    tmp_path: Path, variable: str, value: str
) -> None:
    """A bad value exits non-zero with one stderr line naming it, and no traceback."""
    env = {**embedded(tmp_path), variable: value}
    if variable == "AUTHD_KEK":
        env["AUTHD_DATABASE_URL"] = "postgresql://postgres@127.0.0.1/authd"
    result = run_cli(["config", "check"], env, check=False)
    assert result.returncode != 0
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert variable in line
    assert "Traceback" not in result.stderr


def test_a_configured_database_without_a_kek_is_refused(tmp_path: Path) -> None:
    """Production needs a KEK; config check says which variable is missing."""
    env = {**embedded(tmp_path), "AUTHD_DATABASE_URL": "postgresql://postgres@127.0.0.1/x"}
    result = run_cli(["config", "check"], env, check=False)
    assert result.returncode != 0
    assert "AUTHD_KEK" in result.stderr


async def test_migrate_json_reports_what_it_applied() -> None:
    """migrate --json prints one object listing the versions applied this time."""
    env = {"AUTHD_DATABASE_URL": await create_database("cli"), "AUTHD_KEK": new_kek()}
    first = one_json_object(run_cli(["--json", "migrate"], env).stdout)
    again = one_json_object(run_cli(["migrate", "--json"], env).stdout)
    assert first["applied"]
    assert again == {"status": "ok", "applied": []}


def test_migrate_on_the_embedded_default_creates_the_sqlite_file(tmp_path: Path) -> None:
    """Without a database URL, migrate prepares the embedded SQLite file."""
    run_cli(["migrate"], embedded(tmp_path))
    assert (tmp_path / "data" / "authd.sqlite3").is_file()


async def test_migrate_against_an_unreachable_database_fails_in_one_line() -> None:
    """No PostgreSQL listening: one stderr line, a non-zero exit, no traceback."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/authd"
    result = run_cli(["migrate"], {"AUTHD_DATABASE_URL": url, "AUTHD_KEK": new_kek()},
                     check=False)
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AUTHD_PORT", "70000"), ("AUTHD_ACCESS_TOKEN_TTL", "forever"),
     ("AUTHD_REDIS_URL", "http://redis")],
)
def test_serve_with_a_bad_setting_exits_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    """serve validates every setting before starting and names the bad one."""
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", str(free_port())],
        env=base_env({**embedded(tmp_path), variable: value}),
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert variable in line
    assert "Traceback" not in result.stderr


def test_serve_with_an_unusable_kek_file_exits_naming_it(tmp_path: Path) -> None:
    """A KEK file that is not 32 base64 bytes stops serve before it forks."""
    kek = tmp_path / "kek"
    kek.write_text("too short")
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", str(free_port())],
        env=base_env({**embedded(tmp_path), "AUTHD_KEK_FILE": str(kek)}),
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "AUTHD_KEK_FILE" in line


@pytest.mark.parametrize(("flags", "env"), [
    (["--workers", "2"], {}),
    ([], {"AUTHD_WORKERS": "2"}),
], ids=["flag", "environment"])
def test_serve_refuses_several_workers_without_redis(
    tmp_path: Path, flags: list[str], env: dict[str, str]
) -> None:
    """Two workers without AUTHD_REDIS_URL would double every failed-attempt budget:
    serve exits before listening, naming AUTHD_REDIS_URL and the worker setting."""
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve", "--port", str(port), *flags],
        env=base_env({**embedded(tmp_path), **env}),
        capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
    )
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "AUTHD_REDIS_URL" in line and "--workers" in line and "AUTHD_WORKERS" in line
    assert "AUTHD_PER_PROCESS_LIMITS" in line
    assert "Traceback" not in result.stderr


def test_config_check_refuses_several_workers_without_redis(tmp_path: Path) -> None:
    """``config check`` applies the same rule to AUTHD_WORKERS, as one JSON error."""
    result = run_cli(["--json", "config", "check"],
                     {**embedded(tmp_path), "AUTHD_WORKERS": "3"}, check=False)
    assert result.returncode != 0
    answer = one_json_object(result.stdout)
    assert answer["error"] == "configuration_error"
    assert "AUTHD_REDIS_URL" in str(answer["message"])


def test_config_check_accepts_several_workers_with_per_process_limits(tmp_path: Path) -> None:
    """AUTHD_PER_PROCESS_LIMITS=true is the explicit acceptance of per-process limits."""
    result = run_cli(["--json", "config", "check"],
                     {**embedded(tmp_path), "AUTHD_WORKERS": "3",
                      "AUTHD_PER_PROCESS_LIMITS": "true"})
    assert result.returncode == 0
    assert one_json_object(result.stdout)["status"] == "ok"


def test_python_dash_m_service_is_the_same_cli() -> None:
    """``python -m service --help`` lists the core commands."""
    result = subprocess.run([sys.executable, "-m", "service", "--help"], capture_output=True,
                            text=True, cwd=REPO, timeout=60, check=True)
    for command in ("serve", "migrate", "config"):
        assert command in result.stdout
