"""The README's quickstart, run exactly as written against a server started as `make run` does.

The fenced blocks of the quickstart section are taken from README.md at test
time: ``sh`` blocks are run in order by one bash (so variables carry over, and
``set -euo pipefail`` stops at the first failing command), ``python`` blocks
whose first line is ``# FILENAME`` are written to that file first. When the
README changes, this test runs the new text; when the commands stop working,
it fails. The server listens on 127.0.0.1:8000 and the example service on
8001, as the README says, with its data in a temporary directory.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.servers import REPO, Server, base_env, run_cli

pytestmark = pytest.mark.e2e

SECTION_HEADING = "## Quickstart"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_FILE_MARKER = re.compile(r"# ([\w.-]+\.py)\n")


@dataclass(frozen=True)
class Quickstart:
    """The quickstart's commands and files, in README order."""

    script: str
    files: dict[str, str]


def read_quickstart(readme: str) -> Quickstart:
    """The sh blocks (joined) and the named python files of the README's quickstart section."""
    start = readme.index(SECTION_HEADING)
    end = readme.find("\n## ", start + len(SECTION_HEADING))
    section = readme[start : end if end != -1 else len(readme)]
    commands: list[str] = []
    files: dict[str, str] = {}
    for language, body in _FENCE.findall(section):
        if language == "sh":
            commands.append(body)
        elif language == "python":
            marker = _FILE_MARKER.match(body)
            if marker is None:
                raise AssertionError("a python block of the quickstart must start with # NAME.py")
            files[marker.group(1)] = body
    return Quickstart("set -euo pipefail\n" + "\n".join(commands), files)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass(frozen=True)
class Run:
    """What running the quickstart printed, and how it ended."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def quickstart() -> Quickstart:
    """The quickstart section as README.md has it now."""
    return read_quickstart((REPO / "README.md").read_text())


@pytest.fixture(scope="module")
def run(quickstart: Quickstart, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The quickstart run once, in a fresh directory, against a freshly started authd."""
    for port in (8000, 8001):
        if not port_is_free(port):
            raise AssertionError(f"127.0.0.1:{port} is in use; the README's quickstart uses it")
    work = tmp_path_factory.mktemp("quickstart")
    (work / ".venv").symlink_to(REPO / ".venv")
    env = {"AUTHD_DATA_DIR": str(work / "data"), "AUTHD_KEYS_DIR": str(work / "keys")}
    # What `make run` does: migrate, bootstrap if absent, serve on the default port.
    run_cli(["migrate"], env)
    run_cli(["bootstrap", "--if-absent"], env)
    server = Server(env=env, port=8000, log_path=work / "authd.log").start()
    for name, text in quickstart.files.items():
        (work / name).write_text(text)
    process = subprocess.Popen(
        ["bash", "-c", quickstart.script],
        cwd=work,
        env={**base_env(env), "AUTHD_LOG_FORMAT": "console"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=180)
    finally:
        # Whatever the script left running (the example service) goes with it.
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        process.wait()
        server.stop()
    yield Run(process.returncode, stdout, stderr)


def test_quickstart_has_commands_and_the_service_file(quickstart: Quickstart) -> None:
    """The README's quickstart section holds shell commands and the example service's file."""
    assert "authd clients create" in quickstart.script
    assert list(quickstart.files) == ["orders_service.py"]


def test_every_quickstart_command_succeeds(run: Run) -> None:
    """Run in order as written, every command of the quickstart exits 0."""
    assert run.returncode == 0, run.stderr


def test_quickstart_service_accepts_the_exchanged_token(run: Run) -> None:
    """The example service answers the API key's token with the client it was issued to."""
    assert re.search(r'\{"client":"cl_\w+","orders":\[\]\}', run.stdout), run.stdout


def test_quickstart_service_refuses_a_request_without_token(run: Run) -> None:
    """The example service answers 401 to the request that carries no token."""
    assert re.search(r"^401$", run.stdout, re.MULTILINE), run.stdout


def test_quickstart_refresh_hands_out_a_new_refresh_token(run: Run) -> None:
    """The login's refresh token is exchanged for a new one, as the last command shows."""
    assert '"refresh_token": "rt_' in run.stdout.rsplit("refresh_token_expires_in", 1)[-1]
