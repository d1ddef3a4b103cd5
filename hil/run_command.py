"""`hil run`: drive a scenario through the whole chain on a rig and write a run folder."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from hil.errors import ConfigError
from hil.realtime import add_arguments as add_realtime_arguments
from hil.realtime import options_from_args
from hil.rig import Rig
from hil.scenario import Scenario

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIO = REPO / "scenarios" / "raid.toml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rig", default=None, help="rig file (default: rigs/mock.toml)")
    p.add_argument("--scenario", default=str(DEFAULT_SCENARIO), help="scenario file (default: scenarios/raid.toml)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    p.add_argument("--time", dest="time_mode", choices=("real", "virtual"), default="real",
                   help="real: boards as processes on ptys, latency in wall time; virtual: lockstep, seconds")
    p.add_argument("--out", default=None, help="run folder (default: runs/<scenario>-<time>-<stamp>)")
    p.add_argument("--duration", type=float, default=None, help="seconds to run (default: the scenario's)")
    p.add_argument("--no-record", action="store_true", help="do not write recording.pcapng")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    p.add_argument("--fault", action="append", default=[], metavar="LINK:KIND[=ARG][/DIR]@S[+D]",
                   help="inject a link fault, e.g. launcher-north:drop=0.01@8, radar-west:delay=2@10+5, "
                        "launcher-south:cut@20+3, launcher-north:silent@20+5 (docs/RELIABILITY.md)")
    add_realtime_arguments(p)


def _status_printer(stream: Any) -> Any:
    tty = stream.isatty()

    def show(s: dict[str, Any]) -> None:
        p99 = s.get("host_p99_us")
        line = (f"t={s['t_s']:6.1f}s  tracks {s['tracks']:3d} ({s['confirmed']:3d} confirmed)  "
                f"launches {s['launches']:2d}  kills {s['kills']:2d}  "
                f"host p99 {'-' if p99 is None else f'{p99:.0f} µs'}")
        stream.write(("\r" + line + "   ") if tty else line + "\n")
        stream.flush()

    return show


EXIT_RIG_FAILED = 3  # bring-up failed, a link lost for good, a launcher never armed or left SAFE, a radar silent
SIGNAL_EXITS = {"SIGINT": 130, "SIGTERM": 143}


def exit_status(summary: dict[str, Any]) -> int:
    """130/143 after a signal; 3 when the rig itself failed; else 0."""
    if summary.get("interrupted"):
        return SIGNAL_EXITS.get(str(summary.get("signal")), 130)
    if summary.get("rig_problems"):
        return EXIT_RIG_FAILED
    return 0


def format_summary(s: dict[str, Any]) -> str:
    out = [f"scenario {s['scenario']}  seed {s['seed']}  time {s['time_mode']}  rig {s['rig']}  "
           f"duration {s['duration_s']:.0f} s", ""]
    if s.get("interrupted"):
        out[-1:] = [f"INTERRUPTED by {s.get('signal')}: the figures below cover the run up to that moment", ""]
    for problem in s.get("rig_problems", []):
        out.insert(-1, f"RIG FAILED: {problem}")
    out.append(f"{'stage':<18}{'count':>8}{'p50 µs':>10}{'p90 µs':>10}{'p99 µs':>10}{'p99.9 µs':>10}{'max µs':>10}")
    for stage, v in s["latency_us"].items():
        if not v.get("count"):
            out.append(f"{stage:<18}{0:>8}")
            continue
        extra = f"  ± {v['uncertainty_us']:.0f}" if v.get("uncertainty_us") is not None else ""
        out.append(f"{stage:<18}{v['count']:>8}" + "".join(
            f"{v[k]:>10.0f}" for k in ("p50", "p90", "p99", "p99_9", "max")) + extra)
    floor = s.get("floor_us")
    if floor and floor.get("count"):
        out.append(f"{'machine floor':<18}{floor['count']:>8}" + "".join(
            f"{floor[k]:>10.0f}" for k in ("p50", "p90", "p99", "p99_9", "max")) + "  (scheduling latency beside us)")
    out.append("")
    out.append(f"plots {s['plots']}  tracks {s['tracks']}  confirmed {s['confirmed_tracks']}  "
               f"GOSPA mean {s['gospa_mean_m']} m  launches {s['launches']}  "
               f"friendly engagements {s['friendly_engagements']}")
    dm = s.get("deadline_misses") or {}
    if dm.get("iterations"):
        out.append(f"loop: {dm['overruns']} of {dm['iterations']} ticks over the {dm['period_us']:.0f} µs period "
                   f"(compute {dm['compute']}, not scheduled {dm['os']}); "
                   f"wake lateness p99 {dm['lateness_p99_us']} µs, max {dm['lateness_max_us']} µs")
    if s.get("decisions_deferred"):
        out.append(f"{s['decisions_deferred']} of {s['decisions']} decisions came after the engaged track's newest "
                   "plot (waiting for a launcher): their sensor-to-shooter includes that wait")
    out.append("")
    out.append(f"{'target':<14}{'kind':<10}{'engaged':<9}{'launch s':>9}  {'launcher':<16}{'shots':>5}  result")
    for e in s["engagements"]:
        launch = "" if e["first_launch_s"] is None else f"{e['first_launch_s']:.1f}"
        why = "" if e["engaged"] else "  (" + (", ".join(e["refusal_reasons"][:3]) or
                                               ("tracked, no decision" if e["tracked"] else "not tracked")) + ")"
        out.append(f"{e['target']:<14}{e['kind']:<10}{'yes' if e['engaged'] else 'no':<9}{launch:>9}  "
                   f"{e['launcher'] or '':<16}{e['shots']:>5}  {e['result']}{why}")
    return "\n".join(out)


def main(args: argparse.Namespace) -> int:
    from hil.drivers.faults import parse_faults
    from hil.errors import LinkError
    from hil.runtime import RunOptions, run_chain

    rig = Rig.load(args.rig)
    scenario = Scenario.load(args.scenario)
    if args.duration is not None and args.duration <= 0:
        raise ConfigError("--duration", "value", "must be positive")
    seed = scenario.seed if args.seed is None else args.seed
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"{scenario.name}-{args.time_mode}-{stamp}"
    status = None if args.quiet else _status_printer(sys.stderr)
    faults = parse_faults(args.fault)
    try:
        summary = run_chain(RunOptions(scenario=scenario, rig=rig, seed=seed, time_mode=args.time_mode, out_dir=out,
                                       duration_s=args.duration, status=status, record=not args.no_record,
                                       realtime=options_from_args(args), faults=faults))
    except LinkError as e:
        if status:
            sys.stderr.write("\n")
        print(f"hil: the rig failed: {e}", file=sys.stderr)
        return EXIT_RIG_FAILED
    if status:
        sys.stderr.write("\n")
    print(format_summary(summary))
    print(f"\nrun folder: {out}")
    return exit_status(summary)
