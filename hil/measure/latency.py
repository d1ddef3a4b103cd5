"""Latency bookkeeping: HDR histograms per chain stage, loop deadline overruns and their attribution.

Values go in as integer nanoseconds (the host's monotonic clock); summaries come out in microseconds.
Recording is meant for the hot loop: a value is appended to a per-stage buffer and the buffers are
folded into the histograms in bulk (one numpy pass per few thousand values), because hdrh's own
record_value costs about 0.7 µs per call in pure Python.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from typing import Any

from hdrh.histogram import HdrHistogram

from hil.drivers.histograms import FLUSH_AT, percentile_values, record_many

STAGES = ("decode", "track", "fire_control", "command", "host_total", "sensor_to_shooter")

LOWEST_NS = 1_000  # 1 µs: the smallest value told apart from zero (hdrh rounds it to 512 ns: below ~1 ms the
# resolution is 0.5 µs absolute, above it 3 significant figures)
HIGHEST_NS = 60_000_000_000  # 60 s
SIGNIFICANT_FIGURES = 3
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9))
UNCERTAINTY_SUFFIX = ".uncertainty"


def new_histogram() -> HdrHistogram:
    """An empty histogram with the testbed's range and precision (1 µs .. 60 s, 3 significant figures)."""
    return HdrHistogram(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_FIGURES)


def histogram_summary(hist: HdrHistogram) -> dict[str, Any]:
    """count, p50, p90, p99, p99_9, max in µs (None when empty)."""
    count = int(hist.get_total_count())
    out: dict[str, Any] = {"count": count}
    if count == 0:
        out.update({name: None for name, _ in PERCENTILES})
        out["max"] = None
        return out
    values = percentile_values(hist, [p for _, p in PERCENTILES])
    top = hist.get_max_value()
    for name, p in PERCENTILES:
        # a percentile is its bucket's highest equivalent value, which can exceed the largest value recorded
        out[name] = round(min(values[p], top) / 1e3, 3)
    out["max"] = round(top / 1e3, 3)
    return out


def encode_histogram(hist: HdrHistogram) -> str:
    return bytes(hist.encode()).decode("ascii")


def decode_histogram(blob: str | bytes) -> HdrHistogram:
    """A histogram from its base64 HDR form; a blob of another range is re-bucketed into ours."""
    try:
        h = HdrHistogram.decode(blob.encode("ascii") if isinstance(blob, str) else blob)
    except Exception as e:  # hdrh raises TypeError, zlib.error and its own cookie/length errors
        raise ValueError(f"not an HDR histogram: {e}") from e
    if (h.lowest_trackable_value, h.significant_figures) == (LOWEST_NS, SIGNIFICANT_FIGURES):
        return h
    out = new_histogram()
    try:
        out.add(h)
    except IndexError as e:  # values beyond our 60 s range
        raise ValueError(f"HDR histogram out of range: {e}") from e
    return out


class _Buffered:
    """One histogram fed through a list buffer, so record() is a list append."""

    __slots__ = ("buf", "clamped", "hist")

    def __init__(self) -> None:
        self.hist = new_histogram()
        self.buf: list[int] = []
        self.clamped = 0

    def flush(self) -> HdrHistogram:
        if self.buf:
            self.clamped += record_many(self.hist, self.buf)
            self.buf.clear()
        return self.hist


class StageLatency:
    """Per-stage latency histograms of the chain (STAGES), with the clock uncertainty where a board is crossed.

    record(stage, ns) is cheap enough for every plot; record_with_uncertainty(stage, ns, unc_ns) also
    keeps the uncertainty of that value (board clock offsets) in a histogram of its own, so the
    summary can say sensor-to-shooter p99 = X µs ± (median) Y µs, worst Z µs. Values outside 0 .. 60 s
    are clamped and counted (a negative sensor-to-shooter means the clock offsets were wrong).
    """

    def __init__(self, stages: Iterable[str] = STAGES) -> None:
        self.stages = tuple(stages)
        self._h = {s: _Buffered() for s in self.stages}
        self._unc: dict[str, _Buffered] = {}
        # bound appends: record() is one dict lookup and one call
        self._append = {s: b.buf.append for s, b in self._h.items()}

    def record(self, stage: str, ns: int) -> None:
        self._append[stage](ns)
        b = self._h[stage]
        if len(b.buf) >= FLUSH_AT:
            b.flush()

    def record_with_uncertainty(self, stage: str, ns: int, uncertainty_ns: int) -> None:
        self.record(stage, ns)
        u = self._unc.get(stage)
        if u is None:
            if stage not in self._h:
                raise KeyError(stage)
            u = self._unc[stage] = _Buffered()
        u.buf.append(uncertainty_ns)
        if len(u.buf) >= FLUSH_AT:
            u.flush()

    def histogram(self, stage: str) -> HdrHistogram:
        """The stage's histogram, every recorded value included (ns)."""
        return self._h[stage].flush()

    def uncertainty_histogram(self, stage: str) -> HdrHistogram | None:
        u = self._unc.get(stage)
        return u.flush() if u else None

    def count(self, stage: str) -> int:
        b = self._h[stage]
        return int(b.hist.get_total_count()) + len(b.buf)

    def summary(self) -> dict[str, dict[str, Any]]:
        """{stage: {"count", "p50", "p90", "p99", "p99_9", "max", "clamped"[, "uncertainty_us",
        "uncertainty_max_us"]}} in µs; percentiles are None for a stage with no values."""
        return {stage: self._stage_summary(stage) for stage in self._h}

    def summary_in_stages(self) -> Generator[None, None, dict[str, dict[str, Any]]]:
        """summary(), one stage's histogram at a time (the run's journal, in the loop: at 300 targets the whole summary
        took 3-5 ms there); the generator's value is summary()'s."""
        out: dict[str, dict[str, Any]] = {}
        for stage in list(self._h):
            out[stage] = self._stage_summary(stage)
            yield
        return out

    def _stage_summary(self, stage: str) -> dict[str, Any]:
        b = self._h[stage]
        s = histogram_summary(b.flush())
        s["clamped"] = b.clamped
        u = self._unc.get(stage)
        if u is not None:
            uh = u.flush()
            s["uncertainty_us"] = round(percentile_values(uh, [50.0])[50.0] / 1e3, 3)
            s["uncertainty_max_us"] = round(uh.get_max_value() / 1e3, 3)
        return s

    def encode(self) -> dict[str, str]:
        """{stage: base64 HDR histogram}, plus "<stage>.uncertainty" where uncertainties were kept."""
        out = {stage: encode_histogram(b.flush()) for stage, b in self._h.items()}
        for stage, u in self._unc.items():
            out[stage + UNCERTAINTY_SUFFIX] = encode_histogram(u.flush())
        return out

    @classmethod
    def decode(cls, encoded: Mapping[str, str]) -> StageLatency:
        """The inverse of encode(); a stage absent from `encoded` comes back empty. Raises ValueError."""
        if not isinstance(encoded, Mapping):
            raise ValueError("encoded latency must be a mapping of stage to base64 histogram")
        names = [k for k in encoded if not k.endswith(UNCERTAINTY_SUFFIX)]
        out = cls(dict.fromkeys([*STAGES, *names]))
        for key, blob in encoded.items():
            stage = key.removesuffix(UNCERTAINTY_SUFFIX)
            target = out._h[stage] if key == stage else out._unc.setdefault(stage, _Buffered())
            target.hist = decode_histogram(blob)
        return out

    def merge(self, other: StageLatency) -> None:
        """Add another run's values into this one (stages this one lacks are added)."""
        for stage, b in other._h.items():
            if stage not in self._h:
                self._h[stage] = _Buffered()
                self._append[stage] = self._h[stage].buf.append
                self.stages = (*self.stages, stage)
            mine = self._h[stage]
            mine.flush().add(b.flush())
            mine.clamped += b.clamped
        for stage, u in other._unc.items():
            mine_u = self._unc.setdefault(stage, _Buffered())
            mine_u.flush().add(u.flush())
            mine_u.clamped += u.clamped


class DeadlineMonitor:
    """Each loop iteration's wake-up lateness and compute time against a period and a budget.

    Every iteration is judged by its compute; one woken by its tick (not by a link's bytes) has a lateness too: how
    long after the tick the loop woke, net of any time the loop was still busy with the iteration before (that
    time is the earlier iteration's own, and judged there). An iteration overruns when lateness + compute exceeds
    the budget. The overrun is put down to
    "compute" when the compute time alone exceeds the budget (our code was too slow), otherwise to
    "os" (it would have fitted had the process woken on time: it was not scheduled, or the event loop
    was busy with other work such as a Modbus exchange). Lateness is also the loop's jitter.

    compute is wall time: when the process loses its CPU in the middle of an iteration (another task, or the
    hypervisor), that time counts there too. Given the CPU time the iteration itself used (cpu_ns: its thread's),
    an iteration whose compute alone passes the budget but whose CPU time fits is put down to "os" as well
    (counted apart too, as "os_in_compute"): it would have fitted had the CPU stayed with it. (At 300 targets on
    this project's VM, one iteration's plant step took 7.4 ms of wall time and 0.7 ms of CPU.)
    """

    def __init__(self, period_ns: int, budget_ns: int | None = None) -> None:
        if period_ns <= 0:
            raise ValueError("period_ns must be positive")
        self.period_ns = int(period_ns)
        self.budget_ns = int(budget_ns if budget_ns is not None else period_ns)
        if self.budget_ns <= 0:
            raise ValueError("budget_ns must be positive")
        self.iterations = 0
        self.ticks = 0  # iterations woken by their tick (the ones with a lateness)
        self.overruns = {"compute": 0, "os": 0}
        self.os_in_compute = 0  # "os" overruns whose compute passed the budget while its CPU time did not
        self._lateness = _Buffered()
        self._compute = _Buffered()

    def record(self, lateness_ns: int | None, compute_ns: int, cpu_ns: int | None = None) -> str | None:
        """Note one iteration (lateness_ns None: not woken by its tick; cpu_ns: the CPU time it used, when known);
        returns "compute" or "os" if it overran, else None."""
        self.iterations += 1
        cb = self._compute.buf
        cb.append(compute_ns)
        if lateness_ns is not None:
            self.ticks += 1
            self._lateness.buf.append(lateness_ns)
        if len(cb) >= FLUSH_AT:
            self._lateness.flush()
            self._compute.flush()
        if max(lateness_ns or 0, 0) + compute_ns <= self.budget_ns:
            return None
        cause = "compute" if compute_ns > self.budget_ns else "os"
        if cause == "compute" and cpu_ns is not None and cpu_ns <= self.budget_ns:
            cause = "os"
            self.os_in_compute += 1
        self.overruns[cause] += 1
        return cause

    def lateness_histogram(self) -> HdrHistogram:
        return self._lateness.flush()

    def compute_histogram(self) -> HdrHistogram:
        return self._compute.flush()

    def summary(self) -> dict[str, Any]:
        """Flat figures: iterations, overruns and their causes, period/budget, lateness and compute tails (µs)."""
        lat = histogram_summary(self._lateness.flush())
        comp = histogram_summary(self._compute.flush())
        return {
            "iterations": self.iterations,
            "ticks": self.ticks,
            "overruns": self.overruns["compute"] + self.overruns["os"],
            "compute": self.overruns["compute"],
            "os": self.overruns["os"],
            "os_in_compute": self.os_in_compute,
            "period_us": self.period_ns / 1e3,
            "budget_us": self.budget_ns / 1e3,
            "lateness_p50_us": lat["p50"],
            "lateness_p99_us": lat["p99"],
            "lateness_max_us": lat["max"],
            "compute_p50_us": comp["p50"],
            "compute_p99_us": comp["p99"],
            "compute_max_us": comp["max"],
        }

    def encode(self) -> dict[str, Any]:
        return {"period_ns": self.period_ns, "budget_ns": self.budget_ns, "iterations": self.iterations,
                "ticks": self.ticks, "overruns": dict(self.overruns), "os_in_compute": self.os_in_compute,
                "lateness": encode_histogram(self._lateness.flush()),
                "compute": encode_histogram(self._compute.flush())}

    @classmethod
    def decode(cls, encoded: Mapping[str, Any]) -> DeadlineMonitor:
        try:
            out = cls(int(encoded["period_ns"]), int(encoded["budget_ns"]))
            out.iterations = int(encoded["iterations"])
            out.ticks = int(encoded.get("ticks", out.iterations))  # before, only the ticks were judged
            out.overruns = {"compute": int(encoded["overruns"]["compute"]), "os": int(encoded["overruns"]["os"])}
            out.os_in_compute = int(encoded.get("os_in_compute", 0))  # none in an encoding from before it
            out._lateness.hist = decode_histogram(encoded["lateness"])
            out._compute.hist = decode_histogram(encoded["compute"])
        except (KeyError, TypeError) as e:
            raise ValueError(f"not an encoded DeadlineMonitor: {e!r}") from e
        return out

    def merge(self, other: DeadlineMonitor) -> None:
        self.iterations += other.iterations
        self.ticks += other.ticks
        for k in self.overruns:
            self.overruns[k] += other.overruns[k]
        self.os_in_compute += other.os_in_compute
        self._lateness.flush().add(other._lateness.flush())
        self._compute.flush().add(other._compute.flush())
