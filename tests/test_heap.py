"""What ``authd serve`` does to the garbage collector once it has started.

In a child process: a frozen heap is never freed, so the test process must not build
an app with ``freeze_heap``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from service.app import YOUNG_GC_THRESHOLD
from tests.support.servers import REPO, base_env, new_kek, run_cli

CHILD = """
import gc, json, os
from starlette.testclient import TestClient
from service.app import create_app
from service.config import Settings

app = create_app(Settings.from_env(os.environ), freeze_heap=FREEZE)
before = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}
with TestClient(app) as client:
    assert client.get("/healthz").status_code == 200
    after = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}
print(json.dumps({"before": before, "after": after}))
"""


def started(tmp_path: Path, *, freeze: bool) -> dict[str, dict[str, object]]:
    env = {"AUTHD_DATABASE_URL": f"sqlite:///{tmp_path / 'authd.sqlite3'}",
           "AUTHD_KEK": new_kek()}
    run_cli(["migrate"], env)
    out = subprocess.run([sys.executable, "-c", CHILD.replace("FREEZE", str(freeze))],
                         env=base_env(env), cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    result: dict[str, dict[str, object]] = json.loads(out.splitlines()[-1])
    return result


def test_a_started_server_freezes_its_heap_and_collects_the_young_less_often(
        tmp_path: Path) -> None:
    seen = started(tmp_path, freeze=True)
    assert seen["before"]["frozen"] == 0
    assert isinstance(seen["after"]["frozen"], int) and seen["after"]["frozen"] > 10_000
    assert seen["after"]["threshold"] == [YOUNG_GC_THRESHOLD, 10, 10]


def test_an_app_built_without_it_leaves_the_collector_alone(tmp_path: Path) -> None:
    seen = started(tmp_path, freeze=False)
    assert seen["after"] == {"frozen": 0, "threshold": [700, 10, 10]}
