"""`hil bench`: the chain's latency per stage under a stated load, beside the machine's floor; --kernels; --compare.

A run drives the chain in real time on a rig (mock by default) under each load of a sweep, with a floor
probe (and cyclictest where rt-tests is installed and permitted) running beside it, and writes one
results JSON: the machine and versions, the load, every stage's p50/p90/p99/p99.9/max with its HDR
histogram, loop lateness and deadline overruns with their cause, the floor, and the verdict. A load keeps
hostiles coming all through the run (load_scenario), so a longer run gathers more fire commands, and with them
a host_total percentile a shorter one cannot judge.

The verdict judges the bench's goals and the user's criteria like a run's (hil.measure.bench_criteria): it heads
the printed output and is the results' "verdict"; `--junit FILE` writes one testcase per criterion per load. Exit
status, first that applies: 2 a usage or configuration error (or two results files that cannot be compared),
3 the rig failed (a board did not come up, a link was lost), 1 a criterion failed or --compare found a
regression, 0 pass; 130/143 when a signal ended the bench.

`--compare OLD.json` prints the change of every figure and exits 1 on a regression: a stage's p99 worse
by more than the threshold (+25 % by default) and by more than 10 µs, so a 6 → 8 µs wobble is not one;
or a kernel benchmark's median worse by more than the threshold. The floor's own change is printed
beside it: a p99 that rose with the floor is the machine, not the code. Only like is compared with like:
kernel benchmarks (--kernels, or pytest-benchmark's own JSON) against kernel benchmarks, chain runs against
chain runs of a load in common; anything else is refused in one line (exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

from hil.errors import ConfigError, HilError, LinkError
from hil.measure.bench_criteria import (
    BenchCriterion,
    bench_criteria,
    bench_verdict_lines,
    judge_bench,
    write_bench_junit,
)
from hil.measure.latency import STAGES, StageLatency
from hil.measure.realtime import RealtimeOptions, applied_lines, cpu_latency_held, describe_scheduler, split_cpus
from hil.measure.realtime import add_arguments as add_realtime_arguments
from hil.measure.realtime import options_from_args as realtime_from_args
from hil.units import (
    PERCENTILES,
    TOO_FEW_SAMPLES,
    counted,
    duration_text,
    percentile_cells,
    percentile_text,
    ratio_text,
    samples_needed,
)

SCHEMA = "hil-bench/1"
DEFAULT_THRESHOLD = 0.25  # a p99 25 % worse than before is a regression ...
DEFAULT_MIN_DELTA_US = 10.0  # ... when it is also at least this much worse in absolute terms
JUDGED = "p99"  # the figure that decides a regression; the others are shown
FIGURES = ("p50", "p90", "p99", "p99_9", "max")
EXIT_FAILED = 1  # a criterion failed, or --compare found a regression
EXIT_RIG_FAILED = 3  # a board did not come up, or the rig reported a problem at the end of a load
SIGNAL_EXITS = {"SIGINT": 130, "SIGTERM": 143}


LoadKey = tuple[int, float, int, int, bool]
INFLOW_OF_CAPACITY = 0.8  # hostiles enter at this fraction of the rate the launchers kill them (reload and pk)
INFLOW_RANGE_M = (30_000.0, 40_000.0)  # where they enter: inside the launchers' reach, a few scans from a fire


@dataclass(frozen=True)
class Load:
    """What the chain is asked to carry in one bench run."""

    targets: int = 40
    clutter: float = 20.0  # false plots per radar scan
    radars: int = 1
    launchers: int = 2
    duration_s: float = 30.0
    seed: int = 1
    # hostiles keep coming: after the first `targets`, more enter all through the run, a little slower than the
    # launchers can kill them, so fire control keeps firing however long the run (a p99 of host_total needs 1,000
    # fires). False: the first targets only, killed within about half a minute (bench results before it came).
    sustained: bool = True

    def key(self) -> LoadKey:
        """Two runs are compared when they carried the same load (duration and seed aside)."""
        return (self.targets, self.clutter, self.radars, self.launchers, self.sustained)

    def label(self) -> str:
        return f"{_load_text(self.key())}, {self.duration_s:g} s"


# --- the contract with hil.runtime ----------------------------------------------------------------------
#
# run_load() below is all the bench needs from the chain. It calls, lazily:
#   hil.runtime.run_chain(RunOptions(scenario, rig, seed, time_mode="real", out_dir, duration_s,
#                                    record=False, realtime=RealtimeOptions)) -> summary dict with
#     "latency_us":      StageLatency.summary() of the run
#     "deadline_misses": DeadlineMonitor.summary() of the real-time loop
#     "realtime":        (optional) [[option, applied, message], ...] as hil.measure.realtime.apply() returned
#   and it writes out_dir/latency.json = StageLatency.encode() (the full histograms).
# The runtime applies the RealtimeOptions around its loop, after the boards are up, so emulator
# processes do not inherit SCHED_FIFO or the loop's CPU.


def load_scenario(load: Load) -> Any:
    """The scenario of a load: the tracking benchmark scene, every target 15–40 km out and inbound on a
    defended asset at the origin, and launchers on a 6 km ring around it with rounds and guidance
    channels enough for the whole run, so decode, track, fire control and command all have work.

    Sustained, more hostiles enter 30–40 km out, inbound on the defended area, evenly through the run at
    INFLOW_OF_CAPACITY of the rate the launchers kill (one round per reload each, at their pk): the count in
    the air stays near `targets`, and fire control fires all through the run."""
    import math

    import numpy as np

    from hil.ext.firecontrol_types import AssetSpec, LauncherSpec
    from hil.scenario import TargetSpec, tracking_scenario

    base = tracking_scenario(n_targets=load.targets, seed=load.seed, duration_s=load.duration_s,
                             n_radars=load.radars, clutter_per_scan=load.clutter, min_range_m=10_000.0,
                             max_range_m=45_000.0)
    rng = np.random.default_rng(load.seed)
    targets = []
    for t in base.targets:
        aim = rng.uniform(-8_000.0, 8_000.0, size=2)  # anywhere over the defended area
        speed = math.hypot(t.velocity[0], t.velocity[1])
        d = aim - np.array(t.position[:2])
        v = d / max(float(np.linalg.norm(d)), 1.0) * speed
        targets.append(replace(t, velocity=(float(v[0]), float(v[1]), 0.0)))
    launchers = tuple(
        LauncherSpec(name=f"launcher-{i + 1}",
                     position=(6_000.0 * math.sin(2 * math.pi * i / max(load.launchers, 1)),
                               6_000.0 * math.cos(2 * math.pi * i / max(load.launchers, 1)), 0.0),
                     rounds=1000, reload_s=1.0, channels=64)
        for i in range(load.launchers))
    kills_per_s = sum(site.pk / site.reload_s for site in launchers)
    entering = int(INFLOW_OF_CAPACITY * kills_per_s * load.duration_s) if load.sustained and load.targets else 0
    for k in range(entering):
        r, bearing = rng.uniform(*INFLOW_RANGE_M), rng.uniform(0.0, 2 * math.pi)
        start = np.array([r * math.sin(bearing), r * math.cos(bearing)])
        d = rng.uniform(-8_000.0, 8_000.0, size=2) - start
        v = d / float(np.linalg.norm(d)) * rng.uniform(150.0, 300.0)
        targets.append(TargetSpec(name=f"e{k:05d}", allegiance="hostile", kind="aircraft",
                                  position=(float(start[0]), float(start[1]), float(rng.uniform(1_000.0, 10_000.0))),
                                  velocity=(float(v[0]), float(v[1]), 0.0),
                                  start_s=(k + 1) * load.duration_s / (entering + 1)))
    return replace(base, name=f"bench-{load.targets}", targets=tuple(targets), launchers=launchers,
                   assets=(AssetSpec(name="defended", position=(0.0, 0.0, 0.0), radius_m=8_000.0),))


def run_load(rig: Any, load: Load, realtime: RealtimeOptions, out_dir: Path, report: bool = True) -> dict[str, Any]:
    """Run the chain in real time under `load`; {"summary", "latency": StageLatency, "deadline": dict}."""
    from hil.runtime import RunOptions, run_chain

    summary = run_chain(RunOptions(scenario=load_scenario(load), rig=rig, seed=load.seed, time_mode="real",
                                   out_dir=out_dir, duration_s=load.duration_s, record=False, realtime=realtime,
                                   floor=False,  # the bench measures the floor itself, beside the whole run
                                   report=report))
    encoded = out_dir / "latency.json"
    latency = StageLatency.decode(json.loads(encoded.read_text())) if encoded.exists() else None
    return {"summary": summary, "latency": latency, "deadline": summary.get("deadline_misses") or {}}


# --- the machine ---------------------------------------------------------------------------------------


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu_model": cpu, "cores": os.cpu_count(), "kernel": platform.release(), "host": platform.node(),
        "python": platform.python_version(),
        "versions": {p: _version(p) for p in ("hil", "numpy", "Cython", "pymodbus", "hdrhistogram", "scipy")},
        "scheduler": describe_scheduler(),
    }


# --- results -------------------------------------------------------------------------------------------


def run_record(load: Load, latency: StageLatency | None, deadline: dict[str, Any], floor: dict[str, Any],
               chain: dict[str, Any] | None = None, realtime: list[Any] | None = None) -> dict[str, Any]:
    """One load's entry in the results JSON."""
    return {
        "load": asdict(load),
        "stages": latency.summary() if latency else {},
        "histograms": latency.encode() if latency else {},
        "deadline": deadline,
        "floor": floor,
        "chain": chain or {},
        "realtime": [list(r) for r in realtime or []],
    }


def new_results(realtime: RealtimeOptions | None = None, argv: list[str] | None = None) -> dict[str, Any]:
    return {"schema": SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": argv if argv is not None else sys.argv, "machine": machine(),
            "realtime_requested": asdict(realtime) if realtime else None, "runs": [], "kernels": None}


def save_results(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(path)  # never a half-written results file to compare against later


def load_results(path: str | Path) -> dict[str, Any]:
    source = str(path)
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(source, "file", "no such results file") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(source, "JSON", str(e)) from None
    if isinstance(doc, dict) and "schema" not in doc and isinstance(doc.get("benchmarks"), list):
        return _from_pytest_benchmark(doc, source)
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ConfigError(source, "schema", f"not a {SCHEMA} results file (nor pytest-benchmark's JSON)")
    if not isinstance(doc.get("runs"), list) or not all(isinstance(r, dict) and isinstance(r.get("load"), dict)
                                                         for r in doc["runs"]):
        raise ConfigError(source, "runs", "missing or malformed")
    return doc


def _from_pytest_benchmark(doc: dict[str, Any], source: str) -> dict[str, Any]:
    """pytest-benchmark's --benchmark-json as kernel results, so --compare reads it beside hil bench --kernels'."""
    try:
        kernels = parse_benchmark_json(doc)
    except HilError as e:
        raise ConfigError(source, "benchmarks", str(e)) from None
    info: dict[str, Any] = doc["machine_info"] if isinstance(doc.get("machine_info"), dict) else {}
    cpu = info.get("cpu")
    return {"schema": SCHEMA, "created": doc.get("datetime"), "command": None, "from": "pytest-benchmark",
            "machine": {"cpu_model": cpu.get("brand_raw") if isinstance(cpu, dict) else None,
                        "host": info.get("node"), "python": info.get("python_version")},
            "runs": [], "kernels": kernels}


# --- comparing -----------------------------------------------------------------------------------------

CHAIN, KERNELS = "chain", "kernels"


class NotComparable(HilError):
    """Two results files of different kinds, or of no load in common: comparing them would prove nothing."""


def results_kind(results: dict[str, Any]) -> str | None:
    """"chain" (hil bench runs), "kernels" (--kernels or pytest-benchmark), "chain and kernels", or None (empty)."""
    kinds = [k for k, has in ((CHAIN, results.get("runs")), (KERNELS, results.get("kernels"))) if has]
    return " and ".join(kinds) or None


def _load_text(key: LoadKey) -> str:
    return (f"{counted(key[0], 'target')}{' and more entering' if key[4] else ''}, clutter {key[1]:g}/scan, "
            f"{counted(key[2], 'radar')}, {counted(key[3], 'launcher')}")


def _kind_text(results: dict[str, Any]) -> str:
    kind = results_kind(results)
    if kind == KERNELS:
        return "kernel benchmarks" + (" (pytest-benchmark JSON)" if results.get("from") == "pytest-benchmark" else "")
    loads = " | ".join(_load_text(_load_of(r).key()) for r in results.get("runs", []))
    if kind == CHAIN:
        return f"a chain bench ({loads})"
    return f"a chain bench ({loads}) and kernel benchmarks" if kind else "no results"


def check_comparable(old: dict[str, Any], new: dict[str, Any], old_name: str, new_name: str,
                     kernel_names: bool = True) -> None:
    """NotComparable (one line) unless both hold results of the same kind with something in common: a load
    (targets, clutter, radars, launchers alike; duration and seed may differ) or (kernel_names) a kernel
    benchmark's name."""
    ko, kn = results_kind(old), results_kind(new)
    head = f"cannot compare {old_name} with {new_name}: "
    if ko is None or kn is None:
        empty = old_name if ko is None else new_name
        raise NotComparable(head + f"{empty} holds no results (a bench stopped before its first load?)")
    if ko != kn:
        raise NotComparable(head + f"{old_name} holds {_kind_text(old)}, {new_name} {_kind_text(new)}; "
                                   "compare kernel benchmarks with kernel benchmarks, chain runs with chain runs")
    if CHAIN in ko:
        a = {_load_of(r).key() for r in old["runs"]}
        b = {_load_of(r).key() for r in new["runs"]}
        if not a & b:
            raise NotComparable(head + f"no load in common ({old_name}: {' | '.join(map(_load_text, sorted(a)))}; "
                                       f"{new_name}: {' | '.join(map(_load_text, sorted(b)))}); run the bench with "
                                       "the same --targets or --sweep, --clutter, --radars and --launchers")
    if KERNELS in ko and kernel_names and not set(old["kernels"]) & set(new["kernels"]):
        raise NotComparable(head + "no kernel benchmark in common (were they run from the same suite?)")



@dataclass
class Change:
    figure: str  # e.g. "40 targets … / host_total p99" or "kernel … median"
    old: float | None
    new: float | None
    judged: bool  # this figure can make a regression
    verdict: str  # "regression" | "improved" | "" | "n/a"

    @property
    def ratio(self) -> float | None:
        if self.old is None or self.new is None or self.old <= 0:
            return None
        return self.new / self.old - 1.0


def _verdict(old: float | None, new: float | None, threshold: float, min_delta: float, judged: bool) -> str:
    if old is None or new is None:
        return "n/a"
    if not judged:
        return ""
    if new > old * (1 + threshold) and new - old > min_delta:
        return "regression"
    if new < old / (1 + threshold) and old - new > min_delta:
        return "improved"
    return ""


def _load_of(run: dict[str, Any]) -> Load:
    fields = {k: run["load"][k] for k in Load.__dataclass_fields__ if k in run["load"]}
    fields.setdefault("sustained", False)  # results from before the load was sustained
    return Load(**fields)


def is_default_load(load: Mapping[str, Any]) -> bool:
    """A load (as the results hold it) is the default one, the load the host_total goal is stated for."""
    return _load_of({"load": load}).key() == Load().key()


def compare(old: dict[str, Any], new: dict[str, Any], threshold: float = DEFAULT_THRESHOLD,
            min_delta_us: float = DEFAULT_MIN_DELTA_US) -> tuple[list[Change], bool]:
    """Every figure of `new` against `old`: (changes, regressed). Runs are matched by load; a stage's p99
    and a kernel's median are judged, the rest (other percentiles, floor, deadline) are shown."""
    rows: list[Change] = []
    old_runs = {_load_of(r).key(): r for r in old.get("runs", [])}
    for run in new.get("runs", []):
        load = _load_of(run)
        before = old_runs.pop(load.key(), None)
        where = f"{load.targets} tgt/{load.radars} rdr/{load.launchers} lnc"
        if before is None:
            rows.append(Change(f"{where}: only in new", None, None, False, "n/a"))
            continue
        for stage in [*STAGES, *(s for s in run.get("stages", {}) if s not in STAGES)]:
            a, b = before.get("stages", {}).get(stage, {}), run.get("stages", {}).get(stage, {})
            for fig in FIGURES:
                judged = fig == JUDGED
                o, n = a.get(fig), b.get(fig)
                rows.append(Change(f"{where} {stage} {fig}", o, n, judged,
                                   _verdict(o, n, threshold, min_delta_us, judged)))
        for source in ("probe", "cyclictest"):
            a, b = (before.get("floor") or {}).get(source) or {}, (run.get("floor") or {}).get(source) or {}
            if a or b:
                for fig in ("p99", "max"):
                    rows.append(Change(f"{where} floor ({source}) {fig}", a.get(fig), b.get(fig), False,
                                       _verdict(a.get(fig), b.get(fig), threshold, min_delta_us, False)))
        for fig in ("lateness_p99_us", "overruns"):
            o, n = (before.get("deadline") or {}).get(fig), (run.get("deadline") or {}).get(fig)
            rows.append(Change(f"{where} loop {fig}", o, n, False, _verdict(o, n, threshold, min_delta_us, False)))
    for key in old_runs:
        rows.append(Change(f"{key[0]} tgt/{key[2]} rdr/{key[3]} lnc: only in old", None, None, False, "n/a"))
    ok, nk = old.get("kernels") or {}, new.get("kernels") or {}
    for name in sorted(set(ok) | set(nk)):
        o = (ok.get(name) or {}).get("median_us")
        n = (nk.get(name) or {}).get("median_us")
        rows.append(Change(f"kernel {name} median", o, n, True, _verdict(o, n, threshold, 0.0, True)))
    return rows, any(r.verdict == "regression" for r in rows)


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}"


def format_changes(rows: list[Change], threshold: float, min_delta_us: float, regressed: bool) -> str:
    width = max([len(r.figure) for r in rows] + [10])
    out = [f"{'figure':<{width}}  {'old µs':>10}  {'new µs':>10}  {'change':>8}  verdict"]
    for r in rows:
        ratio = r.ratio
        change = "" if ratio is None else f"{ratio * 100:+.0f} %"
        verdict = r.verdict + (" *" if r.judged and r.verdict == "" else "")
        out.append(f"{r.figure:<{width}}  {_fmt(r.old):>10}  {_fmt(r.new):>10}  {change:>8}  {verdict}".rstrip())
    out.append("")
    out.append(f"* judged: a {JUDGED} of a stage (or a kernel median) worse by more than {threshold * 100:.0f} % "
               f"and {min_delta_us:g} µs is a regression")
    unmatched = any(r.figure.endswith(("only in new", "only in old")) for r in rows)
    out.append("REGRESSION" if regressed else
               "no regression" + (" (a load in one file only was not compared)" if unmatched else ""))
    return "\n".join(out)


# --- the report table ----------------------------------------------------------------------------------


def format_run(run: dict[str, Any]) -> str:
    """One load's table: each stage's percentiles with its p99 as a multiple of the floor's, then the floor."""
    load = _load_of(run)
    floor = run.get("floor") or {}
    ref_s = floor.get("cyclictest") or floor.get("probe") or {}
    ref = ref_s.get("p99") if _p99_shown(ref_s) else None
    out = [load.label(), ""]
    out.append(f"{'stage':<22}{'count':>9}" + "".join(f"{k.replace('_', '.'):>10}" for k, _ in PERCENTILES)
               + f"{'max':>10}{'p99/floor':>11}")

    def line(name: str, s: dict[str, Any], ratio: str) -> str:
        text = f"{name:<22}{int(s.get('count') or 0):>9,}" + "".join(f"{c:>10}" for c in percentile_cells(s))
        text += f"{ratio:>11}"
        if s.get("count") and s.get("uncertainty_us") is not None:
            text += f"  clock sync ± {duration_text(s['uncertainty_us'])}"
            if s.get("uncertainty_max_us") is not None:
                text += f" (worst {duration_text(s['uncertainty_max_us'])})"
        return text.rstrip()

    for stage in STAGES:
        s = run.get("stages", {}).get(stage, {})
        # sensor_to_shooter waits for the radar's next scan: its p99 over the machine's floor says nothing
        shown = ref and stage != "sensor_to_shooter" and _p99_shown(s)
        out.append(line(stage, s, ratio_text(s["p99"] / ref) if shown else "–"))
    for source in ("probe", "cyclictest"):
        s = floor.get(source)
        if s:
            out.append(line(f"floor: {source}", s, ""))
    out.append(TOO_FEW_SAMPLES)
    out.append("p99/floor: the stage's p99 over the floor's; none for sensor_to_shooter, which waits on radar scans")
    d = run.get("deadline") or {}
    if d:
        n = int(d.get("iterations") or 0)
        ticks = int(d.get("ticks", n) or 0)  # results from before every iteration was judged: the ticks alone
        p50, p99 = (percentile_text(d.get(f"lateness_{k}_us"), ticks, p) for k, p in (("p50", 50.0), ("p99", 99.0)))
        out.append(f"loop: {n:,} iterations, {ticks:,} on the {duration_text(d.get('period_us'))} tick (lateness p50 "
                   f"{p50} / p99 {p99} / max {duration_text(d.get('lateness_max_us')) if ticks else '–'}); "
                   f"overruns {d.get('overruns', 0)} (compute {d.get('compute', 0)}, os {d.get('os', 0)}"
                   + (f", {d['os_in_compute']} of them while computing" if d.get("os_in_compute") else "") + ")")
    out += applied_lines(run.get("realtime") or [])
    notes = [f"{src}: {s['note']}" for src, s in floor.items() if isinstance(s, dict) and s.get("note")]
    out += [f"floor note, {n}" for n in notes]
    return "\n".join(out)


def _p99_shown(s: dict[str, Any]) -> bool:
    """Whether the table shows this summary's p99 (enough samples for it)."""
    return s.get("p99") is not None and int(s.get("count") or 0) >= samples_needed(99.0)


def format_results(results: dict[str, Any]) -> str:
    m = results.get("machine", {})
    v = m.get("versions", {})
    known = "".join(f", {name} {v[name]}" for name in ("numpy", "Cython", "pymodbus") if v.get(name))
    out = [f"machine: {m.get('cpu_model')}, {m.get('cores')} cores, Linux {m.get('kernel')}, Python {m.get('python')}"
           f"{known}", ""]
    for run in results.get("runs", []):
        out += [format_run(run), ""]
    if results.get("modbus_baseline"):
        out += [*format_modbus_baseline(results["modbus_baseline"]), ""]
    kernels = results.get("kernels") or {}
    if kernels:
        width = max(len(k) for k in kernels)
        out.append(f"{'kernel benchmark':<{width}}  {'median µs':>10}  {'min µs':>10}  {'rounds':>7}")
        for name, k in kernels.items():
            out.append(f"{name:<{width}}  {_fmt(k.get('median_us')):>10}  {_fmt(k.get('min_us')):>10}  "
                       f"{k.get('rounds', 0):>7}")
    return "\n".join(out).rstrip()


# --- kernels -------------------------------------------------------------------------------------------


def parse_benchmark_json(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """pytest-benchmark's --benchmark-json into {test: {median_us, mean_us, min_us, max_us, stddev_us, rounds}}."""
    try:
        out = {}
        for b in doc["benchmarks"]:
            s = b["stats"]
            out[b["fullname"]] = {"median_us": s["median"] * 1e6, "mean_us": s["mean"] * 1e6,
                                  "min_us": s["min"] * 1e6, "max_us": s["max"] * 1e6,
                                  "stddev_us": s["stddev"] * 1e6, "rounds": int(s["rounds"])}
    except (KeyError, TypeError) as e:
        raise HilError(f"pytest-benchmark JSON not understood: {e!r}") from e
    return out


def run_kernels(paths: list[str] | None = None, extra: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Run the pytest-benchmark suite (tests/bench by default) with benchmarks enabled; its figures.

    The suite is the checkout's or the copy an installed package ships (hil.shipped.bench_root()); either way pytest
    runs in the folder holding tests/, whose package the benchmark files import from."""
    import importlib.util

    from hil.shipped import bench_root, is_installed

    missing = [m for m in ("pytest", "pytest_benchmark") if importlib.util.find_spec(m) is None]
    if missing:
        raise HilError(f"hil bench --kernels needs {' and '.join(missing)}: pip install 'hil[test]'")
    root = bench_root()
    # the checkout's pytest settings; an installed copy has none and must not pick up a project's around it
    ini = root / "pyproject.toml"
    settings = ["-c", str(ini) if ini.is_file() else os.devnull, "--rootdir", str(root), "--confcutdir", str(root),
                "-o", "python_files=bench_*.py"]
    # no __pycache__ left in an installed package (pip would not remove pytest's rewritten files)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"} if is_installed() else None
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        out = Path(tmp) / "benchmark.json"
        argv = [sys.executable, "-m", "pytest", *(paths or [str(root / "tests" / "bench")]), "-q", *settings,
                "-p", "no:cacheprovider", "--benchmark-enable", f"--benchmark-json={out}", *(extra or [])]
        r = subprocess.run(argv, cwd=root, capture_output=True, text=True, env=env)
        if r.returncode != 0 or not out.exists():
            raise HilError(f"kernel benchmarks failed (pytest exit {r.returncode}):\n{(r.stdout + r.stderr)[-3000:]}")
        return parse_benchmark_json(json.loads(out.read_text()))


# --- the command ---------------------------------------------------------------------------------------


def _targets_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError("--sweep", "targets", f"{text!r} is not a list such as 10,40,100") from None
    if not values or any(v < 0 for v in values):
        raise ConfigError("--sweep", "targets", f"{text!r} is not a list of target counts")
    return values


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rig", default=None, help="rig file (default: rigs/mock.toml)")
    p.add_argument("--targets", type=int, default=40,
                   help="targets in the load (default 40); more hostiles enter through the run, a little slower than "
                        "the launchers kill them, so fire control fires all through it")
    p.add_argument("--no-inflow", action="store_true",
                   help="the first targets only, none entering later (fire control stops firing once they are "
                        "killed, within about 30 s; the load of bench results from before hostiles kept coming)")
    p.add_argument("--clutter", type=float, default=20.0, help="false plots per radar scan (default 20)")
    p.add_argument("--radars", type=int, default=1, help="radars (default 1)")
    p.add_argument("--launchers", type=int, default=2, help="launchers (default 2)")
    p.add_argument("--duration", type=float, default=30.0, help="seconds per load (default 30)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sweep", type=_targets_list, default=None, metavar="N,N,...",
                   help="run one load per target count, e.g. 10,40,100")
    p.add_argument("--floor-period-us", type=int, default=1000, help="period of the floor probe (default 1000)")
    p.add_argument("--no-cyclictest", action="store_true", help="do not run cyclictest beside the probe")
    p.add_argument("--no-modbus-baseline", action="store_true",
                   help="skip the launcher round trip against libmodbus's on the same pty and TCP port")
    p.add_argument("--shared-cpus", action="store_true",
                   help="let the loop and the emulated boards run on any CPU (by default, on a machine with two or "
                        "more, the loop runs on the last CPU and the boards on the others)")
    p.add_argument("--kernels", action="store_true",
                   help="run the kernel benchmarks (pytest-benchmark, tests/bench) instead of the chain")
    p.add_argument("--out", default=None, metavar="DIR|FILE.json",
                   help="a folder for the results (DIR/results.json) and each load's run folder (DIR/targets-N/), "
                        "or FILE.json for the results alone (default: runs/bench-<stamp>/)")
    p.add_argument("--criteria", default="", metavar="NAME=VALUE,...",
                   help="criteria over the bench's goals and the rig's, e.g. host_total_p99_us=800,decode_p90_us=100,"
                        "deadline_misses=0,launcher_round_trip_ratio=2 (STAGE_FIGURE_us for any stage and p50, p90, "
                        "p99, p99_9 or max; sensor_to_shooter in ms); exit 1 when one fails")
    p.add_argument("--junit", default=None, metavar="FILE",
                   help="write the verdict as JUnit XML, one test per criterion per load")
    p.add_argument("--compare", default=None, metavar="OLD.json",
                   help="compare with an earlier results file (or pytest-benchmark JSON); exit 1 on a regression, "
                        "2 when the two are of different kinds or loads")
    p.add_argument("--against", default=None, metavar="NEW.json",
                   help="with --compare: compare this results file instead of running the bench")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"relative change of a {JUDGED} that is a regression (default {DEFAULT_THRESHOLD})")
    p.add_argument("--min-delta-us", type=float, default=DEFAULT_MIN_DELTA_US,
                   help=f"and the least absolute change in µs (default {DEFAULT_MIN_DELTA_US:g})")
    add_realtime_arguments(p)


def _loads(args: argparse.Namespace) -> list[Load]:
    if args.duration <= 0:
        raise ConfigError("--duration", "value", "must be positive")
    if args.radars < 1 or args.launchers < 0 or args.targets < 0 or args.clutter < 0:
        raise ConfigError("load", "value", "radars ≥ 1; targets, launchers and clutter ≥ 0")
    counts = args.sweep or [args.targets]
    return [Load(targets=n, clutter=args.clutter, radars=args.radars, launchers=args.launchers,
                 duration_s=args.duration, seed=args.seed, sustained=not args.no_inflow) for n in counts]


def _stop_cyclictest(ct: Any) -> dict[str, Any] | None:
    """cyclictest's summary, or None (said on stderr) if it failed: the probe's floor still stands."""
    if ct is None:
        return None
    try:
        return dict(ct.stop())
    except HilError as e:
        print(f"bench: {e}", file=sys.stderr)
        return None


# The bench holds idle CPUs polling (hil.measure.realtime.hold_cpu_latency) unless --cpu-latency-us says otherwise, as
# cyclictest does by default. On this project's 2-core VM, in 120 s at 40 targets, one run after the other: host_total
# p50 510 -> 358 µs, the fire command's round trip p50 1.62 -> 0.79 ms.
BENCH_CPU_LATENCY_US = 0


def host_apart(realtime: RealtimeOptions) -> RealtimeOptions:
    """The bench's default placement when --cpus is not given (hil.measure.realtime.split_cpus): the emulated boards
    on the first CPU this process may use, the loop (the host under test) on the others; unchanged with one CPU.
    Real boards do not share the host's CPU, and the Modbus baseline places its board the same way. (On this
    project's 2-core VM the figures at 40 targets moved within the run-to-run noise either way.)"""
    split = split_cpus()
    if realtime.cpus is not None or split is None:
        return realtime
    return replace(realtime, cpus=sorted(split[1]), board_cpus=realtime.board_cpus or sorted(split[0]))


def measure(args: argparse.Namespace, rig: Any, realtime: RealtimeOptions, out: Path,
            runs_dir: Path | None = None) -> dict[str, Any]:
    """Every load of the sweep, each with the floor measured beside it; each load's run folder is
    runs_dir/targets-N, or a temporary folder removed afterwards when runs_dir is None."""
    from hil.measure.floor import Cyclictest, FloorProbe

    results = new_results(realtime)
    scratch = None
    if runs_dir is None:  # --out FILE.json: the results alone, the loads' run folders are scratch
        scratch = tempfile.TemporaryDirectory(prefix="hil-bench-")
        base = Path(scratch.name)
    else:
        base = runs_dir
    for load in _loads(args):
        print(f"bench: {load.label()} ...", file=sys.stderr, flush=True)
        # On the loop's CPUs, one FIFO priority above it: a probe at the loop's own priority would wait
        # for the loop (FIFO does not preempt its equal) and measure our compute, not the machine.
        prio = None if realtime.fifo_priority is None else min(realtime.fifo_priority + 1, 99)
        # the floor is measured under the loop's wake-up latency limit from the start (the loop holds it too)
        with cpu_latency_held(realtime.cpu_latency_us):
            probe = FloorProbe(period_us=args.floor_period_us, fifo_priority=prio, cpus=realtime.cpus).start()
            ct = None
            if not args.no_cyclictest:
                try:
                    ct = Cyclictest(interval_us=args.floor_period_us, priority=prio, cpus=realtime.cpus).start()
                except (FileNotFoundError, PermissionError) as e:
                    print(f"bench: no cyclictest ({e}); the probe alone measures the floor", file=sys.stderr)
            try:
                got = run_load(rig, load, realtime, base / f"targets-{load.targets}", report=scratch is None)
            except LinkError as e:  # a board did not come up: the rig failed, and the loads after it would too
                results["rig_failed"] = f"{load.label()}: {e}"
                break
            finally:
                probe.stop()
                floor = {"probe": probe.summary(), "cyclictest": _stop_cyclictest(ct)}
        s = got["summary"]
        chain = {k: s.get(k) for k in ("plots", "tracks", "confirmed_tracks", "decisions", "launches")}
        applied = s.get("realtime")
        if applied is None and realtime.any():
            applied = [("runtime", False, "real-time options requested, but the run did not report applying them")]
        record = run_record(load, got["latency"], got["deadline"], floor, chain, applied)
        if s.get("rig_problems"):  # the run ended, but a link was lost or a launcher left SAFE: figures kept
            record["rig_problems"] = list(s["rig_problems"])
        results["runs"].append(record)
        save_results(results, out)  # a sweep stopped half way still leaves what it measured
        if s.get("interrupted"):  # SIGINT / SIGTERM ended the load: no more loads, no baseline
            results["interrupted"] = str(s.get("signal") or "SIGINT")
            break
    if scratch is not None:
        scratch.cleanup()
    if not args.no_modbus_baseline and not results.get("rig_failed") and not results.get("interrupted"):
        results["modbus_baseline"] = _modbus_baseline()
        save_results(results, out)
    return results


def _modbus_baseline() -> dict[str, Any]:
    """The launcher link's round trips beside libmodbus's, on the same emulator, pty and TCP port."""
    from hil.measure.modbus_baseline import measure_round_trips

    print("bench: launcher round trip against libmodbus (pty and TCP) ...", file=sys.stderr, flush=True)
    out: dict[str, Any] = {}
    for transport in ("rtu", "tcp"):
        try:
            out[transport] = measure_round_trips(transport=transport, n=300)
        except HilError as e:
            out[transport] = {"note": str(e)}
            print(f"bench: no libmodbus baseline over {transport}: {e}", file=sys.stderr)
    return out


def format_modbus_baseline(baseline: dict[str, Any]) -> list[str]:
    from hil.measure.modbus_baseline import GOAL_RATIO

    goals = {m["goal_ratio"] for m in baseline.values() if "goal_ratio" in m} or {GOAL_RATIO}
    goal = " or ".join(f"{g:g}x" for g in sorted(goals))  # a results file from before the goal moved says its own
    out = [f"{'launcher round trip':<22}{'libmodbus p50':>14}{'link p50':>10}{'ratio':>7}  (goal: within {goal})"]
    for transport, m in baseline.items():
        if "note" in m:
            out.append(f"{transport:<22}{m['note']}")
            continue
        for op in ("status", "write"):
            r = m[op]
            out.append(f"{transport + ' ' + op:<22}{_fmt(r['libmodbus']['p50']):>14}"
                       f"{_fmt(r['launcher_link']['p50']):>10}{r['ratio']:>7.2f}")
    return out


def _outputs(arg: str | None) -> tuple[Path, Path | None]:
    """(the results JSON, the folder for each load's run folder or None): --out FILE.json is the results alone,
    --out DIR (default runs/bench-<stamp>) holds DIR/results.json and DIR/targets-N/."""
    if arg and arg.endswith(".json"):
        return Path(arg), None
    folder = Path(arg) if arg else Path("runs") / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    return folder / "results.json", folder


def written_text(out: Path, runs_dir: Path | None, results: dict[str, Any]) -> str:
    """Every file and folder the bench wrote, one line each."""
    lines = ["wrote:", f"  {out}  the results (hil bench --compare reads them)"]
    if runs_dir is None:
        return "\n".join(lines)
    for run in results.get("runs", []):
        folder = runs_dir / f"targets-{run['load']['targets']}"
        if folder.is_dir():
            files = ", ".join(sorted(p.name for p in folder.iterdir()))
            lines.append(f"  {folder}/  the run folder of the {run['load']['targets']}-target load: {files}")
    return "\n".join(lines)


def exit_status(results: dict[str, Any] | None, regressed: bool) -> int:
    """130/143 after a signal; 3 when the rig failed; 1 when a criterion failed or a figure regressed; else 0. A
    usage or configuration error (2) never gets this far."""
    if results is not None:
        if results.get("interrupted"):
            return SIGNAL_EXITS.get(results["interrupted"], 130)
        if _rig_failed(results):
            return EXIT_RIG_FAILED
        if (results.get("verdict") or {}).get("result") == "fail":
            return EXIT_FAILED
    return EXIT_FAILED if regressed else 0


def _rig_failed(results: dict[str, Any]) -> bool:
    """The rig failed: before any load ran, or in one of them (exit status 3; then no verdict stands)."""
    return bool(results.get("rig_failed") or any(r.get("rig_problems") for r in results.get("runs", [])))


def _rig_lines(results: dict[str, Any]) -> list[str]:
    out = [f"RIG FAILED: {results['rig_failed']}"] if results.get("rig_failed") else []
    for run in results.get("runs", []):
        out += [f"RIG FAILED: {_load_of(run).label()}: {p}" for p in run.get("rig_problems", [])]
    if results.get("interrupted"):
        out.append(f"INTERRUPTED by {results['interrupted']}: the figures cover the bench up to that moment")
    return out


def _check_before_running(args: argparse.Namespace, old: dict[str, Any]) -> None:
    """--compare OLD.json without --against: refuse a comparison that could prove nothing before the bench runs."""
    planned = ({"runs": [], "kernels": {"": {}}} if args.kernels
               else {"runs": [{"load": asdict(x)} for x in _loads(args)], "kernels": None})
    check_comparable(old, planned, args.compare, "this bench", kernel_names=False)


def main(args: argparse.Namespace) -> int:
    from hil.rig import Rig

    out, runs_dir = _outputs(args.out)
    if args.against and not args.compare:
        raise ConfigError("--against", "value", "only makes sense with --compare OLD.json")
    if args.kernels and (args.criteria or args.junit):
        raise ConfigError("--criteria/--junit", "value", "judge the chain's figures; --kernels runs no chain")
    if args.against and (args.criteria or args.junit):
        raise ConfigError("--criteria/--junit", "value", "judge a bench that runs; --against compares two files")
    old = load_results(args.compare) if args.compare else None
    results: dict[str, Any] | None = None
    if args.against:
        new = load_results(args.against)
        assert old is not None
        check_comparable(old, new, args.compare, args.against)
    else:
        realtime = realtime_from_args(args)
        if not args.shared_cpus:
            realtime = host_apart(realtime)
        if args.cpu_latency_us is None:
            realtime = replace(realtime, cpu_latency_us=BENCH_CPU_LATENCY_US)
        if old is not None:
            _check_before_running(args, old)
        if args.kernels:
            new = new_results(realtime)
            print("bench: kernel benchmarks (tests/bench) ...", file=sys.stderr, flush=True)
            new["kernels"] = run_kernels()
            save_results(new, out)
            print(format_results(new))
        else:
            rig = Rig.load(args.rig)
            criteria = bench_criteria(args.criteria, rig.criteria, rig.source, not args.no_modbus_baseline)
            started = time.monotonic()
            new = results = measure(args, rig, realtime, out, runs_dir)
            _judge(results, criteria, out, args.junit, time.monotonic() - started)
        print()
        print(written_text(out, runs_dir if not args.kernels else None, new))
        if args.junit and results is not None:
            print(f"  {args.junit}  the verdict as JUnit XML")
    regressed = False
    if old is not None and (results is None or not (results.get("rig_failed") or results.get("interrupted"))):
        rows, regressed = compare(old, new, args.threshold, args.min_delta_us)
        print()
        print(format_changes(rows, args.threshold, args.min_delta_us, regressed))
    return exit_status(results, regressed)


def _judge(results: dict[str, Any], criteria: dict[str, BenchCriterion], out: Path, junit: str | None,
           time_s: float) -> None:
    """The verdict into the results (and the JUnit file), and printed first: no verdict when nothing was measured."""
    results["criteria"] = {name: {"limit": c.limit, "source": c.source,
                                  **({"default_load_only": True} if c.default_load_only else {})}
                           for name, c in criteria.items()}
    rig = _rig_lines(results)
    if results["runs"]:
        results["verdict"] = judge_bench(results, criteria, is_default_load)
        print("\n".join([*rig, *bench_verdict_lines(results["verdict"], rig_failed=_rig_failed(results))]))
    else:
        print("\n".join([*rig, "VERDICT: none: no load was measured"]))
    save_results(results, out)
    print()
    print(format_results(results))
    if junit:
        write_bench_junit(junit, results.get("verdict") or {"criteria": []}, time_s,
                          [line.removeprefix("RIG FAILED: ") for line in rig if line.startswith("RIG FAILED")])
