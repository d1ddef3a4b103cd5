"""Render a run folder as one self-contained report.html: summary, plots (PNG, embedded) and tables.

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
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from hil.errors import HilError

log = logging.getLogger("hil.report")

STAGES = ("decode", "track", "fire_control", "command", "host_total", "sensor_to_shooter")
STAGE_TITLES = {
    "decode": "decode (frame -> plots)", "track": "track update", "fire_control": "fire control",
    "command": "launcher command round trip", "host_total": "host total t1 -> t4",
    "sensor_to_shooter": "sensor to shooter t0 -> t5",
}
# the engagement timeline's lanes: (event names in events.csv, marker, colour, legend label)
TIMELINE = (
    (("detection",), "o", "#9e9e9e", "detection"),
    (("confirmation",), "s", "#1f77b4", "confirmation"),
    (("assignment",), ">", "#9467bd", "assignment"),
    (("launch",), "^", "#ff7f0e", "launch"),
    (("intercept", "kill"), "X", "#2ca02c", "intercept / kill"),
    (("miss",), "x", "#d62728", "miss"),
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
        notes.append("no latency.json: no latency CDFs")
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


# ---- plots ----------------------------------------------------------------------------------------------


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _groups(table: Table, key: str) -> dict[str, np.ndarray]:
    keys = np.array(table.get(key, []))
    return {k: np.nonzero(keys == k)[0] for k in dict.fromkeys(keys.tolist())}


def plot_map(run: RunFolder) -> Figure:
    fig = Figure(figsize=(9.5, 8.0))
    ax = fig.add_subplot()
    allegiance = {t.name: t.allegiance for t in run.scenario.targets} if run.scenario else {}
    if run.truth:
        x, y = _floats(run.truth, "x_m") / 1e3, _floats(run.truth, "y_m") / 1e3
        for name, idx in _groups(run.truth, "target").items():
            colour = ALLEGIANCE_COLOURS.get(allegiance.get(name, "unknown"), "#7f7f7f")
            ax.plot(x[idx], y[idx], "-", color=colour, lw=2.5, alpha=0.35)
            ax.annotate(name, (x[idx[0]], y[idx[0]]), fontsize=7, color=colour)
    if run.tracks:
        x, y = _floats(run.tracks, "x_m") / 1e3, _floats(run.tracks, "y_m") / 1e3
        for _, idx in _groups(run.tracks, "track").items():
            ax.plot(x[idx], y[idx], ".-", color="black", lw=0.7, ms=2.5)
    if run.scenario:
        for asset in run.scenario.assets:
            ax.add_patch(Circle((asset.position[0] / 1e3, asset.position[1] / 1e3), asset.radius_m / 1e3,
                                color="#2ca02c", alpha=0.3))
            ax.annotate(asset.name, (asset.position[0] / 1e3, asset.position[1] / 1e3), fontsize=8)
        for site in run.scenario.launchers:
            px, py = site.position[0] / 1e3, site.position[1] / 1e3
            ax.plot(px, py, "^", color="#ff7f0e", ms=10, mec="black")
            ax.add_patch(Circle((px, py), site.max_range_m / 1e3, fill=False, ls="--", color="#ff7f0e", lw=0.8))
            ax.annotate(site.name, (px, py), xytext=(4, -10), textcoords="offset points", fontsize=8)
    for sensor in run.sensors:
        site = sensor.get("site_enu_m")
        if isinstance(site, list) and len(site) >= 2:
            ax.plot(site[0] / 1e3, site[1] / 1e3, "D", color="#9467bd", ms=8, mec="black")
            ax.annotate(str(sensor.get("name", "radar")), (site[0] / 1e3, site[1] / 1e3), xytext=(4, 4),
                        textcoords="offset points", fontsize=8)
    handles = [
        Line2D([], [], color=ALLEGIANCE_COLOURS["hostile"], lw=2.5, alpha=0.5, label="truth (hostile)"),
        Line2D([], [], color=ALLEGIANCE_COLOURS["friendly"], lw=2.5, alpha=0.5, label="truth (friendly)"),
        Line2D([], [], color="black", marker=".", lw=0.7, label="confirmed tracks"),
        Line2D([], [], color="#ff7f0e", marker="^", ls="--", lw=0.8, label="launcher, max range"),
        Line2D([], [], color="#2ca02c", marker="o", ls="", alpha=0.5, ms=10, label="defended asset"),
        Line2D([], [], color="#9467bd", marker="D", ls="", label="radar"),
    ]
    ax.legend(handles=handles, loc="best", fontsize=8)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("east (km)")
    ax.set_ylabel("north (km)")
    ax.set_title("tracks vs truth")
    ax.grid(alpha=0.3)
    return fig


def plot_gospa(run: RunFolder) -> Figure:
    assert run.gospa is not None
    g = run.gospa
    t = _floats(g, "time_s")
    fig = Figure(figsize=(9.5, 5.5))
    ax, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    parts = [_floats(g, c) for c in ("localisation_m", "missed_m", "false_m")]
    ax.stackplot(t, *parts, labels=["localisation", "missed", "false"], alpha=0.6,
                 colors=["#1f77b4", "#d62728", "#ff7f0e"])
    ax.plot(t, _floats(g, "gospa_m"), color="black", lw=1.2, label="GOSPA")
    params = run.summary.get("gospa") or {}
    extra = f" (c = {params.get('c_m', '?')} m, p = {params.get('p', '?')}, alpha = {params.get('alpha', '?')})"
    ax.set_title("GOSPA over time" + (extra if params else ""))
    ax.set_ylabel("m")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    ax2.step(t, _floats(g, "n_truth"), where="post", label="targets in truth", color="#2ca02c")
    ax2.step(t, _floats(g, "n_tracks"), where="post", label="confirmed tracks", color="black")
    ax2.set_xlabel("run time (s)")
    ax2.set_ylabel("count")
    ax2.legend(loc="upper right", fontsize=8)
    ax2.grid(alpha=0.3)
    return fig


def _cdf_us(hist: Any) -> tuple[np.ndarray, np.ndarray]:
    values, counts = [], []
    for item in hist.get_recorded_iterator():
        values.append(item.value_iterated_to)
        counts.append(item.count_added_in_this_iter_step)
    v = np.asarray(values, dtype=np.float64) / 1e3
    c = np.cumsum(np.asarray(counts, dtype=np.float64))
    return v, c / c[-1] if len(c) else c


def plot_latency(run: RunFolder) -> Figure:
    stages = [s for s in STAGES if s in run.latency] + [s for s in run.latency if s not in STAGES and s != "floor"]
    floor = run.latency.get("floor")
    cols = 3
    rows = max(1, math.ceil(len(stages) / cols))
    fig = Figure(figsize=(12.0, 3.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    floor_cdf = _cdf_us(floor) if floor is not None and floor.get_total_count() else None
    for ax, stage in zip(axes, stages, strict=False):
        hist = run.latency[stage]
        n = hist.get_total_count()
        if n:
            v, p = _cdf_us(hist)
            ax.step(v, p, where="post", color="#1f77b4", lw=1.5, label=f"{stage} (n = {n})")
            p99 = hist.get_value_at_percentile(99.0) / 1e3
            ax.axvline(p99, color="#1f77b4", ls=":", lw=1)
            ax.annotate(f"p99 {p99:,.0f} µs", (p99, 0.05), fontsize=7, rotation=90, va="bottom", ha="right")
        else:
            ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
        if floor_cdf is not None:
            ax.step(floor_cdf[0], floor_cdf[1], where="post", color="black", ls="--", lw=1,
                    label="machine floor (scheduling)")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_title(STAGE_TITLES.get(stage, stage), fontsize=10)
        ax.set_xlabel("µs")
        ax.set_ylabel("fraction ≤ x")
        ax.grid(alpha=0.3, which="both")
        if n or floor_cdf is not None:
            ax.legend(fontsize=7, loc="lower right")
    for ax in axes[len(stages):]:
        ax.set_visible(False)
    fig.suptitle("latency CDFs per stage" + ("" if floor_cdf is not None else " (machine floor not measured)"))
    fig.tight_layout()
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
    fig = Figure(figsize=(11.0, max(3.0, 0.45 * len(order) + 1.8)))
    ax = fig.add_subplot()
    for event_names, marker, colour, label in TIMELINE:
        idx = [k for k, e in enumerate(names) if e in event_names]
        if idx:
            ax.scatter(t[idx], [y_of[lane_of[k]] for k in idx], marker=marker, color=colour, s=50, label=label,
                       zorder=3)
    ax.set_yticks(range(len(order)), order, fontsize=8)
    ax.set_ylim(-0.7, len(order) - 0.3)
    ax.invert_yaxis()
    ax.set_xlabel("run time (s)")
    ax.set_title("engagement timeline")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return fig


# ---- HTML -----------------------------------------------------------------------------------------------


def _esc(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return html.escape(f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}")
    return html.escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figure(title: str, fig: Figure, alt: str) -> str:
    return (f'<section><h2>{html.escape(title)}</h2><img class="plot" alt="{html.escape(alt)}" '
            f'src="data:image/png;base64,{_png(fig)}"></section>')


def _ending(s: dict[str, Any]) -> str:
    """How the run ended, when it did not end as planned: a signal, or no end at all (the journal)."""
    if s.get("interrupted"):
        how = f" by {s['signal']}" if isinstance(s.get("signal"), str) else ""
        return (f'<p class="bad" id="interrupted">This run was interrupted{html.escape(how)} before its planned '
                "end: every figure covers only the part of the run before it.</p>")
    if s.get("complete") is False:
        return ('<p class="bad" id="incomplete">This run did not finish (killed?): summary.json is the journal '
                "it kept while running, and the figures below cover the run up to its last journal and the "
                "records written before it stopped.</p>")
    return ""


def _summary_section(s: dict[str, Any]) -> str:
    misses = s.get("deadline_misses")
    if isinstance(misses, dict):
        misses = ", ".join(f"{k}: {v}" for k, v in misses.items() if not isinstance(v, dict | list))
    rows = [
        ("scenario", s.get("scenario")), ("seed", s.get("seed")), ("time mode", s.get("time_mode")),
        ("rig", s.get("rig")), ("duration (s)", s.get("duration_s")), ("plots", s.get("plots")),
        ("tracks", s.get("tracks")), ("confirmed tracks", s.get("confirmed_tracks")),
        ("GOSPA mean (m)", s.get("gospa_mean_m")), ("decisions", s.get("decisions")),
        ("launches", s.get("launches")), ("deadline misses", misses),
        ("friendly engagements", s.get("friendly_engagements")),
    ]
    machine = s.get("machine")
    if isinstance(machine, dict):
        rows.append(("machine", ", ".join(f"{k} {v}" for k, v in machine.items())))
    friendly = s.get("friendly_engagements")
    flag = ('<p class="bad">A friendly target was engaged.</p>' if isinstance(friendly, int) and friendly > 0
            else "")
    return "<section><h2>Summary</h2>" + _ending(s) + flag + _table(["figure", "value"], rows, "kv") + "</section>"


def _latency_section(s: dict[str, Any], run: RunFolder) -> str:
    lat = s.get("latency_us") or {}
    rows = []
    for stage in [*STAGES, *(k for k in lat if k not in STAGES)]:
        st = lat.get(stage)
        if not isinstance(st, dict):
            continue
        rows.append([stage, st.get("count"), st.get("p50"), st.get("p90"), st.get("p99"), st.get("p99_9"),
                     st.get("max"), st.get("uncertainty_us")])
    floor = run.latency.get("floor")
    if floor is not None and floor.get_total_count():
        rows.append(["machine floor", floor.get_total_count(),
                     *(floor.get_value_at_percentile(p) / 1e3 for p in (50, 90, 99, 99.9)),
                     floor.get_max_value() / 1e3, None])
    if not rows:
        return "<section><h2>Latency (µs)</h2><p>No latency figures in summary.json.</p></section>"
    return ("<section><h2>Latency (µs)</h2>"
            + _table(["stage", "count", "p50", "p90", "p99", "p99.9", "max", "± clock sync"], rows, "num")
            + "</section>")


def _engagement_section(s: dict[str, Any]) -> str:
    rows = [[e.get("target"), e.get("allegiance"), "yes" if e.get("engaged") else "no", e.get("first_launch_s"),
             e.get("launcher"), e.get("shots"), e.get("result"), ", ".join(e.get("refusal_reasons") or [])]
            for e in s.get("engagements") or [] if isinstance(e, dict)]
    if not rows:
        return "<section><h2>Engagements</h2><p>No engagements in summary.json.</p></section>"
    return ("<section><h2>Engagements</h2>" + _table(
        ["target", "allegiance", "engaged", "first launch (s)", "launcher", "shots", "result", "refusals"], rows)
        + "</section>")


def _refusal_section(s: dict[str, Any]) -> str:
    refusals = [r for r in s.get("refusals") or [] if isinstance(r, dict)]
    if not refusals:
        return '<section><h2>Refusals</h2><p id="no-refusals">No fire-control refusals.</p></section>'
    rows = [[r.get("time_s"), r.get("track"), r.get("launcher"), r.get("reason"), r.get("count", 1)]
            for r in refusals]
    return ("<section><h2>Refusals</h2>"
            + _table(["first at (s)", "track", "launcher", "reason", "times"], rows, "refusals") + "</section>")


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1250px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
table.num td:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; } img.plot { max-width: 100%; display: block; }
.bad { color: #b00; font-weight: bold; } .notes { color: #666; font-size: .85em; }
"""


def _plot_section(title: str, alt: str, make: Any, have_data: bool, run: RunFolder) -> str:
    if not have_data:
        return f"<section><h2>{html.escape(title)}</h2><p>No data for this plot.</p></section>"
    return _figure(title, make(run), alt)


def render_report(run_dir: str | Path) -> Path:
    """Write report.html into the run folder and return its path."""
    run = load_run_folder(run_dir)
    s = run.summary
    parts = [
        _summary_section(s),
        _plot_section("Tracks vs truth", "map of tracks, truth, assets and launchers", plot_map,
                      bool(run.truth or run.tracks), run),
        _plot_section("GOSPA over time", "GOSPA and its parts over time", plot_gospa, bool(run.gospa), run),
        _latency_section(s, run),
        _plot_section("Latency CDFs", "latency CDF per stage with the machine floor", plot_latency,
                      bool(run.latency), run),
        _plot_section("Engagement timeline", "detection, confirmation, assignment, launch and intercept per target",
                      plot_timeline, bool(run.events and run.events.get("event")), run),
        _engagement_section(s),
        _refusal_section(s),
    ]
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in run.notes)
    title = f"hil run: {s.get('scenario', '?')} (seed {s.get('seed', '?')}, {s.get('time_mode', '?')} time)"
    if s.get("interrupted"):
        title += ", interrupted"
    elif s.get("complete") is False:
        title += ", did not finish"
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            + "".join(parts)
            + (f'<section class="notes"><h2>Notes</h2><ul>{notes}</ul></section>' if notes else "")
            + "</body></html>\n")
    out = run.path / "report.html"
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)  # a reader never sees half a report
    return out
