"""Node.js packages for the interop tests: standard clients from other ecosystems
(openid-client, jose) run unmodified against a real authd.

The packages are pinned in ``tests/support/node/package-lock.json`` (written with
``--omit-lockfile-registry-resolved``, so it names no registry) and installed once per
machine with ``npm ci`` into a cache directory keyed by the lockfile's digest. Scripts
are ES modules, which resolve packages from their own location, so each runs from a
copy inside that directory. A machine without node or npm fails the test naming the
Debian packages ``tests/services.sh`` installs (DESIGN §8: fail, never skip).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent / "node"
MANIFESTS = ("package.json", "package-lock.json")


def _cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "authd-tests" / "npm"


def installed() -> Path:
    """The directory holding the pinned ``node_modules`` (installed on first use)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed (Debian: apt-get install nodejs npm; "
                    "tests/services.sh installs them)")
    digest = hashlib.sha256(b"".join((HERE / name).read_bytes() for name in MANIFESTS))
    target = _cache_root() / digest.hexdigest()[:16]
    if (target / "node_modules").is_dir():
        return target
    staging = target.with_name(f"{target.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in MANIFESTS:
        shutil.copy(HERE / name, staging / name)
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                            cwd=staging, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"npm ci failed: {result.stderr[-2000:]}")
    try:
        staging.rename(target)
    except OSError:  # another run installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return target


def run_script(name: str, *args: str, timeout: float = 60) -> Any:
    """Run ``tests/support/node/NAME`` with ``args``; its stdout's JSON document."""
    home = installed()
    shutil.copy(HERE / name, home / name)
    result = subprocess.run(["node", str(home / name), *args], capture_output=True,
                            text=True, timeout=timeout, cwd=home)
    if result.returncode != 0:
        raise AssertionError(f"node {name} failed ({result.returncode}): {result.stderr[-3000:]}")
    return json.loads(result.stdout)
