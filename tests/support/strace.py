"""Watch a running server's socket writes with strace, as an operator would.

:class:`Strace` attaches Debian's ``strace`` to a process (every thread of it) for the
length of a ``with`` block and then reads back each system call that wrote to a TCP
socket, with the socket's two addresses, so a test can pick one connection's writes.
A missing strace, or one that may not attach (ptrace not permitted), fails the test
with the reason: it is never a skip (DESIGN §8). ``tests/services.sh`` installs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

SEND_SYSCALLS = ("sendto", "write", "writev", "sendmsg")

# -ttt -yy: "1733350000.123456 write(16<TCP:[127.0.0.1:8000->127.0.0.1:54321]>, "HTTP/1.1
# 200 OK\r\n"..., 1107) = 1107"; with -ff every thread has its own file, so a call is
# never split into "<unfinished ...>" and "<... resumed>" lines.
_SEND_LINE = re.compile(
    r"^(?P<at>\d+\.\d+) (?P<syscall>\w+)\(\d+<TCP(?:v6)?:\[(?P<local>\S+?)->(?P<peer>\S+?)\]>, "
    r"(?P<arguments>.*)\) += (?P<result>-?\d+)"
)


@dataclass(frozen=True)
class Send:
    """One system call that wrote to a TCP socket, as strace printed it."""

    at: float
    syscall: str
    local: str  # "127.0.0.1:8000": the traced process's end of the connection
    peer: str
    arguments: str  # after the descriptor; strings escaped and cut at 64 characters
    result: int  # bytes written, or -1

    def starts_with(self, prefix: str) -> bool:
        """Whether the first bytes written (the first buffer, for writev) begin so."""
        return self.arguments.partition('"')[2].startswith(prefix)


class Strace:
    """``strace -ff`` attached to ``pid`` inside the ``with`` block, its output under
    ``directory``; :meth:`sends` reads it once the block has ended."""

    def __init__(self, pid: int, directory: Path, *, attach_timeout: float = 5.0) -> None:
        self.pid = pid
        self._prefix = directory / f"strace-{pid}"
        self._said = directory / f"strace-{pid}.stderr"
        self._attach_timeout = attach_timeout
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Strace:
        executable = shutil.which("strace")
        if executable is None:
            raise AssertionError(
                "strace is not installed: tests/services.sh installs Debian's (apt-get "
                "install strace); this test watches system calls and cannot run without it"
            )
        with self._said.open("wb") as said:  # the child keeps its own copy of the fd
            self._process = subprocess.Popen(
                [executable, "-ff", "-ttt", "-yy", "-s", "64",
                 "-e", "trace=" + ",".join(SEND_SYSCALLS),
                 "-o", str(self._prefix), "-p", str(self.pid)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=said,
            )
        self._wait_attached(self._process)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._stop(self._process)

    def sends(self) -> list[Send]:
        """Every traced write to a TCP socket, in the order the calls were made."""
        sends = []
        for path in self._prefix.parent.glob(self._prefix.name + ".[0-9]*"):
            for line in path.read_text(errors="replace").splitlines():
                match = _SEND_LINE.match(line)
                if match is not None and match["syscall"] in SEND_SYSCALLS:
                    sends.append(Send(
                        at=float(match["at"]), syscall=match["syscall"], local=match["local"],
                        peer=match["peer"], arguments=match["arguments"],
                        result=int(match["result"]),
                    ))
        return sorted(sends, key=lambda send: send.at)

    def _wait_attached(self, process: subprocess.Popen[bytes]) -> None:
        # strace says "Process N attached" once it has seized and interrupted every
        # thread of N: none makes another system call untraced, so a request sent after
        # this line is seen whole.
        attached = re.compile(rb"Process %d attached" % self.pid)
        deadline = time.monotonic() + self._attach_timeout
        while time.monotonic() < deadline:
            exited = process.poll() is not None  # read after: its last words are in
            if attached.search(self._said.read_bytes()):
                return
            if exited:
                break
            time.sleep(0.01)
        self._stop(process)
        said = self._said.read_text(errors="replace").strip()
        raise AssertionError(
            f"strace did not attach to process {self.pid} within {self._attach_timeout} s; "
            f"it said: {said!r} (attaching to a process that is not strace's own child "
            "needs root or CAP_SYS_PTRACE, and kernel.yama.ptrace_scope below 3)"
        )

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        """Detach (strace lets the traced process run on when it gets SIGTERM)."""
        self._process = None
        if process.poll() is None:
            process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
