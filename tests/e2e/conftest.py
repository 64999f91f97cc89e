"""Shared by the foundation's end-to-end tests: the embedded default's environment."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    """No database or Redis configured: the SQLite file and KEK live under tmp_path."""
    return {
        "AUTHD_DATA_DIR": str(tmp_path / "data"),
        "AUTHD_KEYS_DIR": str(tmp_path / "keys"),
    }
