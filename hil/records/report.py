"""Render a run folder as one self-contained report.html an engineer reads in ten seconds.

Top to bottom: the verdict (or, until a run has one, rig health and the safety headline) and the headline
numbers; a map (assets, no-fire zones, sites, truth and tracks with names and numbers, interceptor fly-outs with
launch, kill, miss and leak markers); a table of every target with its outcome; refusals grouped by target;
latency as tail plots (1 - CDF, log-log) beside the machine floor, with no percentile the sample count cannot
support; launcher and link health, faults injected, real-time options; GOSPA and the engagement timeline.
Images are PNG inlined as data: URLs, so the page needs no other file and no network.

Everything comes from the run folder (see README, "Run folder"): summary.json is required, every other
file is optional and its section says so when it is missing. A summary.json with "complete": false is the
journal of a run that did not finish (killed), one with "interrupted": true a run ended early by a signal:
the report renders both and says so at the top. Assets and launchers come from the
scenario file named in summary.json (``scenario_file``), or a ``scenario.toml`` copied into the run
folder; radar sites from sensors.toml. Plots are drawn with matplotlib's Agg backend on Figure objects
(no pyplot state), so rendering works headless and from any thread.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import logging
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import Bbox

from hil.errors import HilError
from hil.measure.verdict import judged_nothing
from hil.units import PERCENTILES, duration_text, samples_needed

log = logging.getLogger("hil.records.report")

STAGES = ("decode", "track", "fire_control", "command", "host_total", "sensor_to_shooter")
STAGE_TITLES = {
    "decode": "decode (frame → plots)", "track": "track update", "fire_control": "fire control",
    "command": "launcher command round trip", "host_total": "host total t1 → t4",
    "sensor_to_shooter": "sensor to shooter t0 → t5",
}
# the engagement timeline's lanes: (event names in events.csv, marker, colour, legend label)
TIMELINE = (
    (("detection",), "o", "#9e9e9e", "detection"),
    (("confirmation",), "s", "#1f77b4", "confirmation"),
    (("assignment",), ">", "#9467bd", "assignment"),
    (("launch",), "^", "#ff7f0e", "launch"),
    (("intercept", "kill"), "X", "#2ca02c", "intercept / kill"),
    (("miss",), "x", "#d62728", "miss"),
    (("self_destruct",), "o", "#555555", "self-destruct"),
    (("leak",), "v", "#8b0000", "leak"),
    (("refusal",), "|", "#7f7f7f", "refusal"),
)
ALLEGIANCE_COLOURS = {"hostile": "#d62728", "friendly": "#1f77b4", "neutral": "#2ca02c", "unknown": "#7f7f7f"}


class ReportError(HilError):
    """A run folder the report cannot be made from."""


# ---- reading the run folder ---------------------------------------------------------------------------


Table = dict[str, list[str]]


def _read_csv(path: Path) -> Table | None:
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a last row cut off by a kill may hold a cut-off number
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return None
    header = rows[0]
    cols: Table = {name: [] for name in header}
    for row in rows[1:]:
        if len(row) != len(header):
            continue  # the last line of a run that was killed while writing
        for name, value in zip(header, row, strict=True):
            cols[name].append(value)
    return cols


def _floats(table: Table, name: str) -> np.ndarray:
    return np.array([float(v) if v not in ("", "nan") else math.nan for v in table.get(name, [])], dtype=np.float64)


@dataclass
class RunFolder:
    path: Path
    summary: dict[str, Any]
    truth: Table | None
    tracks: Table | None
    gospa: Table | None
    events: Table | None
    latency: dict[str, Any]
    scenario: Any  # hil.scenario.Scenario or None
    sensors: list[dict[str, Any]]
    notes: list[str]


def _load_scenario(run: Path, summary: dict[str, Any], notes: list[str]) -> Any:
    candidates = [run / "scenario.toml"]
    if summary.get("scenario_file"):
        named = Path(str(summary["scenario_file"]))
        candidates += [named, run / named.name]
    for path in candidates:
        if path.is_file():
            try:
                from hil.scenario import Scenario

                return Scenario.load(path)
            except HilError as e:
                notes.append(f"scenario {path} could not be read ({e}): no assets or launchers on the map")
                return None
    notes.append("scenario file not found: no assets or launchers on the map")
    return None


def _load_latency(path: Path, notes: list[str]) -> dict[str, Any]:
    if not path.is_file():
        notes.append("no latency.json: no latency tail plots")
        return {}
    from hdrh.histogram import HdrHistogram

    try:
        encoded = json.loads(path.read_text())
    except ValueError as e:
        notes.append(f"latency.json is not JSON ({e})")
        return {}
    out = {}
    for stage, blob in encoded.items() if isinstance(encoded, dict) else ():
        if not isinstance(blob, str | bytes):
            continue
        try:
            out[stage] = HdrHistogram.decode(blob.encode() if isinstance(blob, str) else blob)
        except Exception as e:  # hdrh raises bare errors of several types on a damaged blob
            notes.append(f"latency.json: histogram {stage!r} unreadable ({type(e).__name__})")
    return out


def load_run_folder(run_dir: str | Path, require_summary: bool = True) -> RunFolder:
    """The run folder's files; without require_summary a missing summary.json is an empty summary and a note."""
    run = Path(run_dir)
    try:
        summary = json.loads((run / "summary.json").read_text())
    except FileNotFoundError:
        if require_summary or not run.is_dir():
            raise ReportError(f"{run}: no summary.json (is this a run folder?)") from None
        summary = {}
    except ValueError as e:
        raise ReportError(f"{run / 'summary.json'}: not JSON ({e})") from None
    if not isinstance(summary, dict):
        raise ReportError(f"{run / 'summary.json'}: not a JSON object")
    notes: list[str] = [] if summary else ["no summary.json"]
    tables = {}
    for name in ("truth", "tracks", "gospa", "events"):
        tables[name] = _read_csv(run / f"{name}.csv")
        if tables[name] is None:
            notes.append(f"no {name}.csv")
    sensors: list[dict[str, Any]] = []
    if (run / "sensors.toml").is_file():
        try:
            sensors = list(tomllib.loads((run / "sensors.toml").read_text()).get("sensor", []))
        except tomllib.TOMLDecodeError as e:
            notes.append(f"sensors.toml unreadable: {e}")
    return RunFolder(run, summary, tables["truth"], tables["tracks"], tables["gospa"], tables["events"],
                     _load_latency(run / "latency.json", notes), _load_scenario(run, summary, notes), sensors,
                     notes)


# ---- numbers as people read them --------------------------------------------------------------------------


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _l(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _n(value: Any) -> float | None:
    """A finite number, or None (a missing field, a string, a NaN, a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int:
    v = _n(value)
    return int(v) if v is not None else 0


def _count(value: Any) -> str:
    v = _n(value)
    return "–" if v is None else f"{v:,.0f}"


def _seconds(value: Any) -> str:
    v = _n(value)
    return "–" if v is None else f"{v:,.1f} s"


def _metres(value: Any) -> str:
    v = _n(value)
    if v is None:
        return "–"
    return f"{v:,.1f} m" if abs(v) < 10_000 else f"{v / 1e3:,.1f} km"


PERCENTILE_LABEL = {"p50": "p50", "p90": "p90", "p99": "p99", "p99_9": "p99.9"}


def percentile_text(stats: dict[str, Any], key: str) -> str:
    """stats[key] (µs) as a duration, or why it is not shown: too few samples for that percentile."""
    p = dict(PERCENTILES)[key]
    n = _int(stats.get("count"))
    if n < samples_needed(p):
        return f"n < {samples_needed(p):,}"
    return duration_text(_n(stats.get(key)))


# ---- reading the outcome ------------------------------------------------------------------------------------

ROUND_WORDS = {"killed": "kill", "missed": "miss", "self_destruct": "self-destruct", "flying": "flying"}
ROUND_STYLE = {  # marker, colour, size, legend label
    "killed": ("*", "#1a9e1a", 17, "kill (detonation that killed)"),
    "missed": ("X", "#d62728", 11, "miss (detonation, target survived)"),
    "self_destruct": ("o", "#555555", 9, "self-destruct (seeker took nothing)"),
    "flying": ("s", "#1f77b4", 8, "still flying at the end (aim point)"),
}
OUTCOME_WORDS = (
    ("killed", "an interceptor destroyed it."),
    ("leaked", "it reached the asset it was flying at: the defence failed against it."),
    ("survived", "still flying when the run ended (for a hostile: not stopped yet; for a friendly or neutral: "
                 "unharmed)."),
    ("not_launched", "it was due to appear only after the run ended, so it never flew."),
)
ROUND_DEFINITIONS = (
    ("kill", "the round's seeker took the target and the detonation destroyed it."),
    ("miss", "the seeker took the target but the detonation did not destroy it (lethal radius and kill "
             "probability)."),
    ("self-destruct", "the seeker took nothing in its search window (or lost what it had taken) and the round "
                      "destroyed itself."),
    ("flying", "still in the air when the run ended."),
)
REASON_TEXT = {
    "INVALID_TRACK": "the track's state was not usable (not finite).",
    "FRIENDLY": "the track is friendly (IFF code): never a target.",
    "NEUTRAL": "the track squawks a neutral code: never a target.",
    "NOT_CONFIRMED": "the track was never confirmed, and fire control only engages confirmed tracks.",
    "NO_FIRE_ZONE": "the track was inside a no-fire zone.",
    "NOT_A_THREAT": "its course did not threaten a defended asset.",
    "ALREADY_ENGAGED": "a round was already flying at it (shoot-look-shoot: look before shooting again).",
    "SHOTS_EXHAUSTED": "the most rounds allowed at one track were already fired.",
    "LAUNCHER_NOT_ARMED": "the launcher was not armed.",
    "LAUNCHER_NOT_READY": "the launcher was not ready: reloading, or its link lost.",
    "NO_ROUNDS": "the launcher had no rounds left.",
    "NO_CHANNEL": "every guidance channel of the launcher was busy.",
    "UNREACHABLE": "an interceptor could never catch it.",
    "TOF": "the time of flight to the intercept was too long.",
    "OUT_OF_RANGE": "the intercept point was outside the launcher's range.",
    "ALTITUDE": "the intercept point was outside the launcher's altitude band.",
    "SECTOR": "the intercept point was outside the launcher's sector.",
    "TOO_LATE": "the intercept would come after it reached its asset.",
    "INTERCEPT_IN_NO_FIRE_ZONE": "the round's terminal path would run through a no-fire zone.",
    "LOW_PK": "the kill probability was too low.",
    "OUTRANKED": "feasible, but the launcher was worth more against another target.",
    "NO_LAUNCHER": "fire control has no launchers.",
    "PROTECTED_NEAR_INTERCEPT": "a friendly or neutral track could be in the seeker's basket near the intercept.",
    "KILL_ASSESSMENT": "waiting for the kill assessment of the last round before firing again.",
}
SAFETY_REASONS = frozenset({"FRIENDLY", "NEUTRAL", "PROTECTED_NEAR_INTERCEPT", "NO_FIRE_ZONE",
                            "INTERCEPT_IN_NO_FIRE_ZONE"})
ALLEGIANCE_ORDER = {"hostile": 0, "friendly": 1, "neutral": 2}


def _engagements(s: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in _l(s.get("engagements")) if isinstance(e, dict)]


def _rounds(s: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in _l(_d(s.get("plant")).get("rounds")) if isinstance(r, dict)]


def track_targets(run: RunFolder) -> dict[int, str]:
    """Track number -> the target it followed, from the run's own records (events.csv, engagements)."""
    out: dict[int, str] = {}
    ev = run.events or {}
    for trk, tgt in zip(ev.get("track", []), ev.get("target", []), strict=False):
        if tgt and trk.lstrip("-").isdigit() and int(trk) >= 0:
            out.setdefault(int(trk), tgt)
    for e in _engagements(run.summary):
        for trk in _l(e.get("tracks")):
            if isinstance(trk, int) and isinstance(e.get("target"), str):
                out[trk] = e["target"]
    return out


def rounds_by_target(run: RunFolder) -> dict[str, list[dict[str, Any]]]:
    """Each target's rounds: those its seeker took, and those fired at one of its tracks that took nothing."""
    owner = track_targets(run)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in _rounds(run.summary):
        name = r.get("acquired") if isinstance(r.get("acquired"), str) else owner.get(_int(r.get("track_id")))
        if name:
            out.setdefault(name, []).append(r)
    for rounds in out.values():
        rounds.sort(key=lambda r: _n(r.get("launch_s")) or 0.0)
    return out


@dataclass
class Headline:
    hostiles: int = 0
    killed: int = 0
    leaked: int = 0
    survived: int = 0
    not_launched: int = 0
    protected_taken: int = 0  # rounds whose seeker took a friendly or neutral
    protected_killed: int = 0
    nfz_detonations: int = 0
    rounds: int = 0
    by_result: dict[str, int] | None = None


def headline(s: dict[str, Any]) -> Headline:
    h = Headline()
    for e in _engagements(s):
        if e.get("allegiance") != "hostile":
            continue
        result = e.get("result")
        if result == "not_launched":
            h.not_launched += 1
            continue
        h.hostiles += 1
        h.killed += result == "killed"
        h.leaked += result == "leaked"
        h.survived += result == "survived"
    plant = _d(s.get("plant"))
    acquired, killed = _d(plant.get("acquired")), _d(plant.get("killed"))
    if acquired:
        h.protected_taken = _int(acquired.get("friendly")) + _int(acquired.get("neutral"))
        h.protected_killed = _int(killed.get("friendly")) + _int(killed.get("neutral"))
    else:  # a summary from before the plant counted allegiances
        h.protected_taken = _int(s.get("friendly_engagements"))
        h.protected_killed = sum(1 for e in _engagements(s) if e.get("allegiance") in ("friendly", "neutral")
                                 and e.get("result") == "killed")
    h.nfz_detonations = _int(plant.get("nfz_detonations"))
    h.rounds = _int(plant.get("rounds_launched", s.get("launches")))
    by = _d(plant.get("by_result"))
    h.by_result = {k: _int(v) for k, v in by.items()} if by else None
    return h


# ---- plots ----------------------------------------------------------------------------------------------


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _groups(table: Table, key: str) -> dict[str, np.ndarray]:
    keys = np.array(table.get(key, []))
    return {k: np.nonzero(keys == k)[0] for k in dict.fromkeys(keys.tolist())}


@dataclass
class _Label:
    x: float  # km
    y: float
    text: str
    colour: str
    size: float = 8.0
    weight: str = "normal"
    name_only: bool = False  # a target's name or a track's number: left off beyond MAP_NAMES (sites, leaks never)


MAP_NAMES = 150  # target names and track numbers on the map at most: more hide it (a long bench flies hundreds)


# where a label may go around its point: offset (points), alignment; nearer first, then farther with a leader
_SPOTS = [(dx * k, dy * k, ha, va) for k in (1.0, 2.6, 4.5, 6.5) for dx, dy, ha, va in (
    (5, 5, "left", "bottom"), (5, -5, "left", "top"), (-5, 5, "right", "bottom"), (-5, -5, "right", "top"),
    (0, 8, "center", "bottom"), (0, -8, "center", "top"), (8, 0, "left", "center"), (-8, 0, "right", "center"))]


def _place_labels(ax: Any, labels: list[_Label], obstacles: list[Any]) -> int:
    """Annotate each label at the first spot around its point that overlaps no label or marker already placed;
    names (name_only) only up to MAP_NAMES of them. Returns how many names were left off.

    Text extents are measured with the Agg renderer, so the check is in the pixels the page shows; the axes
    layout must be final before this runs (it is: fixed margins, equal aspect applied). The overlaps with what
    is placed are summed in one numpy pass per spot: a long run's map has a thousand markers.
    """
    renderer = FigureCanvasAgg(ax.figure).get_renderer()
    frame = ax.get_window_extent(renderer)
    placed = np.array([[b.x0, b.y0, b.x1, b.y1] for b in obstacles], np.float64).reshape(-1, 4)
    names = left_off = 0
    for lab in labels:
        if lab.name_only:
            if names >= MAP_NAMES:
                left_off += 1
                continue
            names += 1
        best: tuple[float, Any] | None = None
        for dx, dy, ha, va in _SPOTS:
            far = abs(dx) > 10 or abs(dy) > 10
            text = ax.annotate(lab.text, (lab.x, lab.y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                               fontsize=lab.size, color=lab.colour, fontweight=lab.weight, zorder=6,
                               bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7},
                               arrowprops={"arrowstyle": "-", "color": lab.colour, "lw": 0.5} if far else None)
            box = text.get_window_extent(renderer).padded(1.0)  # a pixel of air between labels
            overlap = _overlaps(box, placed)
            outside = box.width * box.height - _overlap(box, frame)
            cost = overlap + 4 * outside
            if cost == 0:
                if best is not None:
                    best[1].remove()
                best = (0.0, text)
                break
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text)
            else:
                text.remove()
        if best is not None:
            b = best[1].get_window_extent(renderer)
            placed = np.vstack([placed, [b.x0, b.y0, b.x1, b.y1]])
    return left_off


def _overlaps(a: Any, boxes: np.ndarray) -> float:
    """The summed overlap of box a with each of boxes ([k, 4]: x0, y0, x1, y1), as _overlap gives each."""
    w = np.minimum(a.x1, boxes[:, 2]) - np.maximum(a.x0, boxes[:, 0])
    h = np.minimum(a.y1, boxes[:, 3]) - np.maximum(a.y0, boxes[:, 1])
    return float(np.sum(np.where((w > 0) & (h > 0), w * h, 0.0)))


def _overlap(a: Any, b: Any) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def plot_map(run: RunFolder) -> Figure:
    """Plan view: assets, no-fire zones, sites, truth (thick, by allegiance), tracks (thin dashed), fly-outs."""
    fig = Figure(figsize=(13.0, 8.6))
    fig.subplots_adjust(left=0.06, right=0.74, bottom=0.07, top=0.97)
    ax = fig.add_subplot()
    sc = run.scenario
    allegiance = {t.name: t.allegiance for t in sc.targets} if sc else {}
    for e in _engagements(run.summary):
        if isinstance(e.get("target"), str) and isinstance(e.get("allegiance"), str):
            allegiance.setdefault(e["target"], e["allegiance"])
    results = {e.get("target"): e.get("result") for e in _engagements(run.summary)}
    labels: list[_Label] = []
    markers: list[tuple[float, float]] = []  # every site and detonation marker: labels keep off them
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []

    if sc:
        for zone in sc.no_fire_zones:
            cx, cy = zone.centre[0] / 1e3, zone.centre[1] / 1e3
            ax.add_patch(Circle((cx, cy), zone.radius_m / 1e3, fc="#d62728", alpha=0.08, ec="none", zorder=1))
            ax.add_patch(Circle((cx, cy), zone.radius_m / 1e3, fill=False, ec="#d62728", hatch="///", lw=1.0,
                                alpha=0.6, zorder=1))
            labels.append(_Label(cx, cy, f"no-fire zone {zone.name}", "#a31515", 8, "bold"))
            xs.append(np.array([cx - zone.radius_m / 1e3, cx + zone.radius_m / 1e3]))
            ys.append(np.array([cy - zone.radius_m / 1e3, cy + zone.radius_m / 1e3]))
        for asset in sc.assets:
            ax_, ay = asset.position[0] / 1e3, asset.position[1] / 1e3
            ax.add_patch(Circle((ax_, ay), asset.radius_m / 1e3, fc="#2ca02c", alpha=0.35, ec="#1b6e1b", zorder=2))
            ax.plot(ax_, ay, "s", color="#1b6e1b", ms=5, zorder=3)
            labels.append(_Label(ax_, ay, asset.name, "#1b6e1b", 9, "bold"))
            markers.append((ax_, ay))
            xs.append(np.array([ax_]))
            ys.append(np.array([ay]))
    if run.truth:
        x, y = _floats(run.truth, "x_m") / 1e3, _floats(run.truth, "y_m") / 1e3
        for name, idx in _groups(run.truth, "target").items():
            colour = ALLEGIANCE_COLOURS.get(allegiance.get(name, "unknown"), "#7f7f7f")
            ax.plot(x[idx], y[idx], "-", color=colour, lw=3.2, alpha=0.4, solid_capstyle="round", zorder=3)
            ax.plot(x[idx[0]], y[idx[0]], "o", color=colour, ms=4, alpha=0.8, zorder=3)
            labels.append(_Label(x[idx[0]], y[idx[0]], name, colour, 8.5, "bold", name_only=True))
            if results.get(name) == "leaked":
                ax.plot(x[idx[-1]], y[idx[-1]], "v", color="#8b0000", ms=13, mec="black", zorder=7)
                labels.append(_Label(x[idx[-1]], y[idx[-1]], f"{name} leaked", "#8b0000", 8, "bold"))
                markers.append((x[idx[-1]], y[idx[-1]]))
        xs.append(x)
        ys.append(y)
    track_xy: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    if run.tracks:
        x, y, t = _floats(run.tracks, "x_m") / 1e3, _floats(run.tracks, "y_m") / 1e3, _floats(run.tracks, "time_s")
        for trk, idx in _groups(run.tracks, "track").items():
            ax.plot(x[idx], y[idx], color="#222222", lw=0.9, ls=(0, (4, 2)), alpha=0.9, zorder=4)
            labels.append(_Label(x[idx[-1]], y[idx[-1]], f"#{trk}", "#222222", 7.5, name_only=True))
            if trk.isdigit():
                track_xy[int(trk)] = (t[idx], x[idx], y[idx])
        xs.append(x)
        ys.append(y)
    sites = {s.name: (s.position[0] / 1e3, s.position[1] / 1e3) for s in sc.launchers} if sc else {}
    for r in _rounds(run.summary):
        result = str(r.get("result"))
        marker, colour, size, _ = ROUND_STYLE.get(result, ROUND_STYLE["flying"])
        aim, det = _l(r.get("aim_enu")), _l(r.get("detonation_enu"))
        path = [sites[r["launcher"]]] if r.get("launcher") in sites else []
        path += [(aim[0] / 1e3, aim[1] / 1e3)] if len(aim) >= 2 else []
        path += [(det[0] / 1e3, det[1] / 1e3)] if len(det) >= 2 else []
        if len(path) >= 2:
            px, py = zip(*path, strict=True)
            ax.plot(px, py, color=colour, lw=1.1, alpha=0.75, ls="-" if result != "self_destruct" else ":",
                    zorder=5)
        if path:
            end = path[-1]
            ax.plot(*end, marker, color=colour, ms=size, mec="black", mew=0.6, zorder=7,
                    mfc="none" if result in ("self_destruct", "flying") else colour)
            if r.get("no_fire_zone"):
                ax.plot(*end, "o", ms=22, mfc="none", mec="#d62728", mew=2.0, zorder=7)
                labels.append(_Label(*end, f"in no-fire zone {r['no_fire_zone']}", "#d62728", 8, "bold"))
            markers.append(end)
            xs.append(np.array([p[0] for p in path]))
            ys.append(np.array([p[1] for p in path]))
        fired_at = track_xy.get(_int(r.get("track_id")))
        launch = _n(r.get("launch_s"))
        if fired_at is not None and launch is not None and len(fired_at[0]):
            k = int(np.clip(np.searchsorted(fired_at[0], launch), 0, len(fired_at[0]) - 1))
            lx, ly = float(fired_at[1][k]), float(fired_at[2][k])
            ax.plot(lx, ly, "o", color="#ff7f0e", ms=7, mec="black", mew=0.6, zorder=6)
            markers.append((lx, ly))
    if sc:
        for site in sc.launchers:
            px, py = sites[site.name]
            ax.plot(px, py, "^", color="#ff7f0e", ms=13, mec="black", zorder=8)
            ax.add_patch(Circle((px, py), site.max_range_m / 1e3, fill=False, ls="--", ec="#ff7f0e", lw=0.8,
                                alpha=0.7, zorder=1))
            labels.append(_Label(px, py, site.name, "#b35900", 9, "bold"))
            markers.append((px, py))
            xs.append(np.array([px]))
            ys.append(np.array([py]))
    for sensor in run.sensors:
        site = sensor.get("site_enu_m")
        if isinstance(site, list) and len(site) >= 2 and all(isinstance(c, int | float) for c in site[:2]):
            sx, sy = site[0] / 1e3, site[1] / 1e3
            ax.plot(sx, sy, "D", color="#9467bd", ms=10, mec="black", zorder=8)
            labels.append(_Label(sx, sy, str(sensor.get("name", "radar")), "#6a3d9a", 9, "bold"))
            markers.append((sx, sy))
            xs.append(np.array([sx]))
            ys.append(np.array([sy]))

    allx = np.concatenate(xs) if xs else np.zeros(1)
    ally = np.concatenate(ys) if ys else np.zeros(1)
    allx, ally = allx[np.isfinite(allx)], ally[np.isfinite(ally)]
    if not len(allx) or not len(ally):
        allx = ally = np.zeros(1)
    pad = 0.05 * max(float(np.ptp(allx)), float(np.ptp(ally)), 1.0)
    x0, x1 = float(allx.min()) - pad, float(allx.max()) + pad
    y0, y1 = float(ally.min()) - pad, float(ally.max()) + pad
    # widen the shorter side so one km is as long east as north in the axes box the layout fixed above
    box = ax.get_position()
    ratio = (box.height * fig.get_figheight()) / (box.width * fig.get_figwidth())
    if (y1 - y0) < ratio * (x1 - x0):
        grow = (ratio * (x1 - x0) - (y1 - y0)) / 2
        y0, y1 = y0 - grow, y1 + grow
    else:
        grow = ((y1 - y0) / ratio - (x1 - x0)) / 2
        x0, x1 = x0 - grow, x1 + grow
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("east (km)")
    ax.set_ylabel("north (km)")
    ax.grid(alpha=0.25)
    handles = [
        Line2D([], [], color=ALLEGIANCE_COLOURS["hostile"], lw=3.2, alpha=0.45, label="truth, hostile (name)"),
        Line2D([], [], color=ALLEGIANCE_COLOURS["friendly"], lw=3.2, alpha=0.45, label="truth, friendly"),
        Line2D([], [], color=ALLEGIANCE_COLOURS["neutral"], lw=3.2, alpha=0.45, label="truth, neutral"),
        Line2D([], [], color="#222222", lw=0.9, ls=(0, (4, 2)), label="confirmed track (#number)"),
        Line2D([], [], color="#ff7f0e", marker="o", ls="", mec="black", ms=7, label="launch (track when fired)"),
        Line2D([], [], color="#888888", lw=1.1, label="fly-out: launcher → aim → end"),
        *(Line2D([], [], color=c, marker=m, ls="", ms=min(s, 13), mec="black", mew=0.6,
                 mfc="none" if k in ("self_destruct", "flying") else c, label=lab)
          for k, (m, c, s, lab) in ROUND_STYLE.items()),
        Line2D([], [], color="#8b0000", marker="v", ls="", ms=10, mec="black", label="leak (reached its asset)"),
        Line2D([], [], color="#ff7f0e", marker="^", ls="--", lw=0.8, mec="black", ms=10,
               label="launcher, max range"),
        Line2D([], [], color="#9467bd", marker="D", ls="", mec="black", ms=8, label="radar"),
        Patch(fc="#2ca02c", alpha=0.35, ec="#1b6e1b", label="defended asset"),
        Patch(fc="#fbe5e5", ec="#d62728", hatch="///", label="no-fire zone"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    ax.apply_aspect()
    pix = ax.transData.transform(np.array(markers)) if markers else np.zeros((0, 2))
    obstacles = [Bbox.from_extents(px - 6, py - 6, px + 6, py + 6) for px, py in pix]
    left_off = _place_labels(ax, labels, obstacles)
    if left_off:
        ax.text(0.01, 0.01, f"{left_off:,} more target names and track numbers left off: too many to read",
                transform=ax.transAxes, fontsize=8, color="#555555", va="bottom")
    return fig


def plot_gospa(run: RunFolder) -> Figure:
    assert run.gospa is not None
    g = run.gospa
    t = _floats(g, "time_s")
    fig = Figure(figsize=(13.0, 4.2))
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    parts = [_floats(g, c) for c in ("localisation_m", "missed_m", "false_m")]
    ax.stackplot(t, *parts, labels=["localisation", "missed targets", "false tracks"], alpha=0.6,
                 colors=["#1f77b4", "#d62728", "#ff7f0e"])
    ax.plot(t, _floats(g, "gospa_m"), color="black", lw=1.2, label="GOSPA")
    params = _d(run.summary.get("gospa"))
    extra = f" (c = {params.get('c_m', '?')} m, p = {params.get('p', '?')}, α = {params.get('alpha', '?')})"
    ax.set_title("GOSPA and its parts" + (extra if params else ""), fontsize=10)
    ax.set_xlabel("run time (s)")
    ax.set_ylabel("GOSPA (m)")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    ax2.step(t, _floats(g, "n_truth"), where="post", label="targets in truth", color="#2ca02c")
    ax2.step(t, _floats(g, "n_tracks"), where="post", label="confirmed tracks", color="black")
    ax2.set_title("targets and tracks", fontsize=10)
    ax2.set_xlabel("run time (s)")
    ax2.set_ylabel("count")
    ax2.legend(loc="upper right", fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _tail(hist: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Distinct recorded values (µs) and the fraction of samples at or above each (1 - CDF just below it)."""
    # the counts array read at once: hdrh's recorded-value iterator costs a Python step per bucket
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len].astype(np.float64)
    index = np.nonzero(counts)[0]
    v = np.array([hist.get_highest_equivalent_value(hist.get_value_from_index(int(i))) for i in index],
                 dtype=np.float64) / 1e3
    c = counts[index]
    n = int(c.sum())
    if not n:
        return v, c, 0
    at_or_above = (n - np.concatenate(([0.0], np.cumsum(c)[:-1]))) / n
    return v, at_or_above, n


def _stage_unit(us: float) -> tuple[str, float]:
    return ("ms", 1e3) if us >= 1000.0 else ("µs", 1.0)


VIRTUAL_STAGES = ("host_total", "sensor_to_shooter")  # their t-points are virtual in virtual time


def plot_latency(run: RunFolder) -> Figure:
    """Each stage's tail, fraction of samples at or above x (1 - CDF), log-log, the machine floor beside it."""
    stages = [s for s in STAGES if s in run.latency]
    stages += [s for s in run.latency if s not in STAGES and s != "floor" and "." not in s]
    virtual = run.summary.get("time_mode") == "virtual"
    floor = run.latency.get("floor")
    floor_tail = _tail(floor) if floor is not None else None
    cols = 3
    rows = max(1, math.ceil(len(stages) / cols))
    fig = Figure(figsize=(13.0, 3.7 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, stage in zip(axes, stages, strict=False):
        ax.set_title(STAGE_TITLES.get(stage, stage), fontsize=10)
        hist = run.latency[stage]
        v, frac, n = _tail(hist)
        if virtual and stage in VIRTUAL_STAGES:
            ax.text(0.5, 0.5, "virtual time: these t-points are\nsimulated, not wall-clock", ha="center",
                    va="center", transform=ax.transAxes, fontsize=9, color="#555")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        keep = v > 0  # a log axis has no place for a zero
        if not n or not keep.any():
            ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        unit, scale = _stage_unit(hist.get_value_at_percentile(50.0) / 1e3)
        ax.step(v[keep] / scale, frac[keep], where="post", color="#1f77b4", lw=1.6)
        lowest = 1.0 / n
        if floor_tail is not None and floor_tail[2]:
            fv, ff, fn = floor_tail
            fk = fv > 0
            ax.step(fv[fk] / scale, ff[fk], where="post", color="black", ls="--", lw=1.0)
            lowest = min(lowest, 1.0 / fn)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(lowest * 0.5, 1.6)
        ticks = [t for t in (1.0, 0.5, 0.1, 0.01, 1e-3, 1e-4, 1e-5) if t >= lowest * 0.5]
        ax.set_yticks(ticks, [{1.0: "all", 0.5: "p50", 0.1: "p90", 0.01: "p99", 1e-3: "p99.9", 1e-4: "p99.99",
                               1e-5: "p99.999"}[t] for t in ticks], fontsize=8)
        ax.minorticks_off()
        ax.grid(alpha=0.3, which="major")
        ax.set_xlabel(unit)
        lines = [f"n = {n:,}"]
        for key, p in PERCENTILES:
            if n < samples_needed(p):
                lines.append(f"{PERCENTILE_LABEL[key]}: not enough samples (n < {samples_needed(p):,})")
                break
            lines.append(f"{PERCENTILE_LABEL[key]} {duration_text(hist.get_value_at_percentile(p) / 1e3)}")
        lines.append(f"max {duration_text(hist.get_max_value() / 1e3)}")
        # lower left: a tail curve never goes there (small values are never rare), so the box hides nothing
        ax.text(0.02, 0.03, "\n".join(lines), transform=ax.transAxes, ha="left", va="bottom", fontsize=8,
                bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "#bbb", "alpha": 0.9})
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    for ax in axes[len(stages):]:
        ax.set_visible(False)
    axes[0].set_ylabel("fraction of samples ≥ x")
    handles = [Line2D([], [], color="#1f77b4", lw=1.6, label="the stage")]
    if floor_tail is not None and floor_tail[2]:
        handles.append(Line2D([], [], color="black", ls="--", lw=1.0,
                              label=f"machine floor: this machine's scheduling latency, n = {floor_tail[2]:,}"))
    fig.legend(handles=handles, loc="upper center", ncols=2, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    return fig


def plot_timeline(run: RunFolder) -> Figure:
    assert run.events is not None
    ev = run.events
    t = _floats(ev, "time_s")
    names, tracks, targets = ev.get("event", []), ev.get("track", []), ev.get("target", [])
    # events that name only a track (confirmation, assignment) belong to the target other events tie it to
    track_target = {trk: tgt for trk, tgt in zip(tracks, targets, strict=True) if tgt and trk not in ("", "-1")}
    lane_of = []
    for trk, tgt in zip(tracks, targets, strict=True):
        if tgt:
            lane_of.append(tgt)
        elif trk in track_target:
            lane_of.append(track_target[trk])
        elif trk not in ("", "-1"):
            lane_of.append(f"track {trk}")
        else:
            lane_of.append("(no target)")
    # lanes top to bottom in order of each one's first event
    order = list(dict.fromkeys(lane_of[k] for k in np.argsort(t, kind="stable").tolist()))
    y_of = {name: k for k, name in enumerate(order)}
    fig = Figure(figsize=(13.0, max(2.6, 0.32 * len(order) + 1.4)))
    ax = fig.add_subplot()
    for event_names, marker, colour, label in TIMELINE:
        idx = [k for k, e in enumerate(names) if e in event_names]
        if idx:
            ax.scatter(t[idx], [y_of[lane_of[k]] for k in idx], marker=marker, color=colour, s=45, label=label,
                       zorder=3)
    ax.set_yticks(range(len(order)), order, fontsize=8)
    ax.set_ylim(-0.7, len(order) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel("run time (s)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


# ---- HTML -----------------------------------------------------------------------------------------------


def _esc(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return html.escape(f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}")
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


class Raw(str):
    """HTML made here, put in a table cell as it is."""


def _cell(value: Any) -> str:
    return value if isinstance(value, Raw) else _esc(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "", ident: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    id_attr = f' id="{ident}"' if ident else ""
    return f'<table class="{cls}"{id_attr}>{thead}<tbody>{body}</tbody></table>'


def _badge(text: str, tone: str) -> Raw:
    return Raw(f'<span class="badge {tone}">{html.escape(text)}</span>')


def _bad_count(value: Any) -> Raw:
    """A counter of something that should not happen: plain when 0, red otherwise."""
    v = _n(value)
    if v is None:
        return Raw("–")
    return Raw(f'<span class="{"bad" if v else "zero"}">{v:,.0f}</span>')


def _img(fig: Figure, alt: str, ident: str) -> str:
    return f'<img class="plot" id="{ident}-img" alt="{html.escape(alt)}" src="data:image/png;base64,{_png(fig)}">'


def _section(ident: str, title: str, body: str, cls: str = "") -> str:
    return f'<section id="{ident}" class="{cls}"><h2>{html.escape(title)}</h2>{body}</section>'


def _last_time(run: RunFolder) -> float | None:
    ends = []
    for table in (run.gospa, run.truth, run.events):
        times = _floats(table, "time_s") if table else np.zeros(0)
        times = times[np.isfinite(times)]
        if len(times):
            ends.append(float(times.max()))
    return max(ends) if ends else None


def _ending(s: dict[str, Any], run: RunFolder) -> str:
    """How the run ended, when it did not end as planned: a signal, or no end at all (the journal)."""
    last = _last_time(run)
    planned = _n(s.get("duration_s"))
    span = (f" The records reach {last:,.1f} s" + (f" of the {planned:,.0f} s planned." if planned else ".")
            if last is not None else "")
    if s.get("interrupted"):
        how = f" by {s['signal']}" if isinstance(s.get("signal"), str) else ""
        return (f'<p class="banner warn" id="interrupted">This run was interrupted{html.escape(how)} before its '
                f"planned end: every figure covers only the part of the run before it.{html.escape(span)}</p>")
    if s.get("complete") is False:
        return ('<p class="banner warn" id="incomplete">This run did not finish (killed?): summary.json is the '
                "journal it kept while running, and the figures below cover the run up to its last journal and "
                f"the records written before it stopped.{html.escape(span)}</p>")
    return ""


def _verdict_block(verdict: Any, rig_failed: bool = False, judged_elsewhere: bool = False) -> str:
    """The run's verdict (criteria with measured value and limit), whatever shape of it summary.json holds. As the
    terminal says it (hil.measure.verdict.verdict_lines): no verdict stands over a failed rig, and a host whose plant
    runs elsewhere judged nothing when none of its criteria could be."""
    v = verdict if isinstance(verdict, dict) else {"result": verdict}
    word = next((v[k] for k in ("result", "status", "verdict", "outcome") if isinstance(v.get(k), str)), None)
    if word is None and isinstance(v.get("passed"), bool):
        word = "pass" if v["passed"] else "fail"
    word = str(word or "unknown")
    tone = {"pass": "good", "passed": "good", "fail": "bad", "failed": "bad"}.get(word.lower(), "warn")
    if judged_elsewhere and isinstance(v.get("criteria"), list) and judged_nothing(v):
        word, tone = "nothing judged here: the plant (hil plant) scores this run", "warn"
    if rig_failed:
        word, tone = f"none: the rig failed (rig problems below), this run judges nothing; as measured: {word}", "bad"
    criteria = v.get("criteria")
    items = (list(criteria.values()) if isinstance(criteria, dict) else _l(criteria))
    if isinstance(criteria, dict):
        items = [{"name": k, **(c if isinstance(c, dict) else {"result": c})} for k, c in criteria.items()]
    rows = []
    for c in items:
        if not isinstance(c, dict):
            continue
        res = str(next((c[k] for k in ("result", "status", "verdict") if k in c), ""))
        ctone = {"pass": "good", "passed": "good", "fail": "bad", "failed": "bad"}.get(res.lower(), "warn")
        unit = f" {c['unit']}" if isinstance(c.get("unit"), str) else ""
        measured, limit = c.get("measured", c.get("value")), c.get("limit")
        op = {"<=": "≤ ", ">=": "≥ "}.get(str(c.get("op", "")), "")
        rows.append([c.get("name", c.get("criterion")), _esc(measured) + unit if measured is not None else None,
                     (op + _esc(limit) + unit) if limit is not None else None, _badge(res or "?", ctone),
                     c.get("note", c.get("reason", c.get("detail")))])
    table = _table(["criterion", "measured", "limit", "result", "note"], rows, "verdict") if rows else ""
    head, _, rest = word.partition(": ")  # the verdict's word in capitals, what follows it as written
    text = head.upper() + (f": {rest}" if rest else "")
    return (f'<div id="verdict" class="status {tone}"><span class="big">Verdict: {html.escape(text)}</span>'
            f"</div>{table}")


def _status_block(s: dict[str, Any], h: Headline) -> str:
    """Without a verdict: the rig's health and the safety headline, the two things a run must never get wrong."""
    problems = [str(p) for p in _l(s.get("rig_problems"))]
    rig_ok = s.get("rig_ok")
    if rig_ok is False or problems:
        rig = f"Rig problems: {'; '.join(problems) or 'see links and launchers below'}"
        rig_tone = "bad"
    elif rig_ok is True:
        rig, rig_tone = "Rig healthy", "good"
    else:
        rig, rig_tone = "Rig health not recorded", "warn"
    unsafe = []
    if h.protected_taken:
        unsafe.append(f"{h.protected_taken} round(s) took a friendly or neutral")
    if h.protected_killed:
        unsafe.append(f"{h.protected_killed} friendly or neutral killed")
    if h.nfz_detonations:
        unsafe.append(f"{h.nfz_detonations} detonation(s) inside a no-fire zone")
    safety = ("UNSAFE: " + ", ".join(unsafe)) if unsafe else \
        "Safe: no friendly or neutral taken or killed, no detonation in a no-fire zone"
    tone = "bad" if unsafe or rig_tone == "bad" else rig_tone
    return (f'<div id="status" class="status {tone}"><span class="big">{html.escape(safety)}</span>'
            f'<span class="{rig_tone}">{html.escape(rig)}</span></div>')


def _tile(value: str, label: str, sub: str = "", tone: str = "") -> str:
    size = " long" if len(value) > 8 else ""
    return (f'<div class="tile t-{tone}"><div class="v{size}">{html.escape(value)}</div>'
            f'<div class="k">{html.escape(label)}</div><div class="s">{html.escape(sub)}</div></div>')


def _headline_tiles(s: dict[str, Any], h: Headline) -> str:
    tiles = []
    outcome = [f"{h.survived} survived"] if h.survived else []
    outcome += [f"{h.not_launched} never appeared"] if h.not_launched else []
    tiles.append(_tile(f"{h.killed} / {h.hostiles}", "hostiles killed", ", ".join(outcome) or "all stopped",
                       "good" if h.hostiles and h.killed == h.hostiles else "warn" if h.hostiles else ""))
    tiles.append(_tile(str(h.leaked), "leaked (reached an asset)", "", "bad" if h.leaked else "good"))
    tiles.append(_tile(f"{h.protected_taken} / {h.protected_killed}", "friendly + neutral engaged / killed",
                       "rounds whose seeker took one / killed", "bad" if h.protected_taken else "good"))
    by = h.by_result or {}
    parts = [f"{by[k]} {ROUND_WORDS[k]}" for k in ("killed", "missed", "self_destruct", "flying") if by.get(k)]
    tiles.append(_tile(str(h.rounds), "rounds launched", ", ".join(parts)))
    host = _d(_d(s.get("latency_us")).get("host_total"))
    n = _int(host.get("count"))
    if s.get("time_mode") == "virtual":
        tiles.append(_tile("n/a", "host latency p99", "virtual time: no wall-clock latency"))
    elif n >= samples_needed(99.0):
        tiles.append(_tile(duration_text(_n(host.get("p99"))), "host latency p99 (t1→t4)", f"n = {n:,}"))
    else:
        tiles.append(_tile("too few", "host latency p99 (t1→t4)",
                           f"n = {n:,}: a p99 needs {samples_needed(99.0):,}; max {duration_text(_n(host.get('max')))}",
                           "warn"))
    misses = _d(s.get("deadline_misses"))
    if s.get("time_mode") == "real" and misses:
        tiles.append(_tile(f"{_int(misses.get('overruns')):,}", "loop overruns",
                           f"of {_int(misses.get('iterations')):,} iterations: {_int(misses.get('os')):,} OS, "
                           f"{_int(misses.get('compute')):,} compute"))
    problems = _l(s.get("rig_problems"))
    rig_ok = s.get("rig_ok")
    tiles.append(_tile("healthy" if rig_ok is True and not problems else "problems" if rig_ok is False or problems
                       else "?", "rig", f"{len(problems)} problem(s)" if problems else "", "good" if rig_ok is True
                       and not problems else "bad" if rig_ok is False or problems else "warn"))
    if s.get("interrupted"):
        tiles.append(_tile("interrupted", "run", str(s.get("signal") or ""), "warn"))
    elif s.get("complete") is False:
        tiles.append(_tile("unfinished", "run", "killed? journal only", "warn"))
    return f'<div class="tiles" id="headline">{"".join(tiles)}</div>'


def _targets_section(run: RunFolder) -> str:
    s = run.summary
    engagements = sorted(_engagements(s), key=lambda e: ALLEGIANCE_ORDER.get(str(e.get("allegiance")), 3))
    if not engagements:
        return _section("targets", "Targets", "<p>No engagements in summary.json.</p>")
    rounds = rounds_by_target(run)
    rows = []
    for e in engagements:
        name = str(e.get("target"))
        allegiance = str(e.get("allegiance", "?"))
        result = str(e.get("result", "?"))
        good = ("killed",) if allegiance == "hostile" else ("survived", "not_launched")
        tone = "good" if result in good else "bad" if result in ("leaked", "killed") else "warn"
        mine = rounds.get(name, [])
        per_round = ", ".join(f"{ROUND_WORDS.get(str(r.get('result')), r.get('result'))}" for r in mine)
        shots = _int(e.get("shots"))
        rounds_cell = f"{shots} ({per_round})" if shots and per_round else str(shots)
        misses = [_metres(r.get("miss_distance_m")) for r in mine if _n(r.get("miss_distance_m")) is not None]
        launchers = sorted({str(r.get("launcher")) for r in mine if r.get("launcher")}) or (
            [str(e["launcher"])] if e.get("launcher") else [])
        tracks = " ".join(f"#{t}" for t in _l(e.get("tracks")))
        reasons = Raw(" ".join(f'<span class="reason" title="{html.escape(REASON_TEXT.get(str(r), ""))}">'
                               f"{html.escape(str(r))}</span>" for r in _l(e.get("refusal_reasons"))) or "–")
        rows.append([Raw(f"<b>{html.escape(name)}</b>"), e.get("kind"),
                     _badge(allegiance, {"hostile": "hostile", "friendly": "friendly"}.get(allegiance, "neutral")),
                     tracks or "–", _seconds(e.get("first_launch_s")) if e.get("first_launch_s") is not None else
                     None, ", ".join(launchers) or None, rounds_cell, _badge(result, tone), ", ".join(misses) or None,
                     reasons])
    table = _table(["target", "kind", "allegiance", "tracks", "first launch", "launcher", "rounds (results)",
                    "result", "miss distance", "not fired on because"], rows, "targets")
    words = "".join(f"<dt>{html.escape(w)}</dt><dd>{html.escape(d)}</dd>" for w, d in OUTCOME_WORDS)
    round_words = "".join(f"<dt>{html.escape(w)}</dt><dd>{html.escape(d)}</dd>" for w, d in ROUND_DEFINITIONS)
    defs = (f'<div id="outcome-words" class="defs"><div><h3>Result of a target</h3><dl>{words}</dl></div>'
            f"<div><h3>Result of a round</h3><dl>{round_words}</dl></div></div>"
            '<p class="small">tracks: the track numbers its rounds were fired at; miss distance: closest approach '
            "of each round its seeker took to it; not fired on because: fire control's refusals of its tracks "
            "(hover a reason, or see Refusals).</p>")
    return _section("targets", "Targets", table + defs)


def _refusals_section(run: RunFolder) -> str:
    refusals = [r for r in _l(run.summary.get("refusals")) if isinstance(r, dict)]
    if not refusals:
        return _section("refusals", "Refusals by target", '<p id="no-refusals">No fire-control refusals.</p>')
    owner = track_targets(run)
    allegiance = {e.get("target"): e.get("allegiance") for e in _engagements(run.summary)}
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for r in refusals:
        trk = r.get("track")
        target = owner.get(trk, f"track #{trk} (no target)") if isinstance(trk, int) else "(no track)"
        reason = str(r.get("reason"))
        g = groups.setdefault(target, {}).setdefault(reason, {"count": 0, "tracks": set(), "launchers": set(),
                                                              "first": math.inf, "protected": set()})
        g["count"] += max(1, _int(r.get("count")))
        if isinstance(trk, int):
            g["tracks"].add(trk)
        if r.get("launcher"):
            g["launchers"].add(str(r["launcher"]))
        g["first"] = min(g["first"], _n(r.get("time_s")) or math.inf)
        if isinstance(r.get("protected_track"), int):
            g["protected"].add(r["protected_track"])
    rows = []
    order = sorted(groups, key=lambda t: (ALLEGIANCE_ORDER.get(str(allegiance.get(t)), 3), t))
    for target in order:
        reasons = sorted(groups[target].items(), key=lambda kv: (kv[0] not in SAFETY_REASONS, -kv[1]["count"]))
        cells = []
        for reason, g in reasons:
            extra = []
            if g["launchers"]:
                extra.append(", ".join(sorted(g["launchers"])))
            if g["protected"]:
                extra.append("protecting " + ", ".join(
                    f"#{p}" + (f" {owner[p]}" if p in owner else "") for p in sorted(g["protected"])))
            first = f" from {g['first']:,.1f} s" if math.isfinite(g["first"]) else ""
            cls = "reason safety" if reason in SAFETY_REASONS else "reason"
            cells.append(f'<div><span class="{cls}" title="{html.escape(REASON_TEXT.get(reason, ""))}">'
                         f"{html.escape(reason)}</span> × {g['count']:,}{html.escape(first)}"
                         + (f' <span class="small">({html.escape("; ".join(extra))})</span>' if extra else "")
                         + "</div>")
        tracks = sorted(set().union(*(g["tracks"] for g in groups[target].values())))
        al = str(allegiance.get(target, "?"))
        rows.append([Raw(f"<b>{html.escape(target)}</b>"),
                     _badge(al, {"hostile": "hostile", "friendly": "friendly"}.get(al, "neutral")),
                     " ".join(f"#{t}" for t in tracks) or "–", Raw("".join(cells))])
    seen = sorted({str(r.get("reason")) for r in refusals})
    defs = "".join(f"<dt>{html.escape(r)}</dt><dd>{html.escape(REASON_TEXT.get(r, ''))}</dd>" for r in seen)
    body = (_table(["target", "allegiance", "tracks", "reason × fire-control evaluations refused, first at "
                    "(launchers; protected track)"], rows, "refusals")
            + f'<dl class="reasons">{defs}</dl>')
    return _section("refusals", "Refusals by target", body)


def _latency_section(run: RunFolder) -> str:
    s = run.summary
    lat = _d(s.get("latency_us"))
    virtual = s.get("time_mode") == "virtual"
    rows = []
    for stage in [*STAGES, *(k for k in lat if k not in STAGES)]:
        st = _d(lat.get(stage))
        if not st:
            continue
        if virtual and stage in VIRTUAL_STAGES:
            rows.append([STAGE_TITLES.get(stage, stage), st.get("count"), "virtual", "–", "–", "–", "–", None])
            continue
        unc = _n(st.get("uncertainty_us"))
        rows.append([STAGE_TITLES.get(stage, stage), st.get("count"),
                     *(percentile_text(st, key) for key, _ in PERCENTILES), duration_text(_n(st.get("max"))),
                     f"± {duration_text(unc)}" if unc is not None else None])
    floor = _d(s.get("floor_us"))
    hist = run.latency.get("floor")
    if not floor and hist is not None and hist.get_total_count():  # a summary without floor_us: its histogram
        floor = {"count": hist.get_total_count(), "max": hist.get_max_value() / 1e3,
                 **{key: hist.get_value_at_percentile(p) / 1e3 for key, p in PERCENTILES}}
    if floor:
        rows.append(["machine floor (scheduling)", floor.get("count"),
                     *(percentile_text(floor, key) for key, _ in PERCENTILES), duration_text(_n(floor.get("max"))),
                     None])
    parts = []
    if run.latency:
        parts.append(_img(plot_latency(run), "latency tail per stage, log-log, with the machine floor", "latency"))
    else:
        parts.append("<p>No latency.json: no tail plots.</p>")
    if rows:
        parts.append(_table(["stage", "n", "p50", "p90", "p99", "p99.9", "max", "± clock sync"], rows, "num"))
    note = ("A percentile p is shown only from 10 / (1 − p) samples on (20 for a p50, 1,000 for a p99, 10,000 "
            "for a p99.9); below that the cell says how many it needs. The tail plots read the same way: where a "
            "curve crosses the p99 line is the p99.")
    if not floor:
        why = str(s.get("floor_note") or ("virtual time" if virtual else "not measured"))
        note += f" Machine floor: none ({why})."
    parts.append(f'<p class="small">{html.escape(note)}</p>')
    return _section("latency", "Latency: tail per stage beside the machine floor", "".join(parts))


RADAR_BAD = ("seq_gaps", "frames_lost", "bytes_discarded", "link_errors", "board_resets", "clock_resets",
             "sync_rejected", "bad_payloads", "plots_dropped")
LAUNCHER_BAD = ("timeouts", "late_replies", "exceptions", "bad_responses", "lost_events", "reconnects",
                "unconfirmed", "board_restarts", "watchdog_trips_seen", "stale_statuses")


def _links_section(s: dict[str, Any]) -> str:
    links = _d(s.get("links"))
    if not links:
        return _section("links", "Link health", "<p>No link counters in summary.json.</p>")
    rows = []
    for name, c in links.items():
        if not isinstance(c, dict):
            continue
        rejected = _d(c.get("rejected"))
        radar = "frames_ok" in c
        if radar:
            traffic = f"{_int(c.get('frames_ok')):,} frames, {_int(c.get('plots_ok')):,} plots"
            crc = rejected.get("crc")
            other = sum(_int(v) for k, v in rejected.items() if k != "crc") + _int(c.get("bad_payloads"))
            lost = _int(c.get("frames_lost")) + _int(c.get("seq_gaps"))
            rt: str | None = f"clock sync {_int(c.get('sync_responses')):,}/{_int(c.get('sync_requests')):,}"
            healthy = not any(_int(c.get(k)) for k in RADAR_BAD) and not any(_int(v) for v in rejected.values())
            row = [name, "radar", traffic, None, None, _bad_count(crc), _bad_count(other), _bad_count(lost), None,
                   _bad_count(_int(c.get("board_resets")) + _int(c.get("clock_resets"))), rt]
        else:
            rtt = _d(c.get("round_trip_us"))
            n = _int(rtt.get("count"))
            rt = (f"round trip p50 {percentile_text(rtt, 'p50')}, p99 {percentile_text(rtt, 'p99')} (n = {n:,})"
                  if rtt else None)
            healthy = not any(_int(c.get(k)) for k in LAUNCHER_BAD)
            row = [name, "launcher", f"{_int(c.get('requests')):,} requests, {_int(c.get('launches')):,} launches",
                   _bad_count(c.get("timeouts")), _bad_count(c.get("late_replies")), None,
                   _bad_count(_int(c.get("bad_responses")) + _int(c.get("exceptions"))),
                   _bad_count(c.get("lost_events")), _bad_count(c.get("reconnects")),
                   _bad_count(c.get("board_restarts")), rt]
        row.insert(1, _badge("clean" if healthy else "faults seen", "good" if healthy else "bad"))
        rows.append(row)
    body = _table(["link", "health", "kind", "traffic", "timeouts", "late replies", "CRC rejects", "other rejects",
                   "lost (events, frames)", "reconnects", "board resets", "timing"], rows, "num links")
    body += ('<p class="small">Red counts are things a clean link never does. Lost: launch events the host '
             "missed and had to read back, or radar frames missing from the sequence.</p>")
    return _section("links", "Link health", body)


def _launchers_section(s: dict[str, Any]) -> str:
    health = _d(s.get("launcher_health"))
    if not health:
        return _section("launchers", "Launcher health", "<p>No launcher health in summary.json.</p>")
    rows = []
    for name, h in health.items():
        if not isinstance(h, dict):
            continue
        armed_end = h.get("armed_at_end")
        lost = h.get("lost_at_end")
        rows.append([name, _badge("yes" if h.get("armed_once") else "never", "good" if h.get("armed_once") else "bad"),
                     _badge("armed" if armed_end else "SAFE", "good" if armed_end else "warn"),
                     _bad_count(h.get("watchdog_trips")),
                     f"{_int(h.get('rearms')):,}" + (f" ({_int(h.get('rearm_failures')):,} failed)"
                                                     if _int(h.get("rearm_failures")) else ""),
                     _seconds(h.get("safe_s")), _badge("lost" if lost else "no", "bad" if lost else "good")])
    body = _table(["launcher", "armed", "at the end", "watchdog trips", "re-arms", "time SAFE after arming",
                   "link lost at the end"], rows, "num")
    return _section("launchers", "Launcher health", body)


def _faults_section(s: dict[str, Any]) -> str:
    faults = [f for f in _l(s.get("faults")) if isinstance(f, dict)]
    injected = _d(s.get("faults_injected"))
    if not faults and not injected:
        return _section("faults", "Faults injected", '<p id="no-faults">None: every link ran clean.</p>')
    rows = []
    for f in faults:
        start, dur = _n(f.get("start_s")), _n(f.get("duration_s"))
        when = f"from {start:,.1f} s" if start is not None else ""
        when += f" for {dur:,.1f} s" if dur is not None else " to the end" if start is not None else ""
        rows.append([f.get("link"), f.get("kind"), f.get("value"), f.get("direction"), when, f.get("fault")])
    body = _table(["link", "fault", "value", "direction", "when", "as given"], rows) if rows else ""
    counts = []
    for link, dirs in injected.items():
        for direction, c in _d(dirs).items():
            for kind, v in _d(c).items():
                if isinstance(v, dict) and _int(v.get("chunks")):
                    counts.append([link, direction, kind, _int(v.get("chunks")), f"{_int(v.get('bytes')):,} B"])
    if counts:
        body += _table(["link", "direction", "fault", "chunks hit", "bytes"], counts, "num")
    return _section("faults", "Faults injected", body)


def _realtime_section(s: dict[str, Any]) -> str:
    if s.get("time_mode") == "virtual":
        return _section("realtime", "Real-time options", "<p>Virtual time: real-time options do not apply.</p>")
    rows = []
    for item in _l(s.get("realtime")):
        if isinstance(item, list | tuple) and len(item) >= 3:
            rows.append([item[0], _badge("applied" if item[1] else "not applied", "good" if item[1] else "warn"),
                         item[2]])
        elif isinstance(item, dict):
            ok = item.get("applied")
            rows.append([item.get("option", item.get("name")), _badge("applied" if ok else "not applied",
                                                                        "good" if ok else "warn"), item.get("why")])
    body = _table(["option", "", "what happened"], rows) if rows else \
        "<p>None requested (no --fifo, --cpus, --mlock, --freeze-gc or --cpu-latency-us).</p>"
    misses = _d(s.get("deadline_misses"))
    if misses:
        body += (f"<p>Loop overruns: {_int(misses.get('overruns')):,} of {_int(misses.get('iterations')):,} "
                 f"iterations ({_int(misses.get('os')):,} the OS did not run us, {_int(misses.get('compute')):,} "
                 f"our compute); period {duration_text(_n(misses.get('period_us')))}, lateness of overruns p50 "
                 f"{duration_text(_n(misses.get('lateness_p50_us')))}, max "
                 f"{duration_text(_n(misses.get('lateness_max_us')))}.</p>")
    return _section("realtime", "Real-time options", body)


def _run_section(s: dict[str, Any]) -> str:
    fires = _d(s.get("fires_reconciled"))
    rows: list[tuple[str, Any]] = [
        ("scenario", s.get("scenario")), ("seed", s.get("seed")), ("time", s.get("time_mode")), ("rig", s.get("rig")),
        ("duration planned", _seconds(s.get("duration_s"))), ("plots", s.get("plots")),
        ("confirmed tracks", s.get("confirmed_tracks")), ("track numbers used", s.get("tracks")),
        ("GOSPA mean", _metres(s.get("gospa_mean_m"))), ("fire decisions", s.get("decisions")),
        ("decisions deferred (reload)", s.get("decisions_deferred")),
        ("launches, host / board", f"{_count(s.get('launches'))} / {_count(s.get('board_launches'))}"),
        ("fires unconfirmed, reconciled", f"{_count(s.get('fires_unconfirmed'))}, launched "
         f"{_count(fires.get('launched'))}, not launched {_count(fires.get('not_launched'))}"),
        ("rounds at no object", s.get("rounds_at_no_object")),
    ]
    boards = [b for b in _l(s.get("boards")) if isinstance(b, dict)]
    if boards:
        rows.append(("boards", "; ".join(f"{b.get('name')}: {b.get('board')} ({b.get('where')})" for b in boards)))
    machine = _d(s.get("machine"))
    if machine:
        rows.append(("machine", ", ".join(f"{k} {v}" for k, v in machine.items())))
    return _section("run", "Run details", _table(["", ""], rows, "kv"))


CSS = """
body { font-family: system-ui, 'DejaVu Sans', sans-serif; margin: 1em auto; max-width: 1340px; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.45em; margin: .2em 0; } h2 { font-size: 1.12em; border-bottom: 1px solid #ccc;
     padding-bottom: .15em; margin-top: 1.2em; } h3 { font-size: .95em; margin: .3em 0; }
.sub { color: #555; margin: 0 0 .6em 0; }
.status { border-radius: 6px; padding: .55em .9em; margin: .4em 0; display: flex; gap: 2em; align-items: baseline;
          flex-wrap: wrap; }
.status .big { font-size: 1.15em; font-weight: bold; }
.status.good { background: #e5f4e5; border: 1px solid #7cc47c; } .status.bad { background: #fbe3e3;
  border: 1px solid #e08080; } .status.warn { background: #fff4d6; border: 1px solid #e0b84c; }
.banner { border-radius: 6px; padding: .45em .9em; margin: .4em 0; }
.banner.warn { background: #fff4d6; border: 1px solid #e0b84c; font-weight: bold; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .5em; margin: .6em 0; }
.tile { border: 1px solid #ddd; border-radius: 6px; padding: .45em .7em; background: #fafafa; }
.tile .v { font-size: 1.7em; font-weight: bold; font-variant-numeric: tabular-nums; }
.tile .k { font-size: .85em; color: #333; } .tile .s { font-size: .78em; color: #666; min-height: 1em; }
.tile .v.long { font-size: 1.3em; padding: .15em 0; overflow-wrap: anywhere; }
.tile.t-good .v { color: #1a7a1a; } .tile.t-bad .v { color: #c00; } .tile.t-warn .v { color: #b36b00; }
table { border-collapse: collapse; margin: .4em 0; font-size: .86em; }
th, td { border: 1px solid #ddd; padding: .22em .5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
table.num td { font-variant-numeric: tabular-nums; } table.num td:not(:first-child) { text-align: right; }
table.links td:nth-child(3), table.links td:nth-child(4), table.links td:last-child { text-align: left; }
img.plot { max-width: 100%; display: block; }
.badge { border-radius: 3px; padding: 0 .35em; font-size: .9em; white-space: nowrap; }
.badge.good { background: #d8f0d8; color: #145214; } .badge.bad { background: #f8d0d0; color: #900; }
.badge.warn { background: #fbeccb; color: #7a4a00; } .badge.hostile { background: #f8d0d0; color: #900; }
.badge.friendly { background: #d6e6f8; color: #0b3d7a; } .badge.neutral { background: #dff0df; color: #1b5e1b; }
.reason { font-family: ui-monospace, monospace; font-size: .92em; background: #f1f1f1; padding: 0 .25em;
          border-radius: 3px; } .reason.safety { background: #e2ecfa; color: #0b3d7a; }
.bad { color: #c00; font-weight: bold; } .zero { color: #999; } .good { color: #1a7a1a; }
.small { font-size: .82em; color: #555; }
.defs { display: grid; grid-template-columns: 1fr 1fr; gap: 1.5em; font-size: .85em; }
dl { margin: .2em 0; } dt { font-weight: bold; float: left; clear: left; min-width: 7.5em; }
dd { margin: 0 0 .15em 8em; }
dl.reasons { font-size: .8em; display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: .1em .8em; }
dl.reasons dt { float: none; min-width: 0; } dl.reasons dd { margin: 0; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1.5em; } .pair > section { min-width: 0; }
.notes { color: #666; font-size: .85em; } .failed { color: #900; }
"""


def _guard(ident: str, title: str, make: Any, *args: Any) -> str:
    """One section; a summary or record shaped in a way the report did not expect costs only that section."""
    try:
        return str(make(*args))
    except Exception as e:  # the report is read after the run: a damaged field must not cost the whole page
        log.exception("report section %s", ident)
        why = html.escape(f"{type(e).__name__}: {str(e)[:300]}")
        return _section(ident, title, f'<p class="failed">This section could not be drawn ({why}).</p>')


def _plot_section(ident: str, title: str, alt: str, make: Any, have_data: bool, run: RunFolder) -> str:
    if not have_data:
        return _section(ident, title, "<p>No data for this plot.</p>")
    return _section(ident, title, _img(make(run), alt, ident))


GOSPA_TITLE = "Tracking accuracy: GOSPA over time"


def render_page(run: RunFolder) -> str:
    """The report page for a loaded run folder (report.html's text)."""
    s = run.summary
    h = headline(s)
    # the verdict first when the run has one; the rig's health and the safety headline always (what a run must
    # never get wrong is said whatever the criteria were)
    rig_failed = s.get("rig_ok") is False or bool(_l(s.get("rig_problems")))
    elsewhere = s.get("scored") not in (None, "here", "plant")
    top = (_verdict_block(s["verdict"], rig_failed, elsewhere) if isinstance(s.get("verdict"), dict | str) else "") + \
        _status_block(s, h) + _ending(s, run) + _headline_tiles(s, h)
    parts = [
        _guard("status", "Status", lambda: top),
        _guard("map", "Map", _plot_section, "map", "Map", "plan view: assets, no-fire zones, radars, launchers, "
               "truth, tracks, fly-outs", plot_map, bool(run.truth or run.tracks or run.scenario), run),
        _guard("targets", "Targets", _targets_section, run),
        _guard("refusals", "Refusals by target", _refusals_section, run),
        _guard("latency", "Latency", _latency_section, run),
        '<div class="pair">' + _guard("launchers", "Launcher health", _launchers_section, s)
        + _guard("faults", "Faults injected", _faults_section, s) + "</div>",
        _guard("links", "Link health", _links_section, s),
        _guard("realtime", "Real-time options", _realtime_section, s),
        _guard("gospa", GOSPA_TITLE, _plot_section, "gospa", GOSPA_TITLE, "GOSPA and its parts over time",
               plot_gospa, bool(run.gospa and run.gospa.get("time_s")), run),
        _guard("timeline", "Engagement timeline", _plot_section, "timeline", "Engagement timeline",
               "detection, confirmation, assignment, launch and intercept per target", plot_timeline,
               bool(run.events and run.events.get("event")), run),
        _guard("run", "Run details", _run_section, s),
    ]
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in run.notes)
    title = f"hil run: {s.get('scenario', '?')}"
    sub = (f"seed {s.get('seed', '?')} · {s.get('time_mode', '?')} time · rig {s.get('rig', '?')} · "
           f"{_seconds(s.get('duration_s'))} planned")
    desc = getattr(run.scenario, "description", "") if run.scenario else ""
    if desc:
        sub += f" · {desc}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<style>{CSS}</style></head><body><h1 id="title">{html.escape(title)}</h1>'
            f'<p class="sub">{html.escape(sub)}</p>'
            + "".join(parts)
            + (f'<section class="notes" id="notes"><h2>Notes</h2><ul>{notes}</ul></section>' if notes else "")
            + "</body></html>\n")


def render_report(run_dir: str | Path) -> Path:
    """Write report.html into the run folder and return its path."""
    run = load_run_folder(run_dir)
    page = render_page(run)
    out = run.path / "report.html"
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)  # a reader never sees half a report
    return out
