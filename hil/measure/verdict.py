"""A run's verdict: named measurements from its summary, each against a limit, judged pass, fail or not judged.

Criteria come from the rig file's `[criteria]` (the bench's own limits, e.g. latency), then the scenario's
`[criteria]` (what the scenario is for), then `--criteria NAME=VALUE,...` on the command line; a later source
overrides an earlier one name by name. Two criteria are always on and cannot be switched off or loosened: no
round may take a friendly or neutral object (friendly_engagements = 0) and none may be killed (friendly_kills = 0).

A criterion whose sample is too small to judge says so instead of passing: a percentile p needs at least
10 / (1 - p) samples (1,000 for a p99); a kill fraction needs a hostile that flew; GOSPA needs a sample.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hil.config_schema import shown
from hil.errors import ConfigError

PASS, FAIL, NOT_JUDGED = "pass", "fail", "not judged"


@dataclass(frozen=True)
class Measure:
    """A measurement a criterion can name: what it reads from summary.json, its unit and which way is good."""

    description: str
    unit: str
    op: str  # "<=" (the measured value must not exceed the limit) or ">=" (must reach it)
    read: Callable[[dict[str, Any], Any], tuple[float | None, str]]  # (summary, criterion arg) -> (value, why)
    kind: str = "number"  # number | names (a list of target names) | kinds (a table kind -> fraction) | flag


def _plant(s: dict[str, Any]) -> dict[str, Any]:
    plant: dict[str, Any] = s.get("plant") or {}
    return plant


def _hostiles(s: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in s.get("engagements", []) if e.get("allegiance") == "hostile" and e["result"] != "not_launched"]


def _friendly_engagements(s: dict[str, Any], _: Any) -> tuple[float | None, str]:
    if s.get("friendly_engagements") is None:
        return None, "this run did not fly the plant (its plant's summary has the outcomes)"
    return float(s["friendly_engagements"]), "rounds whose seeker took a friendly or neutral object"


def _friendly_kills(s: dict[str, Any], _: Any) -> tuple[float | None, str]:
    p = _plant(s)
    if not p:
        return None, "this run did not fly the plant"
    return float(p.get("friendly_killed", 0) + p.get("neutral_killed", 0)), "friendly and neutral objects killed"


def _cut_short(s: dict[str, Any]) -> str:
    """Why a kill count cannot be judged against the scenario's: the run covered less of it ("" when it did not)."""
    planned, ran = s.get("scenario_duration_s"), s.get("duration_s")
    if s.get("interrupted"):
        return "the run was interrupted"
    if isinstance(planned, int | float) and isinstance(ran, int | float) and ran < planned:
        return f"the run covered {ran:g} s of the scenario's {planned:g} s"
    return ""


def _killed_fraction(s: dict[str, Any], _: Any) -> tuple[float | None, str]:
    if _cut_short(s):
        return None, _cut_short(s)
    hostiles = _hostiles(s)
    if not hostiles:
        return None, "no hostile flew"
    killed = sum(1 for e in hostiles if e["result"] == "killed")
    return killed / len(hostiles), f"{killed} of {len(hostiles)} hostiles killed"


def _named_killed(s: dict[str, Any], names: Any) -> tuple[float | None, str]:
    if _cut_short(s):
        return None, _cut_short(s)
    rows = {e["target"]: e for e in s.get("engagements", [])}
    unknown = [n for n in names if n not in rows]
    if unknown:
        return None, f"no target named {', '.join(unknown)} in the scenario"
    flew = [n for n in names if rows[n]["result"] != "not_launched"]
    if not flew:
        return None, "none of them flew"
    missed = [n for n in flew if rows[n]["result"] != "killed"]
    return float(len(flew) - len(missed)) / len(flew), ("all killed" if not missed else
                                                         f"not killed: {', '.join(missed)}")


def _kinds_killed(s: dict[str, Any], kinds: Any) -> tuple[float | None, str]:
    # the worst kind's fraction against its own limit, as a margin: measured / limit (1.0 = just met)
    if _cut_short(s):
        return None, _cut_short(s)
    worst: tuple[float, str] | None = None
    for kind, limit in kinds.items():
        rows = [e for e in _hostiles(s) if e["kind"] == kind]
        if not rows:
            continue
        frac = sum(1 for e in rows if e["result"] == "killed") / len(rows)
        margin = frac / limit if limit > 0 else math.inf
        if worst is None or margin < worst[0]:
            worst = (margin, f"{kind}: {frac:.0%} killed, {limit:.0%} needed")
    if worst is None:
        return None, "no hostile of those kinds flew"
    return worst[0], worst[1]


def _leaks(s: dict[str, Any], _: Any) -> tuple[float | None, str]:
    if not s.get("engagements"):
        return None, "this run did not fly the plant"
    return float(sum(1 for e in s["engagements"] if e["result"] == "leaked")), "targets that reached their asset"


def _nfz_detonations(s: dict[str, Any], _: Any) -> tuple[float | None, str]:
    p = _plant(s)
    if not p:
        return None, "this run did not fly the plant"
    return float(p.get("nfz_detonations", 0)), "rounds that detonated inside a no-fire zone"


def _rounds_per_kill(s: dict[str, Any], _: Any) -> tuple[float | None, str]:
    if _cut_short(s):
        return None, _cut_short(s)
    p = _plant(s)
    kills = (p.get("killed") or {}).get("hostile", 0)
    if not p or not kills:
        return None, "no hostile killed"
    return p["rounds_launched"] / kills, f"{p['rounds_launched']} rounds for {kills} kills"


def _percentile(stage: str, key: str, p: float, scale: float = 1.0) -> Callable[..., tuple[float | None, str]]:
    needed = math.ceil(round(10 / (1 - p), 6))

    def read(s: dict[str, Any], _: Any) -> tuple[float | None, str]:
        v = (s.get("latency_us") or {}).get(stage) or {}
        n = int(v.get("count") or 0)
        if n < needed or v.get(key) is None:
            return None, f"{n} samples; a p{p * 100:g} needs {needed:,}"
        return float(v[key]) * scale, f"{n:,} samples"

    return read


def _deadline_misses(s: dict[str, Any], _: Any) -> tuple[float | None, str]:
    d = s.get("deadline_misses") or {}
    if not d.get("iterations"):
        return None, "no real-time loop (virtual time)"
    return float(d["overruns"]), f"{d['overruns']} of {d['iterations']:,} loop iterations over the period"


def _watchdog_trips(s: dict[str, Any], _: Any) -> tuple[float | None, str]:
    health = s.get("launcher_health") or {}
    return float(sum(h.get("watchdog_trips", 0) for h in health.values())), "over every launcher"


def _links_healthy(s: dict[str, Any], _: Any) -> tuple[float | None, str]:
    problems = list(s.get("rig_problems") or [])
    return (1.0, "every link up to the end") if not problems else (0.0, "; ".join(problems))


def _gospa(s: dict[str, Any], _: Any) -> tuple[float | None, str]:
    if _cut_short(s):
        return None, _cut_short(s)  # the first seconds, before tracks confirm, would weigh as much as the rest
    g = s.get("gospa_mean_m")
    return (None, "no tracking sample") if g is None else (float(g), "mean over the run, c = 1 km")


MEASURES: dict[str, Measure] = {
    "friendly_engagements": Measure("rounds whose seeker took a friendly or neutral object", "", "<=",
                                    _friendly_engagements),
    "friendly_kills": Measure("friendly and neutral objects killed", "", "<=", _friendly_kills),
    "hostiles_killed_fraction": Measure("fraction of the hostiles that flew that were killed", "", ">=",
                                        _killed_fraction),
    "hostiles_killed": Measure("these hostiles (by name) killed, as a fraction of those that flew", "", ">=",
                               _named_killed, kind="names"),
    "hostile_kinds_killed": Measure("per kind, the fraction killed against its own limit (worst kind)", "", ">=",
                                    _kinds_killed, kind="kinds"),
    "leaks": Measure("targets that reached their asset", "", "<=", _leaks),
    "nfz_detonations": Measure("rounds that detonated inside a no-fire zone", "", "<=", _nfz_detonations),
    "rounds_per_kill": Measure("rounds launched per hostile killed", "", "<=", _rounds_per_kill),
    "host_total_p99_us": Measure("radar frame received to fire command written, p99", "µs", "<=",
                                 _percentile("host_total", "p99", 0.99)),
    "sensor_to_shooter_p99_ms": Measure("detection on the radar board to launch accepted, p99", "ms", "<=",
                                        _percentile("sensor_to_shooter", "p99", 0.99, 1e-3)),
    "deadline_misses": Measure("loop iterations over their period (real time)", "", "<=", _deadline_misses),
    "watchdog_trips": Measure("launcher watchdog trips", "", "<=", _watchdog_trips),
    "links_healthy": Measure("every board link up, every launcher armed at the end", "", ">=", _links_healthy,
                             kind="flag"),
    "gospa_mean_m": Measure("tracking accuracy, GOSPA mean", "m", "<=", _gospa),
}
ALWAYS: dict[str, float] = {"friendly_engagements": 0.0, "friendly_kills": 0.0}


@dataclass(frozen=True)
class Criterion:
    name: str
    limit: float  # for names / kinds criteria: 1.0 (all of them, every kind to its own limit)
    arg: Any = None  # the names or the kind -> fraction table
    source: str = ""

    @property
    def measure(self) -> Measure:
        return MEASURES[self.name]


def _criterion(name: str, value: Any, source: str) -> Criterion:
    if name not in MEASURES:
        raise ConfigError(source, "criteria", f"no criterion {shown(name)}; known: {', '.join(MEASURES)}")
    m = MEASURES[name]
    if m.kind == "names":
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(source, f"criteria.{name}", "must be a target name or a list of them")
        return Criterion(name, 1.0, tuple(names), source)
    if m.kind == "kinds":
        if not isinstance(value, Mapping) or not value or not all(
                isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1
                for k, v in value.items()):
            raise ConfigError(source, f"criteria.{name}", "must be a table kind = fraction (0 < fraction <= 1), "
                                                          'e.g. { missile = 1.0, aircraft = 0.5 }')
        return Criterion(name, 1.0, dict(value), source)
    if m.kind == "flag":
        if not isinstance(value, bool):
            raise ConfigError(source, f"criteria.{name}", "must be true or false")
        return Criterion(name, 1.0 if value else 0.0, None, source)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(source, f"criteria.{name}", f"must be a number >= 0, got {value!r}")
    if name in ALWAYS and value != ALWAYS[name]:
        raise ConfigError(source, f"criteria.{name}", "is always 0 and cannot be changed: hil never passes a run "
                                                      "that engaged a friendly or neutral object")
    if m.op == ">=" and name.endswith("_fraction") and value > 1:
        raise ConfigError(source, f"criteria.{name}", f"is a fraction from 0 to 1, got {value!r}")
    return Criterion(name, float(value), None, source)


def criteria_from(table: Mapping[str, Any] | None, source: str) -> dict[str, Criterion]:
    """The criteria of one [criteria] table (a scenario's or a rig's), checked: one ConfigError line otherwise."""
    out: dict[str, Criterion] = {}
    for name, value in (table or {}).items():
        out[name] = _criterion(name, value, source)
    return out


_CLI_ITEM = re.compile(r"^\s*([a-z_0-9]+)\s*=\s*(.+?)\s*$")


def parse_criteria_option(text: str) -> dict[str, Any]:
    """--criteria "leaks=0,host_total_p99_us=800,hostiles_killed=bomber-1+bomber-2,links_healthy=true"."""
    table: dict[str, Any] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        m = _CLI_ITEM.match(item)
        if not m:
            raise ConfigError("--criteria", item, "is not NAME=VALUE")
        name, raw = m.groups()
        kind = MEASURES[name].kind if name in MEASURES else "number"
        value: Any
        if kind == "names":
            value = [n for n in raw.split("+") if n]
        elif kind == "kinds":
            value = {}
            for part in raw.split("+"):
                k, _, v = part.partition(":")
                try:
                    value[k] = float(v)
                except ValueError:
                    raise ConfigError("--criteria", name, "is KIND:FRACTION+KIND:FRACTION") from None
        elif kind == "flag":
            if raw not in ("true", "false"):
                raise ConfigError("--criteria", name, "is true or false")
            value = raw == "true"
        else:
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError("--criteria", name, f"needs a number, got {raw!r}") from None
        table[name] = value
    return table


def merged(*layers: dict[str, Criterion]) -> dict[str, Criterion]:
    """The always-on criteria, then each layer overriding the last by name."""
    out = {name: Criterion(name, limit, None, "always") for name, limit in ALWAYS.items()}
    for layer in layers:
        out.update(layer)
    return out


def judge(summary: dict[str, Any], criteria: dict[str, Criterion]) -> dict[str, Any]:
    """summary.json's verdict block: overall pass/fail, and each criterion measured against its limit."""
    rows = []
    for c in criteria.values():
        m = c.measure
        try:
            value, why = m.read(summary, c.arg)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
            value, why = None, f"cannot be measured from this run's summary ({type(e).__name__}: {e})"
        if value is None:
            result = NOT_JUDGED
        elif m.op == "<=":
            result = PASS if value <= c.limit else FAIL
        else:
            result = PASS if value >= c.limit else FAIL
        rows.append({"name": c.name, "measured": None if value is None else round(value, 6), "limit": c.limit,
                     "op": m.op, "unit": m.unit, "result": result, "detail": why, "source": c.source,
                     "description": m.description, **({"of": list(c.arg) if m.kind == "names" else c.arg}
                                                      if c.arg is not None else {})})
    failed = [r["name"] for r in rows if r["result"] == FAIL]
    return {"result": FAIL if failed else PASS, "failed": failed,
            "not_judged": [r["name"] for r in rows if r["result"] == NOT_JUDGED], "criteria": rows}


def criterion_line(row: dict[str, Any]) -> str:
    """One criterion for people: name, result, measured against its limit, why."""
    unit = f" {row['unit']}" if row["unit"] else ""
    measured = "–" if row["measured"] is None else f"{row['measured']:g}{unit}"
    return f"{row['name']:<26}{row['result'].upper():<12}{measured:>14}  {row['op']} {row['limit']:g}{unit}  " \
           f"({row['detail']})"


def verdict_lines(verdict: dict[str, Any], nothing_judged: str = "", rig_failed: bool = False) -> list[str]:
    """The verdict for people: its head, then a line per criterion. nothing_judged: what to say instead of PASS when
    not one criterion could be judged (where the verdict is, e.g. a plant elsewhere's). rig_failed: the rig failed
    (the RIG FAILED lines say how), so no verdict stands (verdict_head)."""
    rows = verdict["criteria"]
    if judged_nothing(verdict):
        head = "VERDICT: NOTHING JUDGED HERE" + (f": {nothing_judged}" if nothing_judged else "")
    else:
        head = "VERDICT: PASS" if verdict["result"] == PASS else f"VERDICT: FAIL ({', '.join(verdict['failed'])})"
    if verdict["not_judged"]:
        head += f"; not judged: {', '.join(verdict['not_judged'])}"
    return [verdict_head(head, rig_failed), *("  " + criterion_line(r) for r in rows)]


def judged_nothing(verdict: dict[str, Any]) -> bool:
    """A verdict with criteria of which not one could be judged: it passed, but on nothing (never to be called PASS)."""
    rows = verdict.get("criteria") or []
    return bool(verdict.get("result") == PASS and rows and len(verdict.get("not_judged") or []) == len(rows))


def verdict_head(head: str, rig_failed: bool) -> str:
    """A verdict's head line ("VERDICT: PASS ..."), or, when the rig failed, one saying that no verdict stands and
    what the criteria gave as measured: a PASS over a failed rig says nothing of the system under test (the exit
    status is 3, the rig's)."""
    if not rig_failed:
        return head
    return f"VERDICT: NONE: the rig failed (RIG FAILED above), this run judges nothing; as measured: " \
           f"{head.removeprefix('VERDICT: ')}"


def write_junit(path: str | Path, suite: str, verdict: dict[str, Any], time_s: float = 0.0) -> None:
    """One JUnit testcase per criterion (failure: measured against limit; skipped: not judged)."""
    rows = verdict["criteria"]
    root = ET.Element("testsuites")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(rows)),
                       failures=str(sum(r["result"] == FAIL for r in rows)), errors="0",
                       skipped=str(sum(r["result"] == NOT_JUDGED for r in rows)), time=f"{time_s:.3f}")
    for r in rows:
        case = ET.SubElement(ts, "testcase", classname=suite, name=r["name"], time="0")
        if r["result"] == FAIL:
            unit = f" {r['unit']}" if r["unit"] else ""
            message = f"measured {r['measured']:g}{unit}, limit {r['op']} {r['limit']:g}{unit}: {r['detail']}"
            ET.SubElement(case, "failure", message=message, type="criterion").text = criterion_line(r)
        elif r["result"] == NOT_JUDGED:
            ET.SubElement(case, "skipped", message=f"not judged: {r['detail']}")
    ET.indent(root)
    Path(path).write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


__all__ = ["ALWAYS", "FAIL", "MEASURES", "NOT_JUDGED", "PASS", "Criterion", "criteria_from", "judge", "judged_nothing",
           "merged", "parse_criteria_option", "verdict_head", "verdict_lines", "write_junit"]
