"""A campaign's statistics: proportions with Wilson 95 % intervals, exact upper bounds, means with t intervals, and
latency from merged HDR histograms (never averaged percentiles).

Every figure is computed from the runs in plan order (grid point, then seed), so the same runs give the same
numbers to the last bit, whichever worker ran them and in whatever order they finished.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scipy import stats as sps

from hil.measure.latency import StageLatency, histogram_summary

CONFIDENCE = 0.95
Z = float(sps.norm.ppf(1 - (1 - CONFIDENCE) / 2))  # 1.959963984540054
HOSTILE_RESULTS = ("killed", "leaked", "survived")


def wilson(k: int, n: int) -> dict[str, Any]:
    """k successes in n trials: the proportion and its Wilson score 95 % interval (None when n = 0)."""
    if n == 0:
        return {"k": k, "n": n, "p": None, "lo": None, "hi": None}
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exactly 0 and 1 at the ends, not a rounding error away
    hi = 1.0 if k == n else min(1.0, centre + half)
    return {"k": k, "n": n, "p": p, "lo": lo, "hi": hi}


def upper_bound(k: int, n: int) -> float | None:
    """The exact (Clopper-Pearson) one-sided 95 % upper bound of a rate seen k times in n trials. For k = 0 it is
    1 - 0.05^(1/n), about 3/n (the rule of three): 200 runs without a fratricide bound its rate at 1.49 %."""
    if n == 0:
        return None
    if k >= n:
        return 1.0
    if k == 0:
        return float(1 - (1 - CONFIDENCE) ** (1 / n))
    return float(sps.beta.ppf(CONFIDENCE, k + 1, n - k))


def mean_interval(values: Sequence[float]) -> dict[str, Any]:
    """The mean of the values and its Student-t 95 % interval (no interval from one value)."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "lo": None, "hi": None}
    mean = math.fsum(values) / n
    if n == 1:
        return {"n": 1, "mean": mean, "lo": None, "hi": None}
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(sps.t.ppf(1 - (1 - CONFIDENCE) / 2, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": mean, "lo": mean - half, "hi": mean + half}


def run_outcomes(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A run's key figures from its summary.json: per hostile kind the hostiles that flew, their results and the
    rounds fired at them; rounds; fratricide (rounds whose seeker took a friendly or neutral object); GOSPA."""
    plant = summary.get("plant") or {}
    rounds_at = plant.get("rounds_per_target") or {}
    kinds: dict[str, dict[str, int]] = {}
    for e in summary.get("engagements") or []:
        if e.get("allegiance") != "hostile" or e.get("result") == "not_launched":
            continue
        row = kinds.setdefault(e["kind"], {"present": 0, "rounds": 0, **dict.fromkeys(HOSTILE_RESULTS, 0)})
        row["present"] += 1
        row[e["result"]] = row.get(e["result"], 0) + 1
        row["rounds"] += int(rounds_at.get(e["target"], 0))
    killed = plant.get("killed") or {}
    return {
        "kinds": {k: kinds[k] for k in sorted(kinds)},
        "hostiles": sum(r["present"] for r in kinds.values()),
        "hostiles_killed": sum(r["killed"] for r in kinds.values()),
        "leaks": sum(r["leaked"] for r in kinds.values()),
        "rounds_launched": int(plant.get("rounds_launched", 0)),
        "fratricide": int(summary.get("friendly_engagements") or 0),
        "friendly_neutral_killed": int(killed.get("friendly", 0)) + int(killed.get("neutral", 0)),
        "gospa_mean_m": summary.get("gospa_mean_m"),
        "launches": int(summary.get("launches") or 0),
        "floor_us": summary.get("floor_us"),
    }


def merged_latency(encoded: Iterable[Mapping[str, str] | None]) -> StageLatency:
    """The runs' latency.json histograms added into one per stage: the campaign's own distribution."""
    total = StageLatency()
    for e in encoded:
        if e:
            total.merge(StageLatency.decode(e))
    return total


def group_stats(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The statistics of a set of finished runs' records (runner.run_record), in their order."""
    outs = [r["outcomes"] for r in records]
    n = len(outs)
    kinds: dict[str, dict[str, Any]] = {}
    for name in sorted({k for o in outs for k in o["kinds"]}):
        rows = [o["kinds"][name] for o in outs if name in o["kinds"]]
        present = sum(r["present"] for r in rows)
        killed = sum(r["killed"] for r in rows)
        rounds = sum(r["rounds"] for r in rows)
        kinds[name] = {
            "present": present, "rounds": rounds,
            "outcomes": {res: sum(r.get(res, 0) for r in rows) for res in HOSTILE_RESULTS},
            "kill_probability": wilson(killed, present),
            "kills_per_round": wilson(min(killed, rounds), rounds),
            "leak_rate": wilson(sum(r["leaked"] for r in rows), present),
            "rounds_per_kill": rounds / killed if killed else None,
        }
    present = sum(o["hostiles"] for o in outs)
    killed = sum(o["hostiles_killed"] for o in outs)
    rounds = sum(o["rounds_launched"] for o in outs)
    rounds_at_kinds = sum(k["rounds"] for k in kinds.values())
    frat = [o["fratricide"] for o in outs]
    runs_with = sum(1 for f in frat if f > 0)
    gospa = [float(o["gospa_mean_m"]) for o in outs if o["gospa_mean_m"] is not None]
    latency = merged_latency(r.get("latency") for r in records)
    passed = sum(1 for r in records if r.get("verdict") == "pass")
    return {
        "runs": n,
        "hostiles": present,
        "kill_probability": wilson(killed, present),
        # kills over the rounds fired at hostiles (a round whose seeker took nothing counts against it too)
        "kills_per_round": wilson(min(killed, rounds), rounds),
        "rounds_at_hostiles": rounds_at_kinds,
        "leak_rate": wilson(sum(o["leaks"] for o in outs), present),
        "rounds_per_kill": rounds / killed if killed else None,
        "fratricide": {"total": sum(frat), "runs_with": runs_with, "per_run": wilson(runs_with, n),
                       "upper_bound_per_run": upper_bound(runs_with, n),
                       "rounds": rounds, "upper_bound_per_round": upper_bound(sum(frat), rounds) if rounds else None,
                       "friendly_neutral_killed": sum(o["friendly_neutral_killed"] for o in outs)},
        "gospa_mean_m": mean_interval(gospa),
        "runs_passed": wilson(passed, n),
        "kinds": kinds,
        "latency_us": {s: histogram_summary(latency.histogram(s)) for s in latency.stages},
        "floor_us": max((o["floor_us"] for o in outs if o.get("floor_us") is not None), default=None),
    }


def cdf_points(latency: StageLatency, stage: str) -> tuple[list[float], list[float]]:
    """(value µs, fraction of samples at or below it) along a merged histogram's recorded buckets."""
    h = latency.histogram(stage)
    total = h.get_total_count()
    xs: list[float] = []
    ys: list[float] = []
    if not total:
        return xs, ys
    seen = 0
    for item in h.get_recorded_iterator():
        seen += item.count_at_value_iterated_to
        xs.append(item.value_iterated_to / 1e3)
        ys.append(seen / total)
    return xs, ys


__all__ = ["CONFIDENCE", "cdf_points", "group_stats", "mean_interval", "merged_latency", "run_outcomes",
           "upper_bound", "wilson"]
