"""Many seeded runs over a parameter grid, on this machine's cores or a Dask cluster, with statistics and a verdict.

    hil campaign raid-magazine.toml --jobs 2
    hil campaign --scenario raid --seeds 1-200 --grid launcher.rounds=4,6,8 --grid doctrine=salvo,shoot-look-shoot \\
        --campaign-criteria kill_probability_lower_bound=0.8,fratricide_upper_bound=0.02 --junit campaign.xml
    hil campaign raid-magazine.toml --scheduler tcp://10.0.0.5:8786 --out /shared/campaigns/raid-magazine
    hil campaign raid-magazine.toml --scheduler tcp://10.0.0.5:8786 --gather    # workers share no folder

Exit status: 0 every campaign criterion passed, 1 one failed, 2 a usage or configuration mistake, 3 runs are
missing (failed twice, or not run yet with --max-runs), 130 interrupted. Run it again to resume.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from hil.errors import ConfigError

GATHER_LIMIT_MB = 256.0  # hil.campaign.runner.GATHER_LIMIT_BYTES, in MB (not imported: --help stays light)
_GRID_ITEM = re.compile(r"^([A-Za-z0-9_.-]+)=(.+)$")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="campaign file (TOML); the options below override its keys")
    p.add_argument("--scenario", action="append", help="a scenario (shipped name or file); repeat for more")
    p.add_argument("--rig", help="rig name or file (default: the mock rig)")
    p.add_argument("--time", choices=("virtual", "real"), help="time mode of every run (default virtual)")
    p.add_argument("--seeds", help='seeds, e.g. "1-200" or "1-20,40"')
    p.add_argument("--duration", type=float, help="seconds of each run (default: the scenario's)")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a grid key and its values, e.g. launcher.rounds=4,6,8; repeat for more keys")
    p.add_argument("--criteria", help="each run's criteria, as hil run --criteria takes them")
    p.add_argument("--campaign-criteria", help="e.g. kill_probability_lower_bound=0.8,fratricide_upper_bound=0.02")
    p.add_argument("--name", help="the campaign's name (default: the file's stem, or the first scenario's)")
    p.add_argument("--out", help="campaign folder (default campaigns/<name>); an existing one is resumed")
    p.add_argument("--jobs", type=int, help="local worker processes (default: the number of cores)")
    p.add_argument("--scheduler", help="an existing Dask scheduler, e.g. tcp://HOST:8786, instead of local workers")
    p.add_argument("--gather", action="store_true",
                   help="workers send each run folder back to the campaign folder (when they share no folder with it)")
    p.add_argument("--worker-dir", metavar="DIR",
                   help="with --gather: where each worker writes a run before sending it (default: its temp folder)")
    p.add_argument("--gather-limit", type=float, metavar="MB",
                   help=f"with --gather: a larger run folder stays on its worker (default {GATHER_LIMIT_MB:g})")
    p.add_argument("--max-runs", type=int, help="run at most this many of the runs left, then stop (resume later)")
    p.add_argument("--run-reports", action="store_true", help="render each run's report.html (off: faster)")
    p.add_argument("--no-record", action="store_true", help="do not write each run's recording.pcapng")
    p.add_argument("--junit", help="write the campaign criteria as JUnit XML here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _value(text: str) -> Any:
    """A command-line grid value as TOML would read it: an integer, a number, true/false, else text."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def _doc(args: argparse.Namespace) -> tuple[dict[str, Any], str, Path | None, str]:
    from hil.errors import read_toml
    from hil.measure.verdict import parse_criteria_option

    doc: dict[str, Any] = {}
    source, base, name = "command line", None, "campaign"
    if args.file:
        path = Path(args.file)
        doc = read_toml(path, "campaign")
        source, base, name = str(path), path.resolve().parent, path.stem
    if args.scenario:
        doc.pop("scenario", None)
        doc["scenarios"] = list(args.scenario)
        if not args.file:
            name = Path(args.scenario[0]).stem
    for key, value in (("rig", args.rig), ("time", args.time), ("seeds", args.seeds), ("duration_s", args.duration),
                       ("name", args.name)):
        if value is not None:
            doc[key] = value
    if args.no_record:
        doc["record"] = False
    if args.grid:
        grid = dict(doc.get("grid") or {})
        for item in args.grid:
            m = _GRID_ITEM.match(item.strip())
            if not m:
                raise ConfigError("--grid", item, "is not KEY=VALUE,VALUE,...")
            grid[m.group(1)] = [_value(v.strip()) for v in m.group(2).split(",") if v.strip()]
        doc["grid"] = grid
    if args.criteria:
        doc["criteria"] = {**(doc.get("criteria") or {}), **parse_criteria_option(args.criteria)}
    if args.campaign_criteria:
        extra = parse_criteria_option_loose(args.campaign_criteria)
        doc["campaign_criteria"] = {**(doc.get("campaign_criteria") or {}), **extra}
    return doc, source, base, name


def parse_criteria_option_loose(text: str) -> dict[str, Any]:
    """NAME=NUMBER,... (campaign criteria are all numbers)."""
    out: dict[str, Any] = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError("--campaign-criteria", item, "is not NAME=VALUE")
        try:
            out[name.strip()] = float(raw)
        except ValueError:
            raise ConfigError("--campaign-criteria", name.strip(), f"needs a number, got {raw.strip()!r}") from None
    return out


class _Bar:
    """The progress bar: runs done and failed, with tqdm's rate and ETA."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.shown_dashboard = False

    def __call__(self, p: Any) -> None:
        if not self.shown_dashboard:
            self.shown_dashboard = True
            print(f"dashboard: {p.dashboard}" if p.dashboard else "dashboard: none (install bokeh for Dask's)",
                  file=sys.stderr)
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=p.total, unit="run", file=sys.stderr, dynamic_ncols=True, desc="campaign")
        self.bar.n = p.done + p.failed
        self.bar.set_postfix(done=p.done, failed=p.failed, retried=p.retried, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main(args: argparse.Namespace) -> int:
    from hil.campaign.campaign import run_campaign
    from hil.campaign.spec import campaign_from
    from hil.measure.verdict import verdict_lines

    if args.jobs is not None and args.jobs < 1:
        raise ConfigError("--jobs", "value", "must be at least 1")
    if args.jobs is not None and args.scheduler:
        raise ConfigError("--jobs", "value", "sets local workers; with --scheduler the cluster has its own")
    if args.max_runs is not None and args.max_runs < 0:
        raise ConfigError("--max-runs", "value", "must be 0 or more")
    if args.gather_limit is not None and not args.gather_limit > 0:
        raise ConfigError("--gather-limit", "value", "must be more than 0 MB")
    doc, source, base, name = _doc(args)
    campaign = campaign_from(doc, source, base=base, default_name=name)
    gather = args.gather or campaign.gather
    if not gather and (args.worker_dir is not None or args.gather_limit is not None):
        raise ConfigError("--worker-dir" if args.worker_dir is not None else "--gather-limit", "value",
                          "only means something with --gather (or gather = true in the campaign file)")
    out = Path(args.out) if args.out else Path("campaigns") / campaign.name
    print(f"campaign {campaign.name}: {len(campaign.points())} grid points x {len(campaign.seeds)} seeds = "
          f"{campaign.run_count} runs in {out}", file=sys.stderr)
    bar = _Bar(enabled=not args.no_progress)
    try:
        result = run_campaign(campaign, out, jobs=args.jobs, scheduler=args.scheduler, max_runs=args.max_runs,
                              run_reports=True if args.run_reports else None, junit=args.junit, on_progress=bar,
                              gather=gather, worker_dir=args.worker_dir,
                              gather_limit_bytes=int((args.gather_limit or GATHER_LIMIT_MB) * 1e6))
    finally:
        bar.close()
    s = result.summary
    print(f"runs: {s['runs']['done']} of {s['runs']['planned']} done ({result.resumed} from before, {result.ran} now)"
          f", {s['runs']['failed']} failed, {s['runs']['not_run']} not run")
    for key, error in result.failed.items():
        print(f"  failed twice: {key}: {error}")
    for key, note in list(s["not_gathered"].items())[:5]:
        print(f"  {key}: {note}")
    if len(s["not_gathered"]) > 5:
        print(f"  and {len(s['not_gathered']) - 5} more run folders not gathered: runs.csv says where each is")
    for p in [*s["points"], {"label": "all runs", **s["all"]}] if len(s["points"]) > 1 else s["points"]:
        print(point_line(p))
    for line in verdict_lines(s["verdict"]):
        print(line)
    print(f"campaign.json, runs.csv, campaign.html in {result.folder}")
    return result.exit_status


def point_line(p: dict[str, Any]) -> str:
    """One grid point for people, bounds printed with the estimates."""
    def pct(w: dict[str, Any]) -> str:
        return "–" if w["p"] is None else f"{w['p']:.1%} [{w['lo']:.1%}, {w['hi']:.1%}]"

    f = p["fratricide"]
    ub = "–" if f["upper_bound_per_run"] is None else f"{f['upper_bound_per_run']:.2%}"
    g = p["gospa_mean_m"]["mean"]
    return (f"{p['label']}: {p['runs']} runs; kill probability {pct(p['kill_probability'])}; kills per round "
            f"{pct(p['kills_per_round'])}; leak rate {pct(p['leak_rate'])}; fratricide {f['runs_with']} in "
            f"{p['runs']} runs, 95 % upper bound {ub} per run; GOSPA mean "
            + ("–" if g is None else f"{g:.1f} m"))


__all__ = ["add_arguments", "main"]
