#!/usr/bin/env python3
"""What authd adds to a token outside the signature, in-process and by instruction count.

Over HTTP the per-CPU ratio to the bare stack moves by several per cent between runs on
a shared VM, more than one change to the hot path is worth. This drives the real
applications through uvicorn's own HTTP protocol (the one ``authd serve`` runs, the
plain one for the bare stack), fed the same request bytes wrk sends, on a transport
that only counts what is written: parsing, the ASGI cycle, the application and the
response are all there; the socket, the kernel and the signature are not (the
signature is replaced by a fixed 256-byte string in both, so the figure is everything
else). Each mode runs in a fresh interpreter.

    .venv/bin/python tests/bench/bench_hot_path.py               # µs per request
    .venv/bin/python tests/bench/bench_hot_path.py --callgrind   # instructions per request

``--callgrind`` runs each mode under ``valgrind --tool=callgrind`` with instrumentation
on only around the measured requests: instruction counts are the same from run to run
and whatever else the machine does, so a change of a few hundred instructions per
request shows (about 0.1 µs). Over HTTP the same instructions cost roughly twice as
long as here (the signature leaves the caches cold); the ratio that counts is still
measured by ``make bench``.

Env: REQUESTS (20000; 2000 under callgrind) CONNS (64: requests fed per turn, one per
connection) SHARED_BENCH (../shared/bench).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SHARED_BENCH", REPO.parent / "shared" / "bench"))
MODES = ("bare", "v1", "oauth")
SCOPE = b"scope=read%3Athings"
FAKE_SIGNATURE = b"\x00" * 256
WARMUP = 2000


class CountingTransport:
    """The socket's stand-in: counts the writes of one connection."""

    def __init__(self) -> None:
        self.writes = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def request(path: str, headers: dict[str, str], body: bytes) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1:8000",
            "Content-Type: application/x-www-form-urlencoded", "Accept: application/json",
            *(f"{name}: {value}" for name, value in headers.items()),
            f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def basic(client: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client}:{secret}".encode()).decode()


def bare_app() -> tuple[Any, type, bytes]:
    """The bare stack's app with its key's ``sign`` replaced."""
    sys.path.insert(0, str(SHARED / "bare_stack"))
    import app as bare  # type: ignore[import-not-found]
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class Unsigned:
        def sign(self, *_: object) -> bytes:
            return FAKE_SIGNATURE

    bare.KEY = Unsigned()
    body = b"grant_type=client_credentials&" + SCOPE
    return bare.app, HttpToolsProtocol, request(
        "/token", {"Authorization": basic("bench-client", "bench-secret")}, body)


def authd_app(mode: str) -> tuple[Any, type, bytes]:
    """authd as ``authd serve`` builds it (SQLite, JSON access log) with the signer
    replaced, and a client and key made by the real CLI."""
    sys.path.insert(0, str(REPO))
    from tests.bench.bench_saturation import credentials
    from tests.support.servers import new_kek

    work = Path(tempfile.mkdtemp(prefix="authd-hot-path-"))
    env = {"AUTHD_DATABASE_URL": f"sqlite:///{work / 'authd.sqlite3'}", "AUTHD_KEK": new_kek()}
    client, key = credentials(env)
    os.environ.update({"AUTHD_LOG_FORMAT": "json", "AUTHD_LOG_LEVEL": "info", **env})
    import service.signing.keyring as keyring

    setattr(keyring, "jws_signer", lambda *_: (lambda _message: FAKE_SIGNATURE))  # noqa: B010
    from service.app import create_app_from_env
    from service.http.fair_order import FairHttpToolsProtocol

    app = create_app_from_env()
    if mode == "v1":
        raw = request("/v1/token", {"X-API-Key": key}, SCOPE)
    else:
        raw = request("/oauth/token", {"Authorization": basic(client, key)},
                      b"grant_type=client_credentials&" + SCOPE)
    return app, FairHttpToolsProtocol, raw


async def serve(mode: str, requests: int, conns: int, callgrind: bool) -> float:
    """µs per request of the measured loop (after a warm-up)."""
    from uvicorn.config import Config
    from uvicorn.lifespan.on import LifespanOn
    from uvicorn.server import ServerState

    app, protocol_class, raw = bare_app() if mode == "bare" else authd_app(mode)
    # As `authd serve` configures uvicorn (its Config first, then the app's logging).
    config = Config(app=app, lifespan="on", access_log=False, log_config=None,
                    server_header=False, proxy_headers=False)
    config.load()
    if mode != "bare":
        from service.observability.logging import configure

        configure("json", "info")
    lifespan = LifespanOn(config)
    await lifespan.startup()
    loop = asyncio.get_running_loop()
    state = ServerState()
    connections: list[tuple[Any, CountingTransport]] = []
    for _ in range(conns):
        transport = CountingTransport()
        protocol = protocol_class(config=config, server_state=state,
                                  app_state=lifespan.state, _loop=loop)
        protocol.connection_made(transport)
        connections.append((protocol, transport))

    async def run(total: int) -> None:
        """``total`` requests, one per connection per turn, each answered before the
        connection's next one is fed (as wrk's connections do)."""
        for _ in range(0, total, conns):
            wanted = [transport.writes + 1 for _, transport in connections]
            for protocol, _ in connections:
                protocol.data_received(raw)
            # One turn of the loop at a time, as the server's loop turns.
            while any(transport.writes < want  # noqa: ASYNC110
                      for (_, transport), want in zip(connections, wanted, strict=True)):
                await asyncio.sleep(0)

    await run(WARMUP)
    gc.collect()
    gc.freeze()  # as authd serve does after start-up (create_app(freeze_heap=True))
    toggle: Callable[[str], object] = (
        (lambda on: subprocess.run(["callgrind_control", "-i", on, str(os.getpid())],
                                   capture_output=True, check=True))
        if callgrind else (lambda _on: None))
    toggle("on")
    started = time.perf_counter()
    await run(requests)
    elapsed = time.perf_counter() - started
    toggle("off")
    await lifespan.shutdown()
    return elapsed / requests * 1e6


def child(mode: str, requests: int, conns: int, callgrind: bool) -> None:
    import uvloop

    sys.stderr = open(os.devnull, "w")  # authd's access lines
    print(f"{uvloop.run(serve(mode, requests, conns, callgrind)):.2f}")


def instructions(path: Path) -> int:
    out = subprocess.run(["callgrind_annotate", str(path)], capture_output=True, text=True,
                         check=True).stdout
    line = next(line for line in out.splitlines() if "PROGRAM TOTALS" in line)
    return int(line.split()[0].replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--child", choices=MODES)
    args = parser.parse_args()
    conns = int(os.environ.get("CONNS", "64"))
    requests = int(os.environ.get("REQUESTS", "2048" if args.callgrind else "20480"))
    requests -= requests % conns
    if args.child:
        child(args.child, requests, conns, args.callgrind)
        return 0
    me = [sys.executable, str(Path(__file__).resolve())]
    results: dict[str, float] = {}
    for mode in MODES:
        if args.callgrind:
            with tempfile.TemporaryDirectory() as scratch:
                out = Path(scratch) / "callgrind.out"
                subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                f"--callgrind-out-file={out}", *me, "--callgrind",
                                "--child", mode],
                               env={**os.environ, "REQUESTS": str(requests)}, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                results[mode] = instructions(out) / requests
            print(f"{mode:6} {results[mode]:10,.0f} instructions per request "
                  f"({requests} requests, {conns} per turn)")
        else:
            runs = [float(subprocess.run([*me, "--child", mode], capture_output=True,
                                         text=True, check=True).stdout) for _ in range(3)]
            results[mode] = min(runs)
            print(f"{mode:6} {results[mode]:8.2f} µs per request, best of "
                  f"{', '.join(f'{r:.2f}' for r in runs)} ({requests} requests, {conns} "
                  "per turn)")
    unit = "instructions" if args.callgrind else "µs"
    for mode in ("v1", "oauth"):
        print(f"authd {mode} - bare: {results[mode] - results['bare']:,.1f} {unit} per request, "
              f"{results[mode] / results['bare']:.2f} times the bare app's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
