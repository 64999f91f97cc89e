"""Build authd-verifier, compiling its per-token modules with mypyc where it can.

Metadata lives in pyproject.toml; this file only adds the optional extensions
(see ``authd_verifier/flavour.py`` for why and which). A wheel holds either all
of them or none: the package is complete in Python, so a build that cannot
compile installs the same sources as Python, with a warning, rather than fail.
It does not compile when

- ``AUTHD_VERIFIER_PURE`` is set (to anything but empty or ``0``);
- mypy (which carries mypyc) cannot be imported, or refuses the sources;
- the install is editable: the compiled modules would land beside the sources
  and shadow every later edit of them;
- the C compiler fails.
"""

from __future__ import annotations

import ast
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
PACKAGE = HERE / "src" / "authd_verifier"


def _warn(message: str) -> None:
    print(f"authd-verifier: {message}; installing the pure-Python modules", file=sys.stderr)


def _hot_modules() -> tuple[str, ...]:
    """``HOT_MODULES`` as flavour.py spells it (read, not imported: importing the
    package needs its dependencies, which a build environment lacks)."""
    tree = ast.parse((PACKAGE / "flavour.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and ast.unparse(node.target) == "HOT_MODULES":
            assert node.value is not None
            return tuple(ast.literal_eval(node.value))
    raise RuntimeError("flavour.py no longer names HOT_MODULES")


def _extensions() -> list[Any]:
    if os.environ.get("AUTHD_VERIFIER_PURE", "") not in ("", "0"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc is not available")
        return []
    hot = _hot_modules()
    os.chdir(HERE)  # mypycify names modules by their paths relative to here
    try:
        return list(
            mypycify(
                ["--ignore-missing-imports", *(f"src/authd_verifier/{name}.py" for name in hot)],
                opt_level="3",
            )
        )
    except (Exception, SystemExit) as error:  # mypy reports refused sources with SystemExit
        _warn(f"mypyc refused the sources ({type(error).__name__})")
        return []


class OptionalBuildExt(build_ext):
    """Compiles all the extensions or, on any failure, none of them."""

    def run(self) -> None:
        if not self.extensions:
            return
        if self.editable_mode or self.inplace:
            _warn("an editable install would shadow the sources")
            self.extensions = []
            return
        try:
            super().run()
        except Exception as error:
            _warn(f"the compiler failed ({type(error).__name__})")
            for extension in self.extensions:
                Path(self.get_ext_fullpath(extension.name)).unlink(missing_ok=True)
            shutil.rmtree(self.build_temp, ignore_errors=True)
            self.extensions = []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
