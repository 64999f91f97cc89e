"""The embedded default's KEK file (``keys/kek``): made once, whole, private."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from service.config import Settings
from service.signing.kek import Kek, load_kek

STARTS = 8
ROUNDS = 50


def embedded(tmp: Path) -> Settings:
    return Settings.from_env({"AUTHD_DATA_DIR": str(tmp / "data"),
                              "AUTHD_KEYS_DIR": str(tmp / "keys")})


def start_together(settings: Settings) -> list[Kek | Exception]:
    """``load_kek`` in STARTS threads released at the same instant."""
    barrier = threading.Barrier(STARTS)
    found: list[Kek | Exception] = []

    def start() -> None:
        barrier.wait()
        try:
            found.append(load_kek(settings))
        except Exception as exc:  # collected: the assertion shows which
            found.append(exc)

    threads = [threading.Thread(target=start) for _ in range(STARTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found


def test_first_starts_at_the_same_moment_agree_on_one_kek(tmp_path: Path) -> None:
    """Eight first starts at once on a fresh embedded default all load the same KEK;
    none reads a half-written file."""
    for round_ in range(ROUNDS):
        found = start_together(embedded(tmp_path / str(round_)))
        keks = [f for f in found if isinstance(f, Kek)]
        assert len(keks) == STARTS, found
        sealed = keks[0].seal(b"probe", "probe")
        assert all(kek.open(sealed, "probe") == b"probe" for kek in keks)


def test_the_kek_file_is_private_and_alone(tmp_path: Path) -> None:
    """The created KEK file is mode 0600 and no temporary file is left beside it."""
    load_kek(embedded(tmp_path))
    keys = tmp_path / "keys"
    assert [p.name for p in keys.iterdir()] == ["kek"]
    assert stat.S_IMODE((keys / "kek").stat().st_mode) == 0o600
