"""campaign.html: the verdict, a table per grid point, and plots (kill probability against each grid parameter with
its Wilson interval, the merged latency CDF with the machine's floor, outcomes per hostile kind)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hil.campaign.stats import HOSTILE_RESULTS, cdf_points, group_stats, merged_latency
from hil.measure.verdict import verdict_lines

CDF_STAGES = ("host_total", "sensor_to_shooter")
COLOURS = {"killed": "#2a7d2a", "leaked": "#c0392b", "survived": "#999999"}


def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _pct(w: Mapping[str, Any]) -> str:
    if w["p"] is None:
        return "–"
    return f"{w['p']:.1%} ({w['lo']:.1%}–{w['hi']:.1%})"


def kill_probability_plots(summary: Mapping[str, Any], records: Sequence[Mapping[str, Any] | None]) -> list[str]:
    """One plot per grid key: the kill probability of the runs with each value, pooled over the other keys."""
    out = []
    points = summary["points"]
    for key in summary["grid_keys"]:
        values = list(dict.fromkeys(p["settings"][key] for p in points))
        groups = []
        for v in values:
            idx = {i for i, p in enumerate(points) if p["settings"][key] == v}
            groups.append(group_stats([r for r in records if r is not None and r["point"] in idx]))
        fig = Figure(figsize=(5.5, 3.2))
        ax = fig.add_subplot()
        xs = list(range(len(values)))
        for x, g in zip(xs, groups, strict=True):
            w = g["kill_probability"]
            if w["p"] is not None:
                ax.errorbar([x], [w["p"]], yerr=[[w["p"] - w["lo"]], [w["hi"] - w["p"]]], fmt="o", color="#1f4e79",
                            capsize=4)
        ax.set_xticks(xs, [str(v) for v in values])
        ax.set_xlabel(key + ("  (pooled over the other grid keys)" if len(summary["grid_keys"]) > 1 else ""))
        ax.set_ylabel("kill probability")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.set_title(f"hostiles killed / hostiles that flew, Wilson 95 % — by {key}", fontsize=9)
        out.append(_png(fig))
    return out


def latency_cdf_plot(summary: Mapping[str, Any], records: Sequence[Mapping[str, Any] | None]) -> str | None:
    latency = merged_latency(r.get("latency") for r in records if r is not None)
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.add_subplot()
    drawn = False
    for stage in CDF_STAGES:
        xs, ys = cdf_points(latency, stage)
        if xs:
            ax.step(xs, ys, where="post", label=f"{stage} ({len(xs)} buckets, "
                                                f"{summary['all']['latency_us'][stage]['count']:,} samples)")
            drawn = True
    if not drawn:
        return None
    floor = summary["all"].get("floor_us")
    if floor:
        ax.axvline(float(floor), color="k", ls="--", lw=1, label=f"machine floor {float(floor):.0f} µs")
    ax.set_xscale("log")
    ax.set_xlabel("latency, µs")
    ax.set_ylabel("fraction of samples ≤")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    ax.set_title("latency of all runs, from merged HDR histograms", fontsize=9)
    return _png(fig)


def outcome_bars(summary: Mapping[str, Any]) -> str | None:
    kinds = summary["all"]["kinds"]
    if not kinds:
        return None
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.add_subplot()
    names = list(kinds)
    bottom = [0.0] * len(names)
    for res in HOSTILE_RESULTS:
        vals = [kinds[k]["outcomes"][res] / kinds[k]["present"] if kinds[k]["present"] else 0.0 for k in names]
        ax.bar(names, vals, bottom=bottom, label=res, color=COLOURS[res])
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("fraction of hostiles that flew")
    ax.set_ylim(0, 1.0)
    ax.legend(fontsize=7)
    ax.set_title("outcomes per hostile kind, all runs", fontsize=9)
    return _png(fig)


def _point_rows(summary: Mapping[str, Any]) -> str:
    rows = []
    for p in [*summary["points"], {"label": "all runs", **summary["all"]}]:
        f = p["fratricide"]
        ub = "–" if f["upper_bound_per_run"] is None else f"{f['upper_bound_per_run']:.2%}"
        g = p["gospa_mean_m"]
        gospa = "–" if g["mean"] is None else (f"{g['mean']:.1f}" + (f" ({g['lo']:.1f}–{g['hi']:.1f})"
                                                                     if g["lo"] is not None else ""))
        rpk = "–" if p["rounds_per_kill"] is None else f"{p['rounds_per_kill']:.2f}"
        cells = [p["label"], str(p["runs"]), _pct(p["kill_probability"]), _pct(p["kills_per_round"]),
                 _pct(p["leak_rate"]), rpk, f"{f['runs_with']} / {p['runs']}", ub, gospa]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = ["grid point", "runs", "kill probability (95 %)", "kills per round (95 %)", "leak rate (95 %)",
            "rounds per kill", "runs with fratricide", "fratricide 95 % upper bound / run", "GOSPA mean m (95 %)"]
    return "<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(rows) + "</table>"


def write_report(path: Any, summary: Mapping[str, Any], records: Sequence[Mapping[str, Any] | None]) -> None:
    runs = summary["runs"]
    parts = [f"<h1>Campaign {html.escape(summary['campaign'])}</h1>",
             f"<p>{runs['done']} of {runs['planned']} runs done, {runs['failed']} failed, {runs['not_run']} not run. "
             f"Exit status {summary['exit_status']}.</p>",
             "<pre>" + html.escape("\n".join(verdict_lines(summary["verdict"]))) + "</pre>",
             "<h2>Per grid point</h2>", _point_rows(summary), "<h2>Plots</h2>",
             *kill_probability_plots(summary, records)]
    for img in (latency_cdf_plot(summary, records), outcome_bars(summary)):
        if img:
            parts.append(img)
    style = ("body{font-family:sans-serif;max-width:1100px;margin:1em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}img{margin:4px}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>campaign {html.escape(summary['campaign'])}"
            f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)


__all__ = ["write_report"]
