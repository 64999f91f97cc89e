#!/usr/bin/env python3
"""The floor of issue 16's target: the bare stack's token endpoint
(tests/bench/bare_signing/app.py, the shared bare stack with the algorithm as a
setting) on one uvicorn worker, c=64, tokens per server CPU-second for RS256, ES256
and EdDSA (RS256 again last, so a drift of the machine shows), and each as a multiple
of RS256. authd's own ratios (bench_algorithms.sh) cannot exceed these by much: the
request work around the signature is the part a cheaper signature leaves.

    .venv/bin/python tests/bench/bench_bare_algorithms.py      # DURATION (10) WARMUP (3)
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

from tests.bench.bench_saturation import CLK_TCK, OAUTH_LUA, tree_ticks, wrk  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

DURATION = int(os.environ.get("DURATION", "10"))
WARMUP = int(os.environ.get("WARMUP", "3"))


def measure(alg: str) -> float:
    port = free_port()
    server = subprocess.Popen(
        [str(REPO / ".venv/bin/uvicorn"), "app:app", "--host", "127.0.0.1", "--port", str(port),
         "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"],
        cwd=HERE / "bare_signing", env={**os.environ, "BARE_ALG": alg})
    try:
        url = f"http://127.0.0.1:{port}/token"
        for _ in range(100):
            try:
                wrk(url, 1, 1, OAUTH_LUA, {})
                break
            except subprocess.CalledProcessError:
                time.sleep(0.2)
        wrk(url, 16, WARMUP, OAUTH_LUA, {})
        before = sum(tree_ticks(server.pid).values())
        result = wrk(url, 64, DURATION, OAUTH_LUA, {})
        cpu = (sum(tree_ticks(server.pid).values()) - before) / CLK_TCK
        ok = result["requests"] - result["non200"]
        per_cpu = ok / cpu
        print(f"bare stack {alg:5s}: {ok / result['duration_s']:7.0f} tokens/s, "
              f"{cpu / result['duration_s']:.2f} cores, {per_cpu:7.0f} tokens per server "
              f"CPU-second, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms",
              flush=True)
        return per_cpu
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    rates: dict[str, list[float]] = {}
    for alg in ("RS256", "ES256", "EdDSA", "RS256"):
        rates.setdefault(alg, []).append(measure(alg))
    rs256 = sum(rates["RS256"]) / len(rates["RS256"])
    for alg in ("ES256", "EdDSA"):
        print(f"bare stack {alg} / RS256 tokens per server CPU-second = "
              f"{rates[alg][0] / rs256:.2f} (the most this stack gains here; "
              f"DESIGN §7 asks authd for >= 3)")


if __name__ == "__main__":
    main()
