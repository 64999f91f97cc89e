"""The verifier as a distribution: its declared dependencies and what importing it loads."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from authd_verifier import flavour
from packaging.requirements import Requirement
from packaging.version import Version

VERIFIER = Path(__file__).resolve().parents[2] / "verifier"


def requirements() -> dict[str, Requirement]:
    project = tomllib.loads((VERIFIER / "pyproject.toml").read_text())["project"]
    parsed = [Requirement(line) for line in project["dependencies"]]
    return {re.sub(r"[-_.]+", "-", req.name).lower(): req for req in parsed}


def test_runtime_dependencies_are_exactly_pyjwt_cryptography_httpx() -> None:
    """The distribution depends on PyJWT, cryptography and httpx, and nothing else."""
    assert set(requirements()) == {"pyjwt", "cryptography", "httpx"}


def test_dependency_floors_are_recent() -> None:
    """PyJWT >= 2.10 and a cryptography release from the last year (>= 46.0.4) are required."""
    reqs = requirements()
    assert not reqs["pyjwt"].specifier.contains(Version("2.9.0"))
    assert reqs["pyjwt"].specifier.contains(Version("2.10.0"))
    assert not reqs["cryptography"].specifier.contains(Version("46.0.3"))
    assert reqs["cryptography"].specifier.contains(Version("46.0.4"))


def test_distribution_metadata() -> None:
    """The distribution is named authd-verifier, needs Python >= 3.11 and ships py.typed."""
    project = tomllib.loads((VERIFIER / "pyproject.toml").read_text())["project"]
    assert project["name"] == "authd-verifier"
    assert project["requires-python"] == ">=3.11"
    assert (VERIFIER / "src" / "authd_verifier" / "py.typed").is_file()


def test_import_loads_no_server_dependencies() -> None:
    """Importing every public module loads none of starlette, asyncpg, redis, argon2, service."""
    code = (
        "import sys\n"
        "import authd_verifier, authd_verifier.middleware, authd_verifier.testing\n"
        "import authd_verifier.revocation, authd_verifier.jwks\n"
        "banned = ('starlette', 'asyncpg', 'redis', 'argon2', 'service', 'structlog')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in banned))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_the_per_token_modules_are_all_compiled_or_all_python() -> None:
    """setup.py compiles every one of flavour.HOT_MODULES or none (a partial build
    would mean two implementations in one process); where the Makefile expects a
    flavour (AUTHD_VERIFIER_FLAVOUR: compiled wherever a C compiler is), it is the
    one installed, so a build that quietly fell back to Python is caught here."""
    assert flavour.compiled_modules() in ((), flavour.HOT_MODULES)
    assert flavour.FLAVOUR == ("compiled" if flavour.compiled_modules() else "python")
    expected = os.environ.get("AUTHD_VERIFIER_FLAVOUR")
    if expected:
        assert flavour.FLAVOUR == expected, (
            f"the verifier installed is {flavour.FLAVOUR!r}, the Makefile expects {expected!r}: "
            "see the warning of `pip install ./verifier` (a C compiler without Python's "
            "headers builds the Python flavour)"
        )


@pytest.mark.parametrize(
    ("setting", "warning"),
    [({"CC": "false"}, "the compiler failed"), ({"AUTHD_VERIFIER_PURE": "1"}, None)],
    ids=["compiler-fails", "pure-asked"],
)
def test_a_build_that_does_not_compile_makes_the_python_flavour(
    tmp_path: Path, setting: dict[str, str], warning: str | None
) -> None:
    """With a C compiler that fails (CC=false), or with AUTHD_VERIFIER_PURE=1, building
    the verifier still makes a wheel: the same sources as Python, no extension module;
    a failed compile says so."""
    source = tmp_path / "verifier"
    source.mkdir()
    for name in ("README.md", "pyproject.toml", "setup.py"):
        shutil.copy(VERIFIER / name, source / name)
    shutil.copytree(VERIFIER / "src" / "authd_verifier", source / "src" / "authd_verifier",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path / "wheel"),
         str(source)],
        capture_output=True, text=True, timeout=600, env={**os.environ, **setting},
    )
    assert built.returncode == 0, built.stderr[-2000:]
    if warning is not None:
        assert warning in built.stdout + built.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "authd_verifier/claims.py" in names
    assert not [name for name in names if name.endswith(".so")]
