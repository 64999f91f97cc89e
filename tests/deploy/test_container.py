"""The container image is built the way the Dockerfile promises: pinned base,
dependencies from the lock, non-root, no secret inside, ``authd serve`` as its
entry, a health check that needs no curl (``docker build`` cannot run here)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Callable

import pytest

from tests.deploy.dockerfile import (
    base_image,
    dockerignore_patterns,
    global_args,
    ignored,
    instructions,
    stages,
)
from tests.support.forwarder import Forwarder
from tests.support.servers import REPO, Server, free_port, run_cli

DOCKERFILE = REPO / "deploy" / "Dockerfile"
HEALTHCHECK = REPO / "deploy" / "healthcheck.py"
PINNED = re.compile(r"^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


def final_stage() -> list[str]:
    found = instructions(DOCKERFILE)
    return [f"{i.keyword} {i.argument}" for i in stages(found)[-1]]


def test_every_base_image_is_pinned() -> None:
    """Each FROM names a full x.y.z version or a digest, never a floating tag."""
    found = instructions(DOCKERFILE)
    args = global_args(found)
    names = {i.argument.split()[-1] for i in found if i.keyword == "FROM" and " AS " in i.argument}
    for instruction in found:
        if instruction.keyword != "FROM":
            continue
        image = base_image(instruction, args)
        if image in names:
            continue  # a previous stage
        assert ":" in image or "@sha256:" in image, image
        assert PINNED.match(image) and re.search(r":\d+\.\d+\.\d+|@sha256:", image), image


def test_the_build_is_multi_stage() -> None:
    """Build tools stay in a build stage; the runtime stage copies the result."""
    found = instructions(DOCKERFILE)
    assert len(stages(found)) >= 2
    assert any(line.startswith("COPY --from=build") for line in final_stage())


def test_dependencies_install_from_the_lock_file() -> None:
    """pip installs with requirements.lock as the pinned set."""
    runs = [i.argument for i in instructions(DOCKERFILE) if i.keyword == "RUN"]
    assert any("pip install" in run and "requirements.lock" in run for run in runs)


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    """The last USER of the runtime stage is a non-zero numeric uid."""
    users = [line.split()[1] for line in final_stage() if line.startswith("USER ")]
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_no_secret_can_enter_the_image() -> None:
    """No ADD at all, and no COPY of keys/, .env, data/ or key files."""
    found = instructions(DOCKERFILE)
    assert [i for i in found if i.keyword == "ADD"] == []
    for instruction in found:
        if instruction.keyword == "COPY":
            assert not re.search(r"(^|\s)(\./)?(keys|data)(/|\s|$)|\.env|\.pem|\.key\b|kek",
                                 instruction.argument), instruction.argument
        if instruction.keyword in {"ENV", "ARG"}:
            assert "AUTHD_KEK=" not in instruction.argument.replace(" ", "")


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_context() -> None:
    """keys/, .venv, data/, .git, .env files and tests never reach the build context."""
    patterns = dockerignore_patterns(REPO / ".dockerignore")
    for path in ("keys/kek", ".venv/bin/python", "data/authd.sqlite3", ".git/HEAD",
                 ".env", "deploy/.env", "deploy/secrets/kek", "tests/conftest.py",
                 "service/__pycache__/app.cpython-311.pyc", "service/cert.pem"):
        assert ignored(patterns, path), path


def test_dockerignore_lets_in_what_the_dockerfile_copies() -> None:
    """Every source the Dockerfile COPYs from the context is in the build context."""
    patterns = dockerignore_patterns(REPO / ".dockerignore")
    for instruction in instructions(DOCKERFILE):
        if instruction.keyword != "COPY" or instruction.argument.startswith("--from"):
            continue
        for source in instruction.argument.split()[:-1]:
            assert not ignored(patterns, source), source
            assert (REPO / source).exists(), source
    assert not ignored(patterns, "service/app.py")
    assert not ignored(patterns, "migrations/postgresql/0001_initial.sql")


def test_the_entry_point_is_authd_serve() -> None:
    """ENTRYPOINT + CMD run `authd serve`, and `authd` is the CLI the tests start."""
    found = stages(instructions(DOCKERFILE))[-1]
    entry = [i.exec_form() for i in found if i.keyword == "ENTRYPOINT"][-1]
    command = [i.exec_form() for i in found if i.keyword == "CMD"][-1]
    assert entry is not None and command is not None, "use the exec form"
    assert [*entry, *command] == ["authd", "serve"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["authd"] == "service.cli:main"


def test_workers_and_address_come_from_the_environment() -> None:
    """AUTHD_WORKERS sets the worker count and the server listens on all interfaces."""
    env = " ".join(i.argument for i in stages(instructions(DOCKERFILE))[-1] if i.keyword == "ENV")
    assert re.search(r"AUTHD_WORKERS=\d+", env)
    assert "AUTHD_HOST=0.0.0.0" in env


def test_stop_signal_and_health_check_are_declared() -> None:
    """SIGTERM stops the server; the health check runs Python against /healthz, no curl."""
    found = stages(instructions(DOCKERFILE))[-1]
    assert [i.argument for i in found if i.keyword == "STOPSIGNAL"] == ["SIGTERM"]
    checks = [i.argument for i in found if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "curl" not in checks[0] and "wget" not in checks[0]
    assert '"python", "/app/deploy/healthcheck.py"' in checks[0]
    assert "/healthz" in HEALTHCHECK.read_text()


def run_health_check(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, str(HEALTHCHECK), *args],
                          capture_output=True, timeout=30, check=False)


@pytest.mark.e2e
def test_health_check_script_passes_against_a_live_server(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """deploy/healthcheck.py exits 0 when authd answers /healthz, and with --ready
    when /readyz answers 200."""
    server = start_server(server_env)
    result = run_health_check(server.base_url)
    assert result.returncode == 0, result.stderr.decode()
    server.wait_ready()
    result = run_health_check("--ready", server.base_url)
    assert result.returncode == 0, result.stderr.decode()


@pytest.mark.e2e
def test_ready_health_check_fails_while_the_database_is_down(
    server_env: dict[str, str], start_server: Callable[..., Server], pg_forwarder: Forwarder
) -> None:
    """With PostgreSQL cut, --ready gets /readyz's 503 and exits 1 (what compose's
    healthcheck and the AuthdNotReady alert rely on); plain liveness still passes."""
    run_cli(["migrate"], server_env)
    pg_forwarder.stop()
    env = {**server_env,
           "AUTHD_DATABASE_URL": pg_forwarder.url_through(server_env["AUTHD_DATABASE_URL"])}
    server = start_server(env, migrate_first=False)
    ready = run_health_check("--ready", server.base_url)
    assert ready.returncode == 1
    assert "/readyz" in ready.stderr.decode() and "503" in ready.stderr.decode()
    live = run_health_check(server.base_url)
    assert live.returncode == 0, live.stderr.decode()


def test_health_check_script_fails_when_nothing_listens() -> None:
    """deploy/healthcheck.py exits 1 when no server answers."""
    result = run_health_check(f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
