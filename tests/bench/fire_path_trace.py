"""Where host_total goes: a real-time `hil bench` with the fire command's path traced, piece by piece.

    python -m tests.bench.fire_path_trace [hil bench's arguments, e.g. --targets 40 --duration 120]

host_total runs from t1 (the radar datagram read, in RadarLink.poll) to t4 (the fire command written, in
LauncherLink._send_fire). This wraps the functions between them, takes a monotonic mark at each one's entry and
exit, and for every accepted fire prints, over all fires, when each piece began (µs after t1, median) and how long
it took (p50, p90). It also counts the fires whose path met a garbage collection or an involuntary context switch
(another task took the loop's CPU), with host_total's median with and without.

Every mark costs about a microsecond, more on a cold path: the traced host_total is longer than a bench's own.
Read the shares, not the sums. What it found is in the closing notes of issue 13 (the launchers' inputs rebuilt on
the path, young collections on it).
"""

from __future__ import annotations

import bisect
import functools
import gc
import resource
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

from hil import runtime
from hil.drivers import launcher_link, radar_link
from hil.host import host, launchers
from hil.measure.latency import StageLatency

Mark = tuple[int, str]

# (owner, attribute, label): the functions between t1 and t4, in the order they run
PIECES: list[tuple[Any, str, str]] = [
    (radar_link.RadarLink, "poll", "radar poll (read, decode)"),
    (radar_link.RadarLink, "_map_times", "plot times"),
    (host.Host, "take_plots", "plots into the host"),
    (host, "merge_in_time_order", "plots merged"),
    (host, "feed_tracker", "tracker update"),
    (host.Host, "has_news", "news for fire control"),
    (host.Host, "_snapshot", "tracker snapshot"),
    (runtime.Chain, "_decide", "decision and commands"),
    (launchers.LauncherKeeper, "inputs", "launchers' inputs"),
    (launchers.LauncherKeeper, "_built_inputs", "launchers' inputs built"),
    (host.Host, "decide", "host decision"),
    (host.Host, "fire_control_view", "tracks fire control sees"),
    (host.Host, "engagement_inputs", "engagement inputs"),
    (runtime.Chain, "_fire_now", "fire command"),
    (runtime.Chain, "_aim_of", "aim from the launcher"),
    (launcher_link.LauncherLink, "fire_now", "link: fire now"),
    (launcher_link, "_take_free_lock", "link lock"),
    (launcher_link.LauncherLink, "fire_refusal", "link: refusal check"),
    (launcher_link, "fire_request", "link: request encoded"),
    (StageLatency, "record", "latency recorded"),
]
# the host's kernels behind its seams, wrapped on each Host built (compiled types cannot be patched)
HOST_KERNELS = [("_pick_rows", "kernel: fire-control rows"), ("_news", "kernel: news"),
                ("_engagement_counts", "kernel: engagement counts"), ("_fire_orders", "kernel: fire orders"),
                ("_run_times", "kernel: plot run times")]


class Trace:
    def __init__(self) -> None:
        self.marks: list[Mark] = []
        self.switches: list[tuple[int, int]] = []  # (monotonic ns, involuntary context switches so far)
        self.fires: list[tuple[int, int, list[Mark]]] = []  # t1, t4, the marks between

    def mark(self, label: str) -> None:
        self.marks.append((time.monotonic_ns(), label))

    def timed(self, f: Any, label: str) -> Any:
        mark = self.mark

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            mark(label + ">")
            try:
                return f(*args, **kwargs)
            finally:
                mark(label + "<")

        return wrapper

    def switch_count(self) -> None:
        self.switches.append((time.monotonic_ns(), resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw))

    def fire(self, t1: int, t4: int) -> None:
        """An accepted fire: the marks of its path kept, the older ones dropped."""
        i = bisect.bisect_left(self.marks, (t1 - 50_000, ""))
        j = bisect.bisect_right(self.marks, (t4, "\uffff"))
        self.fires.append((t1, t4, self.marks[i:j]))
        del self.marks[:i]

    def install(self) -> None:
        for owner, name, label in PIECES:
            setattr(owner, name, self.timed(getattr(owner, name), label))
        for owner, name in ((radar_link.RadarLink, "poll"), (launcher_link.LauncherLink, "_send")):
            f = getattr(owner, name)

            def counted(*args: Any, _f: Any = f, **kwargs: Any) -> Any:
                self.switch_count()
                return _f(*args, **kwargs)

            setattr(owner, name, counted)
        post_init = host.Host.__post_init__

        def traced_host(h: host.Host) -> None:
            post_init(h)
            for name, label in HOST_KERNELS:
                setattr(h, name, self.timed(getattr(h, name), label))
            h.fire_control = _Timed(h.fire_control, "decide", "fire control", self)
            h.tracker = _Timed(h.tracker, "tracks", "tracker: tracks", self)

        fire_done = runtime.Chain._fire_done

        def traced_fire_done(chain: runtime.Chain, fire: Any, fired_s: float, t_begin: int, result: Any) -> None:
            if result is not None and result.accepted and fire.t1_ns and result.written_ns:
                self.fire(fire.t1_ns, result.written_ns)
            fire_done(chain, fire, fired_s, t_begin, result)

        for owner, name, f in ((host.Host, "__post_init__", traced_host),
                               (runtime.Chain, "_fire_done", traced_fire_done)):
            setattr(owner, name, f)  # (not an assignment: mypy refuses one to a method)
        gc.callbacks.append(lambda phase, info: self.mark("garbage collection" + (">" if phase == "start" else "<")))

    def table(self) -> str:
        if not self.fires:
            return "no fire was accepted: nothing to trace"
        starts: dict[str, list[float]] = defaultdict(list)
        takes: dict[str, list[float]] = defaultdict(list)
        totals, with_gc, switched = [], 0, []
        for t1, t4, marks in self.fires:
            total = (t4 - t1) / 1e3
            totals.append(total)
            opened: dict[str, int] = {}
            for t, label in marks:
                name, end = label[:-1], label[-1] == "<"
                if not end and name not in opened:
                    opened[name] = t
                elif end and name in opened and opened[name] != -1:
                    starts[name].append((opened[name] - t1) / 1e3)
                    takes[name].append((t - opened[name]) / 1e3)
                    opened[name] = -1  # the first call of each piece on the path
            with_gc += any(label.startswith("garbage") and t1 <= t <= t4 for t, label in marks)
            k = bisect.bisect_right(self.switches, (t1, 2**62)) - 1
            m = bisect.bisect_left(self.switches, (t4, 0))
            if k >= 0 and m < len(self.switches):
                switched.append((self.switches[m][1] > self.switches[k][1], total))
        n = len(self.fires)
        lines = [f"{n} fires; traced host_total p50 {statistics.median(totals):.0f} µs "
                 f"(the marks add to it)", "",
                 f"{'piece':32s} {'fires':>6s} {'starts at':>10s} {'takes p50':>10s} {'p90':>8s}"]
        for name in sorted(starts, key=lambda k: statistics.median(starts[k])):
            v = sorted(takes[name])  # a piece on few fires' paths (a rebuild, a collection) says on how many
            lines.append(f"{name:32s} {len(v):6d} {statistics.median(starts[name]):8.0f} µs "
                         f"{statistics.median(v):7.1f} µs {v[int(0.9 * (len(v) - 1))]:5.0f} µs")
        lines.append("")
        lines.append(f"a garbage collection on the path: {with_gc} of {n} fires")
        hit = [t for s, t in switched if s]
        miss = [t for s, t in switched if not s]
        lines.append(f"an involuntary context switch on the path: {len(hit)} of {len(switched)} fires"
                     + (f" (host_total p50 {statistics.median(hit):.0f} µs with, "
                        f"{statistics.median(miss):.0f} µs without)" if hit and miss else ""))
        return "\n".join(lines)


class _Timed:
    """A compiled object with one method timed (its type cannot be patched); everything else passed through."""

    def __init__(self, inner: Any, method: str, label: str, trace: Trace) -> None:
        self._inner = inner
        setattr(self, method, trace.timed(getattr(inner, method), label))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def main(argv: list[str]) -> int:
    from hil.commands.cli import main as hil_main

    trace = Trace()
    trace.install()
    code = hil_main(["bench", "--no-modbus-baseline", *argv])
    print()
    print(trace.table())
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
