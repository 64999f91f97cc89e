"""How ``authd`` fails (DESIGN §3a): with ``--json`` one JSON object on stdout
(``{"error": CODE, "message": TEXT}``) and a non-zero exit; without it one line on
stderr; never a traceback, whatever the command and whatever went wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.databases import create_database
from tests.support.servers import REPO, base_env, free_port, new_kek, run_cli


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: str
    status: int
    env: tuple[tuple[str, str], ...] = ()
    stdin: str | None = None


UNREACHABLE_PG = f"postgresql://postgres@127.0.0.1:{free_port()}/authd"

# One command of each kind of failure the CLI can meet, across the command groups.
CASES = {
    "unknown command": Case(("frobnicate",), "usage_error", 2),
    "unknown action": Case(("clients", "frob"), "usage_error", 2),
    "missing argument": Case(("apikeys", "create"), "usage_error", 2),
    "bad argument value": Case(("apikeys", "create", "--client", "cl_x", "--expires-in",
                                "forever"), "usage_error", 2),
    "bad setting": Case(("config", "check"), "configuration_error", 2,
                        env=(("AUTHD_PORT", "eighty"),)),
    "argument not UTF-8": Case(("clients", "create", "bad\udcffname"), "usage_error", 2),
    "unknown client": Case(("clients", "disable", "cl_missing"), "not_found", 1),
    "unknown api key": Case(("apikeys", "revoke", "key_missing"), "not_found", 1),
    "unknown signing key": Case(("keys", "revoke", "kid_missing"), "not_found", 1),
    "unknown user": Case(("users", "disable", "usr_missing"), "not_found", 1),
    "malformed kid": Case(("keys", "revoke", "not a kid!"), "command_failed", 1),
    "invalid client name": Case(("clients", "create", "tab\tin name"), "invalid_request", 1),
    "invalid scope": Case(("clients", "create", "svc", "--scope", 'quote"d'),
                          "invalid_request", 1),
    "no password on stdin": Case(("users", "create", "a@example.org"), "command_failed", 1,
                                 stdin=""),
    "database unreachable": Case(("clients", "list"), "storage_unavailable", 1,
                                 env=(("AUTHD_DATABASE_URL", UNREACHABLE_PG),
                                      ("AUTHD_KEK", new_kek()))),
}


def embedded(tmp_path: Path) -> dict[str, str]:
    return {"AUTHD_DATA_DIR": str(tmp_path / "data"), "AUTHD_KEYS_DIR": str(tmp_path / "keys")}


def run(case: Case, tmp_path: Path, *, as_json: bool) -> subprocess.CompletedProcess[str]:
    args = ["--json", *case.args] if as_json else list(case.args)
    return run_cli(args, {**embedded(tmp_path), **dict(case.env)}, stdin=case.stdin,
                   check=False)


def the_json_error(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """stdout is exactly one line holding one JSON object with exactly error and message."""
    assert result.stdout.count("\n") == 1, result.stdout
    decoded = json.loads(result.stdout)
    assert isinstance(decoded, dict)
    assert set(decoded) == {"error", "message"}
    assert isinstance(decoded["message"], str) and decoded["message"]
    return decoded


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_failure_under_json_is_one_json_object(case: Case, tmp_path: Path) -> None:
    """With --json a failing command prints one {error, message} object, exits non-zero."""
    result = run(case, tmp_path, as_json=True)
    assert the_json_error(result)["error"] == case.code
    assert result.returncode == case.status
    assert "Traceback" not in result.stderr


# One case per path through the CLI's error table is enough for the plain shape.
PLAIN = ("unknown action", "bad setting", "unknown client", "malformed kid",
         "database unreachable")


@pytest.mark.parametrize("case", [CASES[name] for name in PLAIN], ids=PLAIN)
def test_a_failure_without_json_is_one_stderr_line(case: Case, tmp_path: Path) -> None:
    """Without --json a failing command prints one stderr line and nothing on stdout."""
    result = run(case, tmp_path, as_json=False)
    assert result.returncode == case.status
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("authd: ")


def test_json_may_follow_the_command(tmp_path: Path) -> None:
    """--json after the command (even after a bad argument) still answers in JSON."""
    result = run_cli(["clients", "disable", "cl_missing", "--json"], embedded(tmp_path),
                     check=False)
    assert the_json_error(result)["error"] == "not_found"


def test_a_usage_error_names_the_help_to_read(tmp_path: Path) -> None:
    """A usage error's message says which command's --help explains the usage."""
    result = run_cli(["--json", "apikeys", "create"], embedded(tmp_path), check=False)
    message = str(the_json_error(result)["message"])
    assert "--client" in message and "authd apikeys create --help" in message


def test_a_conflict_is_an_error_code_a_script_can_match(tmp_path: Path) -> None:
    """Creating a client whose name exists answers the API's own code, conflict."""
    run_cli(["clients", "create", "twice"], embedded(tmp_path))
    result = run_cli(["--json", "clients", "create", "twice"], embedded(tmp_path), check=False)
    assert the_json_error(result) == {"error": "conflict",
                                      "message": "a client with this name exists"}
    assert result.returncode == 1


def test_a_reader_that_closes_the_pipe_early_gets_no_traceback(tmp_path: Path) -> None:
    """``authd … | head`` closing stdout first ends the command without a traceback."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "service", "--json", "config", "check"],
            env=base_env(embedded(tmp_path)), stdout=writer, stderr=subprocess.PIPE,
            text=True, cwd=REPO, timeout=60, check=False,
        )
    finally:
        os.close(writer)
    assert result.stderr == ""
    assert result.returncode == 1


async def test_a_command_on_an_unmigrated_database_says_to_migrate() -> None:
    """A command run before ``authd migrate`` on PostgreSQL answers schema_outdated and
    names the command to run, not an internal error."""
    env = {"AUTHD_DATABASE_URL": await create_database("cli_unmigrated"),
           "AUTHD_KEK": new_kek()}
    result = run_cli(["--json", "bootstrap", "--if-absent"], env, check=False)
    answer = the_json_error(result)
    assert answer["error"] == "schema_outdated"
    assert "authd migrate" in str(answer["message"])
    assert result.returncode == 1
