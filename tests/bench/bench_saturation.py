#!/usr/bin/env python3
"""Under saturation (issue 15, DESIGN §7): the API-key exchange beside the floor and the peer.

    .venv/bin/python tests/bench/bench_saturation.py                  # everything, ~8 minutes
    DURATION=3 SECTIONS="openssl bare" .venv/bin/python tests/bench/bench_saturation.py

Sections (``SECTIONS``, in this order; the ratios use whatever ran):
  openssl   ``openssl speed -seconds 5 rsa2048``: the machine's single-core sign rate
  bare      ../shared/bench/bench_bare_stack.sh at c=8 and c=64 (POST /token and /fixed)
  peer      ../shared/bench/bench_oidc_provider.sh at c=8 and c=64 (node oidc-provider)
  sqlite    authd on a SQLite file, no Redis
  postgres  authd on PostgreSQL + Redis (a fresh database per run)
For each authd backend, with 1 and then 2 workers: ``POST /v1/token`` (X-API-Key) and
``POST /oauth/token`` (client_secret_basic, the same request as the bare stack's and the
peer's) at c=8 and c=64; with 1 worker also ``GET /.well-known/jwks.json`` at c=64 and
``/v1/token`` at c=512 with the default in-flight bound (load shedding).

Every row: successful answers/s, non-2xx, socket errors (wrk's timeout is 2 s), p50 / p90 /
p99 / max, the server's cores (utime + stime of the supervisor and every worker, /proc) and
successes per server CPU-second; with 2 workers each worker's share of the requests
(``authd_worker_requests_total``). At c=512 the answered (200) requests' p50/p99 are read
from wrk's histogram on the premise that every shed answer is faster than every admitted
one (sheds are answered before any work); max bounds both.

Every feature stays on: JSON access log, metrics, request ids, rate limits, usage batching.
With 2 workers, SHARE_RUNS more runs of /oauth/token at c=64 (half the duration each)
give the balance over several runs: each worker's share of the connections (sampled
from /proc mid-run) and of the requests.

The per-CPU ratios to the bare stack are also measured interleaved: with one authd worker
up, the bare stack's app is started beside it (the shared script's own virtualenv and
app) and PAIRS rounds of bare ``/token``, authd ``/v1/token``, authd ``/oauth/token`` run
back to back at c=64, PAIR_SECONDS each; the verdict takes the ratio of the pooled
rounds (each server's answers over its CPU-seconds across all rounds), with the rounds'
own ratios and their median printed beside it. Single rows
minutes apart drift by several per cent on a shared VM (the same configuration read
3,078 and 3,350 tokens per CPU-second in consecutive runs), more than the margins the
targets leave.

Env: DURATION (10) WARMUP (3) CONNS ("8 64") SHED_CONNS (512) SHARE_RUNS (5) PAIRS (8)
PAIR_SECONDS (4)
SECTIONS, SHARED_BENCH, BENCH_WORK (the shared script's scratch folder).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.databases import (  # noqa: E402
    REDIS_URL,
    create_database,
    drop_run_databases,
)
from tests.support.servers import Server, free_port, new_kek, run_cli  # noqa: E402

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SHARED_BENCH", REPO.parent / "shared" / "bench"))
OAUTH_LUA = SHARED / "wrk" / "client_credentials.lua"
AUTHD_LUA = HERE / "wrk" / "authd.lua"
DURATION = int(os.environ.get("DURATION", "10"))
WARMUP = int(os.environ.get("WARMUP", "3"))
CONNS = [int(c) for c in os.environ.get("CONNS", "8 64").split()]
SHED_CONNS = int(os.environ.get("SHED_CONNS", "512"))
SHARE_RUNS = int(os.environ.get("SHARE_RUNS", "5"))
PAIRS = int(os.environ.get("PAIRS", "8"))
PAIR_SECONDS = int(os.environ.get("PAIR_SECONDS", "4"))
SECTIONS = os.environ.get("SECTIONS", "openssl bare peer sqlite postgres").split()
CLK_TCK = os.sysconf("SC_CLK_TCK")
SCOPE = "read:things"


def say(text: str) -> None:
    print(text, flush=True)


def note(text: str) -> None:
    print(f"[bench_saturation] {text}", file=sys.stderr, flush=True)


@dataclass
class Row:
    label: str
    conns: int
    ok_rps: float
    non2xx: int
    sock_err: int
    p50: float
    p90: float
    p99: float
    max_ms: float | None = None
    cores: float | None = None
    per_cpu: float | None = None
    shares: list[float] = field(default_factory=list)
    ok_p50: float | None = None
    ok_p99: float | None = None
    conn_shares: list[float] = field(default_factory=list)


HEADER = (f"{'what':<34} {'c':>4} {'ok/s':>7} {'non2xx':>6} {'sockerr':>7} {'p50_ms':>7} "
          f"{'p90_ms':>7} {'p99_ms':>7} {'max_ms':>7} {'cores':>5} {'ok/cpu_s':>8}  shares")


def show(row: Row) -> None:
    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    shares = ""
    if len(row.shares) > 1:
        shares = "req " + " / ".join(f"{s:.0%}" for s in row.shares)
        shares += ", conn " + " / ".join(f"{s:.0%}" for s in row.conn_shares)
    say(f"{row.label:<34} {row.conns:>4} {row.ok_rps:>7.0f} {row.non2xx:>6} {row.sock_err:>7} "
        f"{row.p50:>7.1f} {row.p90:>7.1f} {row.p99:>7.1f} {num(row.max_ms, '7.0f'):>7} "
        f"{num(row.cores, '5.2f'):>5} {num(row.per_cpu, '8.0f'):>8}  {shares}")
    if row.ok_p50 is not None:
        say(f"{'':<34} {'':>4} answered (200) only, est.: p50 {row.ok_p50:.1f} ms, "
            f"p99 {row.ok_p99:.1f} ms; shed (non-2xx) {row.non2xx}")


# --- openssl ------------------------------------------------------------------------

def openssl_sign_rate() -> float:
    out = subprocess.run(["openssl", "speed", "-seconds", "5", "rsa2048"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("rsa 2048"):
            return float(line.split()[-2])
    raise RuntimeError("openssl speed printed no rsa 2048 line")


# --- the shared scripts ---------------------------------------------------------------

def shared_script(name: str, conns: list[int], extra: dict[str, str]) -> list[list[str]]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"CLIENT_ID", "CLIENT_SECRET", "TOKEN_PATH", "TOKEN_SCOPE"}}
    env.update(DURATION=str(DURATION), WARMUP=str(WARMUP), CONNS=" ".join(map(str, conns)),
               PORT=str(free_port()), **extra)
    note(f"{name} (c={conns}, {DURATION}s)")
    done = subprocess.run(["bash", str(SHARED / name)], env=env, capture_output=True, text=True,
                          timeout=1800)
    if done.returncode != 0:
        note(f"{name} failed: {done.stderr.strip().splitlines()[-3:]}")
        return []
    return [line.split() for line in done.stdout.splitlines()]


def bare_rows() -> dict[tuple[str, int], Row]:
    rows = {}
    for f in shared_script("bench_bare_stack.sh", CONNS, {"ROUTES": "fixed token"}):
        if len(f) == 10 and f[0] in {"fixed", "token"}:
            rows[(f[0], int(f[1]))] = Row(
                f"bare stack /{f[0]}", int(f[1]), float(f[2]), int(f[6]), int(f[7]),
                float(f[3]), float(f[4]), float(f[5]), cores=float(f[8]), per_cpu=float(f[9]))
    return rows


def peer_rows() -> dict[int, Row]:
    rows = {}
    for f in shared_script("bench_oidc_provider.sh", CONNS, {}):
        if len(f) == 9 and f[0].isdigit():
            rows[int(f[0])] = Row(
                "peer oidc-provider /token", int(f[0]), float(f[1]), int(f[5]), int(f[6]),
                float(f[2]), float(f[3]), float(f[4]), cores=float(f[7]), per_cpu=float(f[8]))
    return rows


# --- authd ----------------------------------------------------------------------------

def tree_ticks(root: int) -> dict[int, int]:
    """utime + stime of ``root`` and every descendant, by pid."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        found[pid] = ticks.get(pid, 0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return found


def connection_shares(server: Server) -> list[float]:
    """Each worker's part of the established connections on the server's port (what
    SO_REUSEPORT balances), from /proc: the fds of each child against /proc/net/tcp."""
    assert server.process is not None
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == server.port and fields[3] == "01":
            established.add(fields[9])
    held: dict[int, int] = {}
    for pid in tree_ticks(server.process.pid):
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        count = sum(1 for link in links if link[8:-1] in established)
        if count:
            held[pid] = count
    total = sum(held.values()) or 1
    return [held[pid] / total for pid in sorted(held)]


def read_worker_counts(server: Server) -> dict[str, float]:
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    return {s.labels["worker"]: s.value for fam in text_string_to_metric_families(text)
            for s in fam.samples if s.name == "authd_worker_requests_total"}


def wrk(url: str, conns: int, seconds: int, lua: Path, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "2s", "--latency",
         "-s", str(lua), url],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=seconds + 60,
        check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    return {k: float(v) for k, v in (part.split("=") for part in line.split()[1:])}


def measure(server: Server, label: str, path: str, conns: int, lua: Path,
            env: dict[str, str], seconds: int = DURATION, *, worker_counts: bool = True) -> Row:
    """One wrk run against ``server``; ``worker_counts=False`` for a server without
    authd's metrics (the bare stack)."""
    assert server.process is not None
    counts = read_worker_counts if worker_counts else (lambda _server: {})
    before_counts = counts(server)
    before = tree_ticks(server.process.pid)
    started = time.monotonic()
    sampled: list[list[float]] = []
    sampler = threading.Timer(min(2.0, seconds / 2), lambda: sampled.append(
        connection_shares(server)))
    sampler.start()
    result = wrk(server.base_url + path, conns, seconds, lua, env)
    wall = time.monotonic() - started
    sampler.join()
    after = tree_ticks(server.process.pid)
    after_counts = counts(server)
    cpu = sum(after.values()) - sum(before.get(pid, 0) for pid in after)
    cores = cpu / CLK_TCK / wall
    ok = (result["requests"] - result["non200"]) / result["duration_s"]
    served = {w: after_counts[w] - before_counts.get(w, 0) for w in after_counts}
    total = sum(served.values()) or 1
    row = Row(label, conns, ok, int(result["non200"]), int(result["socket_errors"]),
              result["p50_ms"], result["p90_ms"], result["p99_ms"], result["max_ms"],
              cores, ok / cores if cores else None,
              [served[w] / total for w in sorted(served)],
              conn_shares=sampled[0] if sampled else [])
    if "ok_p50_ms" in result and result["non200"]:
        row.ok_p50, row.ok_p99 = result["ok_p50_ms"], result["ok_p99_ms"]
    return row


@dataclass
class Backend:
    name: str
    env: dict[str, str]


async def postgres_env() -> dict[str, str]:
    return {"AUTHD_DATABASE_URL": await create_database("bench"), "AUTHD_REDIS_URL": REDIS_URL,
            "AUTHD_REDIS_PREFIX": f"authd-bench:{os.getpid()}:{time.time_ns()}:",
            "AUTHD_KEK": new_kek()}


def credentials(env: dict[str, str]) -> tuple[str, str]:
    import json

    run_cli(["migrate"], env)
    client = json.loads(run_cli(["--json", "clients", "create", "bench-client", "--scope",
                                 "read:things write:things"], env).stdout)["id"]
    key = json.loads(run_cli(["--json", "apikeys", "create", "--client", client,
                              "--rate-limit", "100000000/s"], env).stdout)["api_key"]
    return client, key


class BareApp:
    """The bare stack's app (``$SHARED/bare_stack/app.py``) on uvicorn from the shared
    script's virtualenv, as ``bench_bare_stack.sh`` starts it, kept up beside authd."""

    def __init__(self) -> None:
        scratch = Path(os.environ.get("BENCH_WORK", Path(tempfile.gettempdir()) / "authd-bench"))
        self.uvicorn = scratch / ".venv" / "bin" / "uvicorn"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> BareApp:
        if not self.uvicorn.exists():
            raise RuntimeError(f"{self.uvicorn} is missing: run the bare section first")
        self.process = subprocess.Popen(
            [str(self.uvicorn), "app:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--loop", "uvloop", "--http", "httptools", "--no-access-log",
             "--log-level", "warning"],
            cwd=SHARED / "bare_stack", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.url + "/jwks", timeout=1).raise_for_status()
                return self
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the bare stack did not start") from None
                time.sleep(0.2)

    def __exit__(self, *_: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)


@dataclass
class Paired:
    """One endpoint's interleaved rounds against the bare stack."""

    rounds: list[float] = field(default_factory=list)  # each round's authd ÷ bare
    authd: list[Row] = field(default_factory=list)
    bare: list[Row] = field(default_factory=list)

    def pooled(self) -> float | None:
        """authd's answers per CPU-second over all its rounds ÷ the bare stack's over
        the rounds beside them (rounds of equal length, so answers/s and cores sum)."""
        def per_cpu_pooled(rows: list[Row]) -> float | None:
            cores = sum(row.cores or 0 for row in rows)
            return sum(row.ok_rps for row in rows) / cores if cores else None
        return ratio(per_cpu_pooled(self.authd), per_cpu_pooled(self.bare))


def paired_ratios(server: Server, label: str, v1_env: dict[str, str],
                  oauth_env: dict[str, str]) -> dict[str, Paired]:
    """PAIRS rounds of bare /token, authd /v1/token, authd /oauth/token back to back
    (c=64, one worker each, PAIR_SECONDS each)."""
    paired = {"/v1/token": Paired(), "/oauth/token": Paired()}
    with BareApp() as bare:
        bare_server = Server(env={}, port=bare.port, log_path=Path(os.devnull),
                             process=bare.process)
        wrk(bare.url + "/token", 16, WARMUP, OAUTH_LUA, {})
        for round_ in range(PAIRS):
            floor = measure(bare_server, f"bare stack /token (round {round_ + 1})", "/token",
                            64, OAUTH_LUA, {}, PAIR_SECONDS, worker_counts=False)
            show(floor)
            for name, lua, env in (("/v1/token", AUTHD_LUA, v1_env),
                                   ("/oauth/token", OAUTH_LUA, oauth_env)):
                row = measure(server, f"{label} {name} (round {round_ + 1})", name, 64, lua,
                              env, PAIR_SECONDS)
                show(row)
                ratio_ = ratio(row.per_cpu, floor.per_cpu)
                if ratio_ is not None:
                    paired[name].rounds.append(ratio_)
                    paired[name].authd.append(row)
                    paired[name].bare.append(floor)
    return paired


PAIRED: dict[str, dict[str, Paired]] = {}  # backend name -> endpoint -> rounds
BACKEND_NAMES = {"SQLite": "sqlite", "PostgreSQL + Redis": "pg+redis"}


def run_authd(backend: Backend, work: Path) -> dict[tuple[int, str, int], Row]:
    client, key = credentials(backend.env)
    v1_env = {"AUTHD_MODE": "v1", "API_KEY": key}
    oauth_env = {"CLIENT_ID": client, "CLIENT_SECRET": key, "TOKEN_SCOPE": SCOPE,
                 "TOKEN_PATH": "/oauth/token"}
    rows: dict[tuple[int, str, int], Row] = {}
    for workers in (1, 2):
        server = Server(env=dict(backend.env), port=free_port(),
                        log_path=work / f"{backend.name}-{workers}w.log", workers=workers)
        note(f"authd on {backend.name}, {workers} worker(s), port {server.port}")
        server.start()
        try:
            server.wait_ready()
            wrk(server.base_url + "/v1/token", 16, WARMUP, AUTHD_LUA, v1_env)
            wrk(server.base_url + "/oauth/token", 16, WARMUP, OAUTH_LUA, oauth_env)
            for name, path, lua, env in (("/v1/token", "/v1/token", AUTHD_LUA, v1_env),
                                         ("/oauth/token", "/oauth/token", OAUTH_LUA, oauth_env)):
                for conns in CONNS:
                    row = measure(server, f"authd {backend.name} {workers}w {name}", path,
                                  conns, lua, env)
                    rows[(workers, name, conns)] = row
                    show(row)
            if workers == 2:
                # The balance check: each of the workers' shares over SHARE_RUNS runs.
                for run in range(SHARE_RUNS):
                    row = measure(server, f"authd {backend.name} 2w /oauth/token #{run + 1}",
                                  "/oauth/token", 64, OAUTH_LUA, oauth_env,
                                  seconds=max(3, DURATION // 2))
                    rows[(2, f"share{run}", 64)] = row
                    show(row)
            if workers == 1 and PAIRS:
                PAIRED[backend.name] = paired_ratios(server, f"authd {backend.name} 1w",
                                                     v1_env, oauth_env)
            if workers == 1:
                row = measure(server, f"authd {backend.name} 1w jwks", "/.well-known/jwks.json",
                              64, AUTHD_LUA, {"AUTHD_MODE": "get"})
                rows[(1, "jwks", 64)] = row
                show(row)
                row = measure(server, f"authd {backend.name} 1w /v1/token shed", "/v1/token",
                              SHED_CONNS, AUTHD_LUA, v1_env)
                rows[(1, "shed", SHED_CONNS)] = row
                show(row)
        finally:
            server.stop()
    return rows


# --- the verdict ----------------------------------------------------------------------

def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def per_cpu(row: Row | None) -> float | None:
    return row.per_cpu if row else None


def check(text: str, value: float | None, target: float, *, at_most: bool = False,
          fmt: str = ".2f") -> None:
    if value is None:
        say(f"  {text}: n/a")
        return
    met = value <= target if at_most else value >= target
    sign = "<=" if at_most else ">="
    say(f"  {text}: {value:{fmt}} (target {sign} {target:{fmt}}) {'ok' if met else 'MISSED'}")


def verdict(sign: float | None, bare: dict[tuple[str, int], Row], peer: dict[int, Row],
            authd: dict[str, dict[tuple[int, str, int], Row]]) -> None:
    say("\nRatios (DESIGN §7; same run, per server CPU-second unless said)")
    bare_token = bare.get(("token", 64))
    bare_fixed = bare.get(("fixed", 64))
    if sign and bare_token and bare_token.per_cpu:
        say(f"  bare stack /token per CPU-s / openssl sign: {bare_token.per_cpu / sign:.2f}")
    for name, rows in authd.items():
        say(f" {name}:")
        one = {k[1:]: v for k, v in rows.items() if k[0] == 1}
        two = {k[1:]: v for k, v in rows.items() if k[0] == 2}
        base = bare_token.per_cpu if bare_token else None
        paired = PAIRED.get(BACKEND_NAMES.get(name, ""), {})
        for endpoint, target in (("/v1/token", 0.92), ("/oauth/token", 0.90)):
            row = one.get((endpoint, 64))
            single = ratio(per_cpu(row), base)
            pairs = paired.get(endpoint)
            if pairs and pairs.rounds:
                rounds = pairs.rounds
                say(f"  {endpoint} 1w c=64 / bare /token, the rows above (minutes apart): "
                    + ("n/a" if single is None else f"{single:.2f}"))
                say(f"  {endpoint} 1w c=64 / bare /token, each of {len(rounds)} interleaved "
                    f"rounds: {', '.join(f'{r:.2f}' for r in rounds)} (median "
                    f"{statistics.median(rounds):.2f})")
                check(f"{endpoint} 1w c=64 / bare /token, the {len(rounds)} rounds pooled",
                      pairs.pooled(), target)
            else:
                check(f"{endpoint} 1w c=64 / bare /token", single, target)
        jwks = one.get(("jwks", 64))
        check("JWKS 1w c=64 / bare /fixed", ratio(per_cpu(jwks), per_cpu(bare_fixed)), 0.6)
        for endpoint in ("/v1/token", "/oauth/token"):
            for conns, limit in ((64, 3.0), (8, 2.0)):
                row = one.get((endpoint, conns))
                if row:
                    floor = bare.get(("token", conns))
                    check(f"{endpoint} 1w c={conns} p99/p50", row.p99 / row.p50, limit,
                          at_most=True)
                    if floor:
                        say(f"    (bare stack /token c={conns} p99/p50 in this run: "
                            f"{floor.p99 / floor.p50:.2f})")
            row = one.get((endpoint, 64))
            if row:
                check(f"{endpoint} 1w c=64 max latency ms", row.max_ms, 1000, at_most=True,
                      fmt=".0f")
                check(f"{endpoint} 1w c=64 socket errors", row.sock_err, 0, at_most=True,
                      fmt=".0f")
            row2 = two.get((endpoint, 64))
            if row2:
                check(f"{endpoint} 2w c=64 server cores", row2.cores, 1.8)
                if row2.shares:
                    say(f"  {endpoint} 2w c=64 worker shares of requests: "
                        + " / ".join(f"{s:.0%}" for s in row2.shares)
                        + ", of connections: " + " / ".join(f"{s:.0%}" for s in row2.conn_shares)
                        + " (target each 35-65 %)")
                peer_row = peer.get(64)
                check(f"{endpoint} 2w c=64 tokens/s / peer tokens/s",
                      ratio(row2.ok_rps, peer_row.ok_rps if peer_row else None), 1.0)
        runs = [row for key, row in two.items() if str(key[0]).startswith("share")]
        if runs:
            lows = [min(row.conn_shares or [0.0]) for row in runs]
            say(f"  2w c=64 /oauth/token over {len(runs)} runs: smallest worker share of "
                f"connections {min(lows):.0%} (target >= 35 %), of requests "
                f"{min(min(row.shares or [0.0]) for row in runs):.0%}; cores "
                f"{min(row.cores or 0 for row in runs):.2f}-"
                f"{max(row.cores or 0 for row in runs):.2f} (target >= 1.8)")
        shed = one.get(("shed", SHED_CONNS))
        if shed:
            say(f"  c={SHED_CONNS} 1w: {shed.ok_rps:.0f} ok/s, {shed.non2xx} shed (503), "
                f"{shed.sock_err} socket errors, max {shed.max_ms:.0f} ms")
            if shed.ok_p50 and shed.ok_p99:
                check(f"c={SHED_CONNS} answered p99/p50 (est.)", shed.ok_p99 / shed.ok_p50, 3.0,
                      at_most=True)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="authd-bench-saturation."))
    note(f"server logs in {work}")
    say(f"authd under saturation: {os.cpu_count()} cores, wrk -t1, {DURATION}s per row, "
        f"timeout 2s, sections: {' '.join(SECTIONS)}")
    sign: float | None = None
    bare: dict[tuple[str, int], Row] = {}
    peer: dict[int, Row] = {}
    authd: dict[str, dict[tuple[int, str, int], Row]] = {}
    if "openssl" in SECTIONS:
        sign = openssl_sign_rate()
        say(f"openssl speed rsa2048: {sign:.0f} sign/s (1 core)")
    say(HEADER)
    if "bare" in SECTIONS:
        bare = bare_rows()
        for row in bare.values():
            show(row)
    if "peer" in SECTIONS:
        peer = peer_rows()
        for row in peer.values():
            show(row)
    try:
        if "sqlite" in SECTIONS:
            # 2 workers without Redis: per-process limits, accepted for the benchmark.
            env = {"AUTHD_DATABASE_URL": f"sqlite:///{work / 'authd.sqlite3'}",
                   "AUTHD_KEK": new_kek(), "AUTHD_PER_PROCESS_LIMITS": "true"}
            authd["SQLite"] = run_authd(Backend("sqlite", env), work)
        if "postgres" in SECTIONS:
            env = asyncio.run(postgres_env())
            authd["PostgreSQL + Redis"] = run_authd(Backend("pg+redis", env), work)
    finally:
        asyncio.run(drop_run_databases())
    verdict(sign, bare, peer, authd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
