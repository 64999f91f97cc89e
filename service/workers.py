"""Several worker processes, each with its own listening socket (DESIGN §7, workers).

uvicorn's own multi-worker mode binds one socket in the supervisor and hands it to
every worker. The kernel wakes the processes blocked in ``accept()`` on one socket
last-in first-out, so with keep-alive connections (every load balancer and every
benchmark keeps them) one worker can end up holding all of them while the others
idle. With ``SO_REUSEPORT`` each worker binds and listens on its own socket on the same
address, and Linux hashes each new connection to one of the listeners: the
connections spread evenly whatever the workers are doing when they arrive.

The supervisor is uvicorn's (``Multiprocess``: graceful ``SIGTERM``, ``SIGHUP``
restart, health pings, a dead or hung worker replaced); only the way a worker gets
its socket changes, plus a stable worker index that a replacement inherits, so the
``authd_worker_requests_total{worker=...}`` series stay bounded across restarts.

Elsewhere (macOS and the BSDs accept ``SO_REUSEPORT`` but do not balance across it)
the workers share one socket as before, and start-up says so.
"""

from __future__ import annotations

import os
import socket
import sys

import structlog
from prometheus_client import multiprocess
from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = structlog.get_logger("authd.workers")

# Read by the app factory of a worker (``service.app.worker_index``); set only by the
# supervisor below, never by an operator.
WORKER_INDEX_VARIABLE = "AUTHD_WORKER_INDEX"
ADMIN_LISTEN_VARIABLE = "AUTHD_ADMIN_LISTEN"


def balanced_listeners_supported(platform: str = sys.platform) -> bool:
    """Only Linux spreads connections across ``SO_REUSEPORT`` listeners."""
    return platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT``, not yet listening (the
    worker's server listens once its application has started)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def admin_listener() -> socket.socket | None:
    """The ``AUTHD_ADMIN_LISTEN`` socket (``service.http.listeners``), bound with
    ``SO_REUSEPORT`` so every worker can hold its own; None when unset. The value was
    validated by ``authd serve`` before any worker started."""
    from service.config import parse_host_port

    text = os.environ.get(ADMIN_LISTEN_VARIABLE, "").strip()
    if not text:
        return None
    host, port = parse_host_port(text)
    return reuse_port_socket(host, port)


def check_port_free(host: str, port: int) -> None:
    """Fail in the supervisor, before any worker starts, when another program (one
    that did not set ``SO_REUSEPORT``) holds the address. A bound socket that is not
    listening is never handed a connection, so this probe steals none."""
    reuse_port_socket(host, port).close()


class ReusePortWorker(Process):
    """One worker: binds its own listener in the child, after the spawn."""

    def __init__(self, config: Config, index: int) -> None:
        super().__init__(config, [])
        self.index = index

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        # Runs in the spawned child (code coverage does not follow it there).
        os.environ[WORKER_INDEX_VARIABLE] = str(self.index)
        try:
            sock = reuse_port_socket(self.config.host, self.config.port)
            admin = admin_listener()
        except OSError as exc:
            log.error("workers.bind_failed", port=self.config.port, error=str(exc))
            sys.exit(STARTUP_FAILURE)  # the supervisor stops rather than restart in a loop
        super().target([sock] if admin is None else [sock, admin])


class ReusePortSupervisor(Multiprocess):
    """uvicorn's supervisor, with one ``ReusePortWorker`` per index."""

    def __init__(self, config: Config) -> None:
        super().__init__(config, sockets=[])
        self.processes: list[Process] = []

    def init_processes(self) -> None:
        for index in range(self.processes_num):
            self.processes.append(self._spawn(index))

    def _spawn(self, index: int) -> ReusePortWorker:
        worker = ReusePortWorker(self.config, index)
        worker.start()
        log.info("workers.started", worker=index, pid=worker.pid)
        return worker

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            _forget_metrics(process.pid)
            if process.exitcode == STARTUP_FAILURE:  # it would fail the same way again
                log.error("workers.startup_failed", worker=index, pid=process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.warning("workers.died", worker=index, pid=process.pid,
                        exitcode=process.exitcode)
            self.processes[index] = self._spawn(index)

    def restart_all(self) -> None:
        """``SIGHUP``: replace each worker in turn, the new one listening before the
        old one stops, so the address never goes unanswered."""
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._spawn(index)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                log.error("workers.restart_aborted", worker=index, pid=new.pid)
                return
            old.terminate()
            old.join()
            _forget_metrics(old.pid)
            self.processes[index] = new

    def handle_ttin(self) -> None:
        self.processes_num += 1
        self.processes.append(self._spawn(self.processes_num - 1))

    def handle_ttou(self) -> None:
        if self.processes_num <= 1:
            return
        self.processes_num -= 1
        process = self.processes.pop()
        process.terminate()
        process.join()
        _forget_metrics(process.pid)


def _forget_metrics(pid: int | None) -> None:
    """A stopped worker's live gauges leave the aggregate; its counters stay summed."""
    if pid is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def run_bound(config: Config) -> None:
    """Bind the listener (and the admin one, when set) here and serve them in this
    process or in uvicorn's shared-socket workers; the balanced mode binds both in
    each worker instead. Handing uvicorn sockets, never a host and port, is what puts
    them on the accepting loop's listener (service/http/accepting.py)."""
    from uvicorn import Server

    admin = admin_listener()
    sockets = [config.bind_socket()] if admin is None else [config.bind_socket(), admin]
    server = Server(config)
    if config.workers > 1:
        Multiprocess(config, sockets=sockets).run()
    else:
        server.run(sockets=sockets)


def run_balanced(config: Config) -> None:
    """Serve ``config`` with ``config.workers`` processes, one listener each."""
    log.info("workers.balanced", workers=config.workers, listener="SO_REUSEPORT per worker")
    ReusePortSupervisor(config).run()
