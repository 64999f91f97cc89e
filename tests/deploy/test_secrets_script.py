"""deploy/secrets.sh makes the compose secrets once and gives the KEK the narrowest
permissions the caller can: owned by the container's uid with mode 0400 when run
as root, world-readable with a warning otherwise. Each test runs a copy of the
script in a scratch folder, so the repository's own deploy/secrets/ is untouched."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import REPO

SCRIPT = REPO / "deploy" / "secrets.sh"
CONTAINER_UID = 10001  # the USER of deploy/Dockerfile
NOBODY = 65534


@pytest.fixture
def deploy_dir() -> Iterator[Path]:
    """A world-traversable scratch deploy/ (a dropped-privilege run must reach it)."""
    root = Path(tempfile.mkdtemp(prefix="authd-secrets-"))
    root.chmod(0o777)
    (root / "deploy").mkdir(mode=0o777)
    (root / "deploy").chmod(0o777)
    shutil.copy(SCRIPT, root / "deploy" / "secrets.sh")
    yield root / "deploy"
    shutil.rmtree(root)


def run(deploy: Path, *prefix: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SUDO_")}
    return subprocess.run([*prefix, "bash", str(deploy / "secrets.sh")], env=env,
                          capture_output=True, text=True, timeout=60, check=True)


def assert_is_a_kek(path: Path) -> None:
    assert len(base64.b64decode(path.read_text().strip(), validate=True)) == 32


def test_the_kek_goes_to_the_container_uid_only_when_run_as_root(deploy_dir: Path) -> None:
    """As root: uid 10001 owns the KEK, mode 0400. As another user (no way to give
    the file away): 0444 and a warning that names the root alternative."""
    result = run(deploy_dir)
    kek = deploy_dir / "secrets" / "kek"
    info = kek.stat()
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (CONTAINER_UID, CONTAINER_UID)
        assert stat.S_IMODE(info.st_mode) == 0o400
        assert "warning" not in result.stderr
    else:
        assert stat.S_IMODE(info.st_mode) == 0o444
        assert "run deploy/secrets.sh as root" in result.stderr
    assert_is_a_kek(kek)
    assert (deploy_dir / ".env").read_text().startswith("AUTHD_DB_PASSWORD=")


def test_a_non_root_run_makes_the_kek_world_readable_and_says_so(deploy_dir: Path) -> None:
    """Without root the file keeps its owner, so only 0444 lets uid 10001 read it;
    the script warns about it. (Run as `nobody` when the suite itself is root.)"""
    prefix = (("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
              if os.geteuid() == 0 else ())
    result = run(deploy_dir, *prefix)
    kek = deploy_dir / "secrets" / "kek"
    assert stat.S_IMODE(kek.stat().st_mode) == 0o444
    assert "world-readable" in result.stderr
    assert "run deploy/secrets.sh as root" in result.stderr
    assert_is_a_kek(kek)


def test_a_second_run_never_replaces_the_secrets(deploy_dir: Path) -> None:
    """Losing the KEK makes every stored signing key unreadable: rerunning keeps it."""
    run(deploy_dir)
    kek, env = deploy_dir / "secrets" / "kek", deploy_dir / ".env"
    before = (kek.read_bytes(), env.read_bytes())
    result = run(deploy_dir)
    assert (kek.read_bytes(), env.read_bytes()) == before
    assert "wrote" not in result.stdout
