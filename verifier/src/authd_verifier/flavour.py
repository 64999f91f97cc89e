"""Whether this installation runs its per-token modules compiled or as Python.

A first-seen token passes through four modules of pure bookkeeping — the claim
rules, strict base64url and JSON, the header check, the token cache — that cost
more interpreted than the RSA check they surround leaves room for (DESIGN §7
holds first-seen verification to 0.9 of the inline decode-and-verify floor;
docs/verifier-first-seen.md). ``setup.py`` compiles exactly ``HOT_MODULES`` with
mypyc when it can, and installs the same sources as Python when it cannot (no
compiler, an editable install, ``AUTHD_VERIFIER_PURE=1``). The two flavours run
the same code and pass the same tests; only the speed differs.
"""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES
from typing import Final

#: The modules setup.py compiles: all of them, or (as a fallback) none.
HOT_MODULES: Final = ("claims", "encoding", "header", "token_cache")


def compiled_modules() -> tuple[str, ...]:
    """The names in ``HOT_MODULES`` that were loaded from a compiled extension."""
    return tuple(
        name
        for name in HOT_MODULES
        if str(importlib.import_module(f"{__package__}.{name}").__file__).endswith(
            tuple(EXTENSION_SUFFIXES)
        )
    )


#: ``"compiled"`` or ``"python"``: what benchmarks and bug reports should name.
FLAVOUR: Final = "compiled" if compiled_modules() == HOT_MODULES else "python"
