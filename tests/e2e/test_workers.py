"""``authd serve --workers 2``: one SO_REUSEPORT listener per worker, every worker serving."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import Server, run_cli

pytestmark = pytest.mark.e2e

StartServer = Callable[..., Server]
TCP_LISTEN = "0A"
# Fresh connections opened to see both workers serve: the kernel hashes each one to a
# listener, so all of them landing on one worker has probability 2 ** -31.
CONNECTIONS = 32


def _children(parent: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            found.add(int(entry.name))
    return found


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == TCP_LISTEN:
            inodes.add(fields[9])
    return inodes


def _sockets_of(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
    except OSError:
        pass
    return inodes


def listeners_by_pid(server: Server) -> dict[int, set[str]]:
    """The listening sockets on the server's port, by the process that holds them."""
    assert server.process is not None
    listening = _listening_inodes(server.port)
    owners: dict[int, set[str]] = {}
    for pid in {server.process.pid, *_children(server.process.pid)}:
        held = _sockets_of(pid) & listening
        if held:
            owners[pid] = held
    return owners


def worker_requests(server: Server) -> dict[str, float]:
    text = httpx.get(server.base_url + "/metrics").text
    return {
        sample.labels["worker"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "authd_worker_requests_total"
    }


def wait_for_listeners(server: Server, count: int, *, not_pid: int) -> dict[int, set[str]]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        owners = listeners_by_pid(server)
        if len(owners) == count and not_pid not in owners:
            return owners
        time.sleep(0.2)
    raise AssertionError(f"listeners never settled: {listeners_by_pid(server)}\n{server.logs()}")


def test_each_worker_listens_on_its_own_socket(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """Two workers hold two distinct listening sockets on one port; the supervisor holds none."""
    server = start_server(server_env, workers=2)
    server.wait_ready()
    assert server.process is not None
    owners = wait_for_listeners(server, 2, not_pid=server.process.pid)
    assert all(len(inodes) == 1 for inodes in owners.values())
    assert len(set.union(*owners.values())) == 2
    assert "SO_REUSEPORT per worker" in server.logs()


def test_both_workers_answer_requests(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """Requests on fresh connections are answered by each of the two workers."""
    server = start_server(server_env, workers=2)
    server.wait_ready()
    assert server.process is not None
    # A worker listens once its application has started; until then the other serves.
    wait_for_listeners(server, 2, not_pid=server.process.pid)
    for _ in range(CONNECTIONS):
        with socket.create_connection(("127.0.0.1", server.port)) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: authd\r\nConnection: close\r\n\r\n")
            assert conn.makefile("rb").readline().split()[1] == b"200"
    counts = worker_requests(server)
    assert set(counts) == {"0", "1"}
    assert all(count > 0 for count in counts.values())


def test_a_killed_worker_is_replaced_with_its_own_listener(
    start_server: StartServer, server_env: dict[str, str]
) -> None:
    """After one worker is killed, a new process takes its place with a listener of its own."""
    server = start_server(server_env, workers=2)
    server.wait_ready()
    assert server.process is not None
    owners = wait_for_listeners(server, 2, not_pid=server.process.pid)
    victim = min(owners)
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for_listeners(server, 2, not_pid=victim)
    assert server.process.pid not in replaced
    server.wait_ready()
    assert httpx.get(server.base_url + "/healthz").status_code == 200


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_port_stops_start_up_with_one_line(
    embedded_env: dict[str, str], workers: str
) -> None:
    """With the port held by another program, serve exits non-zero naming it, with one
    worker as with several (each binds its listener itself)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_cli(["serve", "--port", str(port), "--workers", workers],
                         {**embedded_env, "AUTHD_PER_PROCESS_LIMITS": "true"}, check=False)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"authd: cannot listen on 127.0.0.1:{port}: Address already in use"]


def test_workers_without_redis_serve_only_when_per_process_limits_are_accepted(
    start_server: StartServer, tmp_path: Path
) -> None:
    """With AUTHD_PER_PROCESS_LIMITS=true two workers serve without Redis, and start-up
    says loudly that every budget is granted once per worker."""
    env = {"AUTHD_DATA_DIR": str(tmp_path / "data"), "AUTHD_KEYS_DIR": str(tmp_path / "keys"),
           "AUTHD_PER_PROCESS_LIMITS": "true"}
    server = start_server(env, workers=2)
    server.wait_ready()
    assert httpx.get(server.base_url + "/healthz").status_code == 200
    assert "workers.per_process_limits" in server.logs()
