"""The machine's own scheduling floor: a cyclictest-style probe beside the chain, and cyclictest itself when installed.

A probe sleeps to absolute deadlines at a fixed period (clock_nanosleep, TIMER_ABSTIME, CLOCK_MONOTONIC)
and records how late each wake-up is into an HDR histogram. By default it runs in a child process, so
it measures what the OS gives a process on this machine, not how long the chain holds the GIL; the
in-process thread mode measures the latter on purpose (wake-up lateness of a Python thread beside the
chain, GIL waits included). A stage's tail is read against this floor: a p99 near the floor's is the
machine, not the code.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from hil.drivers.histograms import record_many
from hil.errors import HilError
from hil.measure.latency import decode_histogram, encode_histogram, histogram_summary, new_histogram

log = logging.getLogger("hil.measure.floor")

CLOCK_MONOTONIC, TIMER_ABSTIME = 1, 1  # <time.h> on Linux
CYCLICTEST_HISTOGRAM_US = 100_000  # cyclictest buckets 0..100 ms per µs; later wake-ups count as overflows
FLUSH_AT = 4096


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _sleeper() -> Callable[[int], None]:
    """clock_nanosleep to an absolute CLOCK_MONOTONIC time in ns (ctypes drops the GIL for the call)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.clock_nanosleep
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Timespec), ctypes.c_void_p]
    ts = _Timespec()
    ref = ctypes.byref(ts)

    def sleep_until(t_ns: int) -> None:
        ts.tv_sec, ts.tv_nsec = divmod(t_ns, 1_000_000_000)
        fn(CLOCK_MONOTONIC, TIMER_ABSTIME, ref, None)  # EINTR just ends this wait early: it counts as on time

    return sleep_until


def probe_loop(period_ns: int, stop: Callable[[], bool], hist: HdrHistogram) -> tuple[int, int]:
    """Wake at absolute deadlines every period_ns until stop() is true; lateness into hist. (iterations, missed).

    A wake-up later than the next deadline skips the deadlines it slept through (counted as missed), as
    cyclictest does, so one long stall is one large value, not a run of catch-up values.
    """
    sleep_until = _sleeper()
    now = time.monotonic_ns
    buf: list[int] = []
    iterations = missed = 0
    deadline = now() + period_ns
    while not stop():
        sleep_until(deadline)
        woke = now()
        if woke < deadline:  # interrupted by a signal: not a measurement
            continue
        late = woke - deadline
        buf.append(late)
        iterations += 1
        skipped = late // period_ns
        missed += skipped
        deadline += (skipped + 1) * period_ns
        if len(buf) >= FLUSH_AT:
            record_many(hist, buf)
            buf.clear()
    record_many(hist, buf)
    return iterations, missed


def _try_fifo(priority: int | None) -> str:
    """Make the calling thread SCHED_FIFO; '' when done or not asked, else why not."""
    if priority is None:
        return ""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as e:
        note = f"SCHED_FIFO {priority} refused ({e.strerror}: needs root or CAP_SYS_NICE), ran SCHED_OTHER"
        log.warning("floor probe: %s", note)
        return note
    return ""


class FloorProbe:
    """A cyclictest-style probe that runs beside the chain: start(), run the chain, stop() -> histogram (ns).

    in_process=False (default) runs it as a child process (`python -m hil.measure.floor`): it inherits this
    process's scheduler and affinity, so apply the real-time options first to measure under them.
    fifo_priority asks the probe (its process, or its thread only) to go SCHED_FIFO itself; without the
    permission it runs SCHED_OTHER and `note` says so.
    """

    def __init__(self, period_us: int = 1000, in_process: bool = False, fifo_priority: int | None = None,
                 cpus: list[int] | None = None) -> None:
        if period_us <= 0:
            raise ValueError("period_us must be positive")
        self.period_us = int(period_us)
        self.in_process = in_process
        self.fifo_priority = fifo_priority
        self.cpus = cpus  # process mode: pin the probe where the loop runs, to see that CPU's floor
        self.iterations = 0
        self.missed = 0
        self.note = ""
        self.ran_on: list[int] = []  # the CPUs the probe was allowed on
        self.histogram: HdrHistogram | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def mode(self) -> str:
        return "thread" if self.in_process else "process"

    def start(self) -> FloorProbe:
        if self._thread or self._proc:
            raise RuntimeError("probe already started")
        if self.in_process:
            hist = new_histogram()
            self.histogram = hist

            def run() -> None:
                self.note = _try_fifo(self.fifo_priority)  # this thread only: the chain keeps its own policy
                self.ran_on = sorted(os.sched_getaffinity(0))
                self.iterations, self.missed = probe_loop(self.period_us * 1000, self._stop.is_set, hist)

            self._thread = threading.Thread(target=run, name="hil-floor-probe", daemon=True)
            self._thread.start()
            return self
        argv = [sys.executable, "-m", "hil.measure.floor", "--period-us", str(self.period_us)]
        if self.fifo_priority is not None:
            argv += ["--fifo", str(self.fifo_priority)]
        if self.cpus:
            argv += ["--cpus", ",".join(map(str, self.cpus))]
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._proc.stdout is not None
        ready = self._proc.stdout.readline()  # the probe says when it is measuring
        if not ready.startswith(b"ready"):
            err = self._proc.stderr.read().decode(errors="replace")[-2000:] if self._proc.stderr else ""
            self._proc.wait()
            raise HilError(f"floor probe did not start: {ready!r} {err}")
        self.note = ready.decode().strip().removeprefix("ready").strip()
        return self

    def stop(self) -> HdrHistogram:
        """Stop the probe and return its lateness histogram (ns)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        elif self._proc is not None:
            proc, self._proc = self._proc, None
            proc.send_signal(signal.SIGTERM)
            try:
                out, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise HilError("floor probe did not stop") from None
            try:
                result = json.loads(out)
            except ValueError:
                raise HilError(f"floor probe gave no result: {err.decode(errors='replace')[-2000:]}") from None
            self.histogram = decode_histogram(result["hdr"])
            self.iterations, self.missed = int(result["iterations"]), int(result["missed"])
            self.ran_on = [int(c) for c in result["cpus"]]
        if self.histogram is None:
            raise RuntimeError("probe was never started")
        return self.histogram

    def summary(self) -> dict[str, Any]:
        """The floor for results JSON: lateness percentiles (µs) and how the probe ran."""
        if self.histogram is None:
            raise RuntimeError("probe was never started")
        return {"source": f"probe ({self.mode})", "period_us": self.period_us, "iterations": self.iterations,
                "missed_periods": self.missed, "cpus": self.ran_on, "note": self.note,
                **histogram_summary(self.histogram), "hdr": encode_histogram(self.histogram)}

    def __enter__(self) -> FloorProbe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None or self._proc is not None:
            self.stop()


def fifo_permitted(priority: int) -> bool:
    """Whether this process may make a thread SCHED_FIFO at `priority` (asked in a throwaway fork)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            code = 0
        except OSError:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


# --- cyclictest ------------------------------------------------------------------------------------------


class Cyclictest:
    """rt-tests' cyclictest as a background run: start(), then wait() for a fixed run or stop() to end it.

    Runs with --default-system so it does not tune the machine (cpu_dma_latency) under the chain: the
    floor describes the machine the chain ran on. cyclictest refuses to run at all unless it may go
    SCHED_FIFO (its privilege check), so a normal user gets PermissionError here; a -p above the user's
    RLIMIT_RTPRIO is dropped and `note` says so.
    """

    def __init__(self, interval_us: int = 1000, priority: int | None = None, loops: int | None = None,
                 mlock: bool = False, cpus: list[int] | None = None, path: str | None = None) -> None:
        found = path or shutil.which("cyclictest")
        if found is None:
            raise FileNotFoundError("cyclictest not found: apt-get install rt-tests")
        if not fifo_permitted(1):  # cyclictest insists on being able to go SCHED_FIFO, even without -p
            raise PermissionError("cyclictest needs SCHED_FIFO permission (root, CAP_SYS_NICE or RLIMIT_RTPRIO)")
        self.path = found
        self.interval_us, self.priority, self.loops, self.mlock, self.cpus = interval_us, priority, loops, mlock, cpus
        self.note = ""
        self._dir = tempfile.TemporaryDirectory(prefix="hil-cyclictest-")
        self._json = Path(self._dir.name) / "cyclictest.json"
        self._proc: subprocess.Popen[bytes] | None = None

    def argv(self, with_priority: bool = True) -> list[str]:
        a = [self.path, "-q", "--default-system", "-i", str(self.interval_us), "-h", str(CYCLICTEST_HISTOGRAM_US),
             "--histfile=/dev/null", f"--json={self._json}"]
        if self.loops is not None:
            a += ["-l", str(self.loops)]
        if self.priority is not None and with_priority:
            a += ["-p", str(self.priority)]
        if self.mlock:
            a.append("-m")
        if self.cpus:
            a += ["-a", ",".join(map(str, self.cpus))]
        return a

    def start(self) -> Cyclictest:
        with_priority = self.priority is not None and fifo_permitted(self.priority)
        if self.priority is not None and not with_priority:
            self.note = f"-p {self.priority} not permitted (RLIMIT_RTPRIO too low), ran SCHED_OTHER"
            log.warning("cyclictest: %s", self.note)
        self._proc = subprocess.Popen(self.argv(with_priority), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def wait(self, timeout_s: float | None = None) -> dict[str, Any]:
        assert self._proc is not None, "start() first"
        try:
            _, err = self._proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return self.stop()
        return self._result(err)

    def stop(self) -> dict[str, Any]:
        """End a running cyclictest (SIGTERM: it still writes its results) and return its summary."""
        assert self._proc is not None, "start() first"
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        _, err = self._proc.communicate(timeout=10)
        return self._result(err)

    def _result(self, err_bytes: bytes) -> dict[str, Any]:
        assert self._proc is not None
        err = err_bytes.decode(errors="replace")
        if self._proc.returncode != 0 or not self._json.exists():
            raise HilError(f"cyclictest failed (exit {self._proc.returncode}): {err.strip()[-500:]}")
        try:
            summary = parse_cyclictest_json(json.loads(self._json.read_text()))
        finally:
            self._dir.cleanup()
        summary.update({"interval_us": self.interval_us, "priority": None if self.note else self.priority,
                        "note": self.note})
        return summary


def parse_cyclictest_json(doc: dict[str, Any]) -> dict[str, Any]:
    """cyclictest --json (with -h) into our summary: all threads folded into one HDR histogram (µs -> ns).

    Wake-ups beyond the histogram's range are only counted by cyclictest; they are recorded at the
    reported maximum, so percentiles above the range are pessimistic, never optimistic.
    """
    try:
        threads = doc["thread"]
        hist = new_histogram()
        cycles = overflows = 0
        worst_us = 0
        for t in threads.values():
            values: list[int] = []
            counts: list[int] = []
            for us, n in t.get("histogram", {}).items():
                values.append(int(us) * 1000)
                counts.append(int(n))
            for v, n in zip(values, counts, strict=True):
                hist.record_value(min(v, hist.highest_trackable_value), n)
            over = int(t["cycles"]) - sum(counts)
            if over > 0:
                hist.record_value(int(t["max"]) * 1000, over)
            overflows += max(over, 0)
            cycles += int(t["cycles"])
            worst_us = max(worst_us, int(t["max"]))
        version = doc.get("rt_test_version:", doc.get("rt_test_version", "?"))
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise HilError(f"cyclictest --json output not understood: {e!r}") from e
    return {"source": f"cyclictest {version}", "cycles": cycles, "overflows": overflows, "max_reported_us": worst_us,
            **histogram_summary(hist), "hdr": encode_histogram(hist)}


def measure_cyclictest(duration_s: float, interval_us: int = 1000, priority: int | None = None,
                       mlock: bool = False, cpus: list[int] | None = None) -> dict[str, Any] | None:
    """Run cyclictest for duration_s and return its summary (µs), or None when rt-tests is not installed
    or this user may not run it (logged: use FloorProbe then)."""
    if shutil.which("cyclictest") is None:
        log.info("cyclictest not installed (apt-get install rt-tests): the probe measures the floor alone")
        return None
    loops = max(1, round(duration_s * 1e6 / interval_us))
    try:
        ct = Cyclictest(interval_us=interval_us, priority=priority, loops=loops, mlock=mlock, cpus=cpus)
    except PermissionError as e:
        log.warning("%s: the probe measures the floor alone", e)
        return None
    return ct.start().wait(timeout_s=duration_s * 3 + 10)


# --- the probe's child process -------------------------------------------------------------------------


def _child(argv: list[str]) -> int:
    from hil.procutil import die_with_parent

    p = argparse.ArgumentParser(prog="python -m hil.measure.floor", description=__doc__)
    p.add_argument("--period-us", type=int, default=1000)
    p.add_argument("--fifo", type=int, default=None)
    p.add_argument("--cpus", default=None)
    args = p.parse_args(argv)
    die_with_parent()
    if args.cpus:
        os.sched_setaffinity(0, [int(c) for c in args.cpus.split(",")])
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    note = _try_fifo(args.fifo)
    sys.stdout.write(f"ready {note}\n")
    sys.stdout.flush()
    hist = new_histogram()
    iterations, missed = probe_loop(args.period_us * 1000, stopping.is_set, hist)
    sys.stdout.write(json.dumps({"hdr": encode_histogram(hist), "iterations": iterations, "missed": missed,
                                 "cpus": sorted(os.sched_getaffinity(0))}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
