"""Campaign criteria: a statistic of each grid point (its bound, not its point estimate) against a limit.

Each criterion is judged on every grid point on its own, because each point is a different system; the campaign
passes when every point passes. Rows have the same fields as a run's verdict (hil.measure.verdict), so the
verdict lines and JUnit are written the same way. A statistic with no sample (no hostile flew, no latency) is
"not judged", and a latency percentile needs as many samples as a run's criterion does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hil.config_schema import shown
from hil.errors import ConfigError
from hil.measure.verdict import FAIL, NOT_JUDGED, PASS


@dataclass(frozen=True)
class CampaignMeasure:
    description: str
    unit: str
    op: str
    read: Callable[[Mapping[str, Any]], tuple[float | None, str]]  # a grid point's statistics -> (value, why)
    fraction: bool = True


def _bound(block: str, end: str, what: str) -> Callable[[Mapping[str, Any]], tuple[float | None, str]]:
    def read(s: Mapping[str, Any]) -> tuple[float | None, str]:
        w = s[block]
        if not w["n"]:
            return None, f"no {what}"
        return w[end], f"{w['k']} of {w['n']} {what}, {w['p']:.1%} (Wilson 95 % {w['lo']:.1%}..{w['hi']:.1%})"

    return read


def _fratricide(s: Mapping[str, Any]) -> tuple[float | None, str]:
    f = s["fratricide"]
    if f["upper_bound_per_run"] is None:
        return None, "no run"
    return f["upper_bound_per_run"], (f"{f['runs_with']} of {s['runs']} runs with a round on a friendly or neutral "
                                      f"object; 95 % upper bound {f['upper_bound_per_run']:.2%} per run")


def _gospa(s: Mapping[str, Any]) -> tuple[float | None, str]:
    g = s["gospa_mean_m"]
    if g["mean"] is None:
        return None, "no tracking sample"
    if g["hi"] is None:
        return None, "one run: no interval"
    return g["hi"], f"mean {g['mean']:.1f} m over {g['n']} runs (95 % {g['lo']:.1f}..{g['hi']:.1f} m)"


def _percentile(stage: str, key: str, p: float, scale: float) -> Callable[[Mapping[str, Any]], tuple[float | None,
                                                                                                      str]]:
    needed = math.ceil(round(10 / (1 - p), 6))

    def read(s: Mapping[str, Any]) -> tuple[float | None, str]:
        v = s["latency_us"].get(stage) or {}
        n = int(v.get("count") or 0)
        if n < needed or v.get(key) is None:
            return None, f"{n} samples; a p{p * 100:g} needs {needed:,}"
        return float(v[key]) * scale, f"{n:,} samples, merged over the runs' histograms"

    return read


MEASURES: dict[str, CampaignMeasure] = {
    "kill_probability_lower_bound": CampaignMeasure(
        "hostiles killed over hostiles that flew, lower end of its Wilson 95 % interval", "", ">=",
        _bound("kill_probability", "lo", "hostiles killed")),
    "kills_per_round_lower_bound": CampaignMeasure(
        "hostiles killed over rounds fired, lower end of its Wilson 95 % interval", "", ">=",
        _bound("kills_per_round", "lo", "rounds killed a hostile")),
    "leak_rate_upper_bound": CampaignMeasure(
        "hostiles that reached their asset over hostiles that flew, upper end of its Wilson 95 % interval", "", "<=",
        _bound("leak_rate", "hi", "hostiles leaked")),
    "fratricide_upper_bound": CampaignMeasure(
        "chance that a run fires a round whose seeker takes a friendly or neutral object, exact 95 % upper bound",
        "", "<=", _fratricide),
    "runs_passed_lower_bound": CampaignMeasure(
        "runs whose own verdict passed, lower end of its Wilson 95 % interval", "", ">=",
        _bound("runs_passed", "lo", "runs passed")),
    "gospa_mean_upper_m": CampaignMeasure("GOSPA mean over runs, upper end of its 95 % interval", "m", "<=", _gospa,
                                          fraction=False),
    "host_total_p99_us": CampaignMeasure("radar frame received to fire command written, p99 of all runs", "µs", "<=",
                                         _percentile("host_total", "p99", 0.99, 1.0), fraction=False),
    "sensor_to_shooter_p99_ms": CampaignMeasure("detection on the radar board to launch accepted, p99 of all runs",
                                                "ms", "<=", _percentile("sensor_to_shooter", "p99", 0.99, 1e-3),
                                                fraction=False),
}


def campaign_criteria_from(table: Mapping[str, Any] | None, source: str) -> dict[str, float]:
    """[campaign_criteria] checked: name -> limit; one ConfigError line for the first mistake."""
    out: dict[str, float] = {}
    for name, value in (table or {}).items():
        where = f"campaign_criteria.{name}"
        if name not in MEASURES:
            raise ConfigError(source, "campaign_criteria", f"no campaign criterion {shown(name)}; known: "
                                                           f"{', '.join(MEASURES)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ConfigError(source, where, f"must be a number >= 0, got {shown(value)}")
        if MEASURES[name].fraction and value > 1:
            raise ConfigError(source, where, f"is a fraction from 0 to 1 (2 % is 0.02), got {shown(value)}")
        out[name] = float(value)
    return out


def judge_campaign(points: list[tuple[str, Mapping[str, Any]]], criteria: Mapping[str, float],
                   source: str = "campaign") -> dict[str, Any]:
    """Each criterion on each (label, statistics) grid point: a verdict like a run's, one row per pair."""
    rows = []
    for name, limit in criteria.items():
        m = MEASURES[name]
        for label, s in points:
            value, why = m.read(s)
            if value is None:
                result = NOT_JUDGED
            elif m.op == "<=":
                result = PASS if value <= limit else FAIL
            else:
                result = PASS if value >= limit else FAIL
            rows.append({"name": f"{name} [{label}]", "criterion": name, "point": label,
                         "measured": None if value is None else round(value, 6), "limit": limit, "op": m.op,
                         "unit": m.unit, "result": result, "detail": why, "source": source,
                         "description": m.description})
    failed = [r["name"] for r in rows if r["result"] == FAIL]
    return {"result": FAIL if failed else PASS, "failed": failed,
            "not_judged": [r["name"] for r in rows if r["result"] == NOT_JUDGED], "criteria": rows}


__all__ = ["MEASURES", "campaign_criteria_from", "judge_campaign"]
