"""Start the real ``authd serve`` process and the real CLI, as an operator would."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def base_env(extra: Mapping[str, str]) -> dict[str, str]:
    # OTEL_* too: an operator shell that traces must not turn tracing on in tests.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHD_", "OTEL_"))}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update({"AUTHD_LOG_FORMAT": "json", "AUTHD_LOG_LEVEL": "info"})
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: Mapping[str, str], *, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``authd ARGS`` in a subprocess, with ``env`` as its whole AUTHD_* environment."""
    result = subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=base_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"authd {' '.join(args)} failed: {result.stderr}")
    return result


@dataclass
class Server:
    env: dict[str, str]
    port: int
    log_path: Path
    workers: int = 1
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        scheme = "https" if "AUTHD_TLS_CERT_FILE" in self.env else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Server:
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the fd
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", "serve", "--port", str(self.port),
                 "--workers", str(self.workers)],
                env=base_env(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.logs()}")
            try:
                response = httpx.get(f"{self.base_url}/healthz", timeout=1, verify=False)
                if response.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"server did not become healthy:\n{self.logs()}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2, verify=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready:\n{self.logs()}")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, args: list[str], *, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli(args, self.env, stdin=stdin, check=check)
