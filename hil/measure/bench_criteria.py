"""`hil bench`'s verdict: its goals and the user's criteria, judged like a run's (hil.measure.verdict).

A bench criterion is a figure of one load's results (a stage's percentile, the loop's overruns) or of the
launcher round trip against libmodbus, against a limit:

- `STAGE_FIGURE_us` for each stage (decode, track, fire_control, command, host_total) and figure (p50, p90,
  p99, p99_9, max), e.g. host_total_p99_us or decode_p90_us; sensor_to_shooter's in ms, as `hil run` has it
  (sensor_to_shooter_p99_ms); the measured value must not exceed the limit;
- `deadline_misses`: the real-time loop's iterations over their period;
- `launcher_round_trip_ratio`: the launcher link's median round trip over libmodbus' on the same cable and
  emulator (status read and fire write, the worse of the two), one judgement per transport (RTU, TCP).

The goals hil bench has always stated are criteria by default: host_total_p99_us <= 1000 at the default load
(40 targets, clutter 20/scan, 1 radar, 2 launchers) and launcher_round_trip_ratio <= 1.5. Over them, by name:
the rig file's `[criteria]` that are bench figures (host_total_p99_us, sensor_to_shooter_p99_ms,
deadline_misses: the rig's own limits), then `--criteria NAME=VALUE,...` (the grammar of `hil run --criteria`).
A criterion given by the rig or on the command line applies to every load of a sweep.

As in a run, a figure from too small a sample is "not judged", never passed: a percentile p needs 10 / (1 - p)
samples (p50: 20, p90: 100, p99: 1,000, p99.9: 10,000), a maximum one.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.errors import ConfigError
from hil.measure.latency import STAGES
from hil.measure.verdict import (
    FAIL,
    NOT_JUDGED,
    PASS,
    criterion_line,
    judged_nothing,
    parse_criteria_option,
    verdict_head,
)
from hil.units import samples_needed

HOST_P99_GOAL_US = 1000.0  # frame received -> command written, the default load
STAGE_FIGURES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9), ("max", None))
MS_STAGES = ("sensor_to_shooter",)  # judged in ms, as hil run judges it
LOAD, BASELINE = "load", "launcher round trip"  # what a criterion reads: one load's results, or the baseline
RATIO = "launcher_round_trip_ratio"


@dataclass(frozen=True)
class BenchMeasure:
    """A figure a bench criterion can name: where it is read, how, its unit; the measured value must not exceed
    the limit (every bench figure is a cost)."""

    description: str
    unit: str
    scope: str  # LOAD | BASELINE
    read: Callable[[dict[str, Any]], tuple[float | None, str]]  # a load's run record or one transport's baseline


def _stage_figure(stage: str, figure: str, p: float | None, scale: float) -> Callable[..., tuple[float | None, str]]:
    needed = 1 if p is None else samples_needed(p)

    def read(run: dict[str, Any]) -> tuple[float | None, str]:
        s = (run.get("stages") or {}).get(stage) or {}
        n = int(s.get("count") or 0)
        if n < needed or s.get(figure) is None:
            what = "a maximum" if p is None else f"a p{p:g}"
            return None, f"{n:,} samples; {what} needs {needed:,}" + _duration_for(needed, n, run)
        return float(s[figure]) * scale, f"{n:,} samples"

    return read


def _duration_for(needed: int, n: int, run: dict[str, Any]) -> str:
    """How long a run of this load takes to gather `needed` samples at the rate this one gathered n (a long
    enough bench of the sustained load keeps that rate), rounded up: ": about --duration 600 s at this load's
    rate"; "" when the rate is unknown."""
    duration_s = float((run.get("load") or {}).get("duration_s") or 0.0)
    if n <= 0 or duration_s <= 0.0:
        return ""
    seconds = needed * duration_s / n
    step = 100 if seconds >= 100 else 10
    return f": about --duration {math.ceil(seconds / step) * step:,} s at this load's rate"


def _deadline_misses(run: dict[str, Any]) -> tuple[float | None, str]:
    d = run.get("deadline") or {}
    if not d.get("iterations"):
        return None, "no real-time loop ran"
    return float(d["overruns"]), f"{d['overruns']:,} of {d['iterations']:,} loop iterations over the period"


def _ratio(m: dict[str, Any]) -> tuple[float | None, str]:
    if "note" in m:
        return None, f"not measured: {m['note']}"
    parts, worst = [], 0.0
    for op in ("status", "write"):
        r = m[op]
        counts = [int(r[side].get("count") or 0) for side in ("libmodbus", "launcher_link")]
        if min(counts) < samples_needed(50.0):
            return None, f"{op}: {min(counts)} round trips; a median needs {samples_needed(50.0)}"
        parts.append(f"{op} {r['ratio']:.2f}×")
        worst = max(worst, float(r["ratio"]))
    return worst, "medians: " + ", ".join(parts)


def _measures() -> dict[str, BenchMeasure]:
    out: dict[str, BenchMeasure] = {}
    for stage in STAGES:
        ms = stage in MS_STAGES
        for figure, p in STAGE_FIGURES:
            what = "maximum" if p is None else f"p{p:g}"
            out[f"{stage}_{figure}_{'ms' if ms else 'us'}"] = BenchMeasure(
                f"{stage} latency, {what}", "ms" if ms else "µs", LOAD,
                _stage_figure(stage, figure, p, 1e-3 if ms else 1.0))
    out["deadline_misses"] = BenchMeasure("loop iterations over their period", "", LOAD, _deadline_misses)
    out[RATIO] = BenchMeasure("launcher link's median round trip over libmodbus' (worse of status and write)", "×",
                              BASELINE, _ratio)
    return out


MEASURES = _measures()
KNOWN = ("STAGE_FIGURE_us (STAGE: " + ", ".join(s for s in STAGES if s not in MS_STAGES) + "; FIGURE: "
         + ", ".join(f for f, _ in STAGE_FIGURES) + "; sensor_to_shooter_FIGURE_ms), deadline_misses, " + RATIO)


@dataclass(frozen=True)
class BenchCriterion:
    name: str
    limit: float
    source: str
    default_load_only: bool = False  # a goal stated for the default load alone

    @property
    def measure(self) -> BenchMeasure:
        return MEASURES[self.name]


def _criterion(name: str, value: Any, source: str) -> BenchCriterion:
    if name not in MEASURES:
        raise ConfigError(source, f"criteria.{name}", f"is not a bench figure; known: {KNOWN}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(source, f"criteria.{name}", f"must be a number >= 0, got {value!r}")
    return BenchCriterion(name, float(value), source)


def goals(baseline: bool) -> dict[str, BenchCriterion]:
    """The goals hil bench states by default (the round trip's only when the baseline is measured)."""
    out = {"host_total_p99_us": BenchCriterion("host_total_p99_us", HOST_P99_GOAL_US, "hil bench goal",
                                               default_load_only=True)}
    if baseline:
        from hil.measure.modbus_baseline import GOAL_RATIO  # loaded when the baseline is measured anyway

        out[RATIO] = BenchCriterion(RATIO, GOAL_RATIO, "hil bench goal")
    return out


def bench_criteria(option: str = "", rig: Mapping[str, Any] | None = None, rig_source: str = "rig",
                   baseline: bool = True) -> dict[str, BenchCriterion]:
    """The goals, then the rig's [criteria] that are bench figures, then --criteria (same grammar as hil run's),
    each overriding the last by name. One ConfigError line for a name or value that is wrong."""
    out = goals(baseline)
    for name, value in (rig or {}).items():
        if name in MEASURES:  # the rig's other criteria (leaks, links_healthy...) are a run's, not a bench's
            out[name] = _criterion(name, value, rig_source)
    for name, value in parse_criteria_option(option).items():
        c = _criterion(name, value, "--criteria")
        if c.measure.scope == BASELINE and not baseline:
            raise ConfigError("--criteria", name, "needs the launcher round trip against libmodbus, which "
                                                  "--no-modbus-baseline skips")
        out[name] = c
    return out


def _row(c: BenchCriterion, value: float | None, why: str, where: str) -> dict[str, Any]:
    m = c.measure
    result = NOT_JUDGED if value is None else PASS if value <= c.limit else FAIL
    return {"name": c.name, "measured": None if value is None else round(value, 6), "limit": c.limit, "op": "<=",
            "unit": m.unit, "result": result, "detail": why, "source": c.source, "description": m.description,
            "where": where}


def load_where(load: Mapping[str, Any]) -> str:
    """A load in a few words, unique within a sweep (a sweep varies the target count alone)."""
    return f"{load['targets']} targets"


def judge_bench(results: dict[str, Any], criteria: dict[str, BenchCriterion],
                is_default_load: Callable[[Mapping[str, Any]], bool]) -> dict[str, Any]:
    """The results' verdict block: a run's shape (result, failed, not_judged, criteria), each row with where it
    was measured ("40 targets", "launcher round trip (rtu)"); failed and not_judged name them as NAME @ WHERE."""
    rows = []
    for run in results.get("runs", []):
        where = load_where(run["load"])
        for c in criteria.values():
            if c.measure.scope != LOAD or (c.default_load_only and not is_default_load(run["load"])):
                continue
            value, why = c.measure.read(run)
            rows.append({**_row(c, value, why, where), "load": dict(run["load"])})
    for transport, m in (results.get("modbus_baseline") or {}).items():
        for c in criteria.values():
            if c.measure.scope == BASELINE:
                value, why = c.measure.read(m)
                rows.append(_row(c, value, why, f"{BASELINE} ({transport})"))
    named = [f"{r['name']} @ {r['where']}" for r in rows]
    return {"result": FAIL if any(r["result"] == FAIL for r in rows) else PASS,
            "failed": [n for n, r in zip(named, rows, strict=True) if r["result"] == FAIL],
            "not_judged": [n for n, r in zip(named, rows, strict=True) if r["result"] == NOT_JUDGED],
            "criteria": rows}


def _groups(verdict: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in verdict["criteria"]:
        out.setdefault(r["where"], []).append(r)
    return out


def bench_verdict_lines(verdict: dict[str, Any], rig_failed: bool = False) -> list[str]:
    """The verdict for people, first in hil bench's output (after any RIG FAILED line: then no verdict stands,
    hil.measure.verdict.verdict_head): one line, then each criterion under where it was measured."""
    rows = verdict["criteria"]
    if not rows:  # a pass over nothing would say what was not shown
        head = ("VERDICT: NONE (no criterion applied to what was measured: the goals are stated for the default load, "
                "40 targets, clutter 20/scan, 1 radar, 2 launchers, and the launcher round trip)")
    elif judged_nothing(verdict):
        head = "VERDICT: NOTHING JUDGED (too few samples for every criterion: a longer --duration takes more)"
    else:
        head = "VERDICT: PASS" if verdict["result"] == PASS else f"VERDICT: FAIL ({', '.join(verdict['failed'])})"
    if verdict["not_judged"]:
        head += f"; not judged: {', '.join(verdict['not_judged'])}"
    out = [verdict_head(head, rig_failed)]
    for where, rows in _groups(verdict).items():
        out.append(f"  {where}:")
        out += ["    " + criterion_line(r) for r in rows]
    return out


def write_bench_junit(path: str | Path, verdict: dict[str, Any], time_s: float = 0.0,
                      rig_failures: Sequence[str] = ()) -> None:
    """JUnit XML: one testsuite per load (and per transport of the launcher round trip), one testcase per
    criterion; a failure says measured against limit, a criterion not judged is skipped with why. When the rig
    failed, a testsuite "hil bench rig" holds one test in error per failure, so CI sees it among the tests."""
    root = ET.Element("testsuites", name="hil bench")
    if rig_failures:
        ts = ET.SubElement(root, "testsuite", name="hil bench rig", tests=str(len(rig_failures)), failures="0",
                           errors=str(len(rig_failures)), skipped="0", time=f"{time_s:.3f}")
        for k, problem in enumerate(rig_failures):
            case = ET.SubElement(ts, "testcase", classname="hil bench rig", name=f"rig {k + 1}", time="0")
            ET.SubElement(case, "error", type="rig failed", message=problem)
    for where, rows in _groups(verdict).items():
        suite = f"hil bench {where}"
        ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(rows)),
                           failures=str(sum(r["result"] == FAIL for r in rows)), errors="0",
                           skipped=str(sum(r["result"] == NOT_JUDGED for r in rows)),
                           time=f"{time_s:.3f}")
        for r in rows:
            case = ET.SubElement(ts, "testcase", classname=suite, name=r["name"], time="0")
            unit = f" {r['unit']}" if r["unit"] else ""
            if r["result"] == FAIL:
                ET.SubElement(case, "failure", type="criterion",
                              message=f"measured {r['measured']:g}{unit}, limit {r['op']} {r['limit']:g}{unit}: "
                                      f"{r['detail']}").text = criterion_line(r)
            elif r["result"] == NOT_JUDGED:
                ET.SubElement(case, "skipped", message=f"not judged: {r['detail']}")
    ET.indent(root)
    Path(path).write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


__all__ = ["HOST_P99_GOAL_US", "MEASURES", "RATIO", "BenchCriterion", "BenchMeasure", "bench_criteria",
           "bench_verdict_lines", "goals", "judge_bench", "load_where", "write_bench_junit"]
