"""Child processes for emulated boards: start one, read its one-line JSON announcement, stop it for sure; and the
CPUs they start on (board_cpus), so a bench keeps the emulated boards off the host's CPU."""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from hil.errors import LinkError

PR_SET_PDEATHSIG = 1
_BOARD_CPUS: contextvars.ContextVar[frozenset[int] | None] = contextvars.ContextVar("board_cpus", default=None)


@contextlib.contextmanager
def board_cpus(cpus: list[int] | None) -> Iterator[None]:
    """Every board process started in the body (a Child) runs on these CPUs (None: wherever this thread may). On a
    mock rig the boards are emulated on the host's machine; on their own CPUs they neither take the host's CPU
    time nor evict its caches, as real boards would not (the host's latency is then its own)."""
    token = _BOARD_CPUS.set(frozenset(cpus) if cpus else None)
    try:
        yield
    finally:
        _BOARD_CPUS.reset(token)


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    """Popen, on the board CPUs when board_cpus set them: this thread's affinity is the child's at fork, so it is
    set for the fork and put back (no preexec_fn, no race with the child's own threads)."""
    cpus = _BOARD_CPUS.get()
    own = os.sched_getaffinity(0) if cpus else None
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    finally:
        if own is not None:
            os.sched_setaffinity(0, own)


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies, so no emulator outlives a killed run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before we asked
        sys.exit(0)


def process_identity(pid: int | None = None) -> str:
    """"PID@START" for a running process (this one by default): its pid and its start time in clock ticks after boot
    (/proc/PID/stat, field 22), which no later process given the same pid shares; "" where /proc cannot say."""
    pid = os.getpid() if pid is None else pid
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        # the command name (field 2) may hold spaces and parentheses: the fields after it follow the last ")"
        return f"{pid}@{int(stat[stat.rindex(b')') + 2:].split()[19])}"
    except (OSError, ValueError, IndexError):
        return ""


def process_running(identity: str) -> bool:
    """Whether the process process_identity() named is still running (not a later one with its pid)."""
    pid, _, _ = identity.partition("@")
    return pid.isdigit() and process_identity(int(pid)) == identity


class Child:
    """A board emulator process that announces where it listens as one JSON line on stdout."""

    def __init__(self, argv: list[str], name: str, timeout_s: float = 10.0) -> None:
        self.name = name
        self.proc = _spawn(argv)
        self.info: dict[str, Any] = self._announcement(timeout_s)

    @classmethod
    def python(cls, module: str, args: list[str], name: str, timeout_s: float = 10.0) -> Child:
        return cls([sys.executable, "-m", module, *args], name, timeout_s)

    def _announcement(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                break
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 1)
                if not chunk:
                    break
                line += chunk
        try:
            return dict(json.loads(line))
        except (ValueError, TypeError):
            self.stop()
            err = self.proc.stderr.read().decode(errors="replace")[-2000:] if self.proc.stderr else ""
            raise LinkError(f"{self.name}: the emulator did not announce itself ({line!r}); stderr: {err}") from None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 3.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
