"""`hil run`: drive a scenario through the whole chain on a rig and write a run folder."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hil.errors import ConfigError
from hil.measure.realtime import add_arguments as add_realtime_arguments
from hil.measure.realtime import applied_lines, options_from_args
from hil.measure.verdict import FAIL, parse_criteria_option, verdict_lines, write_junit
from hil.rig import Rig
from hil.scenario import Scenario
from hil.units import PERCENTILES, TOO_FEW_SAMPLES, duration_text, percentile_cells

DEFAULT_SCENARIO = "raid"  # a shipped scenario's name (hil.shipped), so the default works from an installed wheel


def add_arguments(p: argparse.ArgumentParser, plant_elsewhere: bool = False) -> None:
    """The options of hil run; plant_elsewhere (hil host): the scenario and the duration default to the plant's."""
    p.add_argument("--rig", default=None, help="a shipped rig's name (mock, simavr) or a rig file (default: mock)")
    p.add_argument("--scenario", default=None if plant_elsewhere else DEFAULT_SCENARIO,
                   help="a shipped scenario's name (raid, safety/escorts) or a scenario file (default: "
                        + ("the plant's, as its rig file says)" if plant_elsewhere else "raid)"))
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    p.add_argument("--time", dest="time_mode", choices=("real", "virtual"), default="real",
                   help="real: boards as processes on ptys, latency in wall time; virtual: lockstep, seconds")
    p.add_argument("--out", default=None, help="run folder (default: runs/<scenario>-<time>-<stamp>)")
    p.add_argument("--duration", type=float, default=None,
                   help=f"seconds to run (default: the {'plant' if plant_elsewhere else 'scenario'}'s)")
    p.add_argument("--no-record", action="store_true", help="do not write recording.pcapng")
    p.add_argument("--no-report", action="store_true", help="do not render report.html (summary.json is still written)")
    p.add_argument("--tracker", default=None, metavar="CHOICE",
                   help='the host\'s tracker: "hil" (default), "reference", an installed plug-in\'s name, or '
                        "pkg.module:factory (docs/PLUGINS.md)")
    p.add_argument("--fire-control", default=None, metavar="CHOICE",
                   help='the host\'s fire control: "hil" (default), an installed plug-in\'s name, or '
                        "pkg.module:factory")
    p.add_argument("--criteria", default="", metavar="NAME=VALUE,...",
                   help="criteria over the rig's and the scenario's, e.g. leaks=0,host_total_p99_us=800,"
                        "hostiles_killed=bomber-1+bomber-2 (docs/CRITERIA.md)")
    p.add_argument("--junit", default=None, metavar="FILE",
                   help="write the verdict as JUnit XML, one test per criterion")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    p.add_argument("--fault", action="append", default=[], metavar="LINK:KIND[=ARG][/DIR]@S[+D]",
                   help="inject a link fault, e.g. launcher-north:drop=0.01@8, radar-west:delay=2@10+5, "
                        "launcher-south:cut@20+3, launcher-north:silent@20+5 (docs/RELIABILITY.md)")
    add_realtime_arguments(p)


def _status_printer(stream: Any, virtual: bool) -> Any:
    """The live line: run time, confirmed tracks alive now, launches, kills and (real time only: in virtual time
    the host's steps take no time) the host's p99 so far."""
    tty = stream.isatty()

    def show(s: dict[str, Any]) -> None:
        line = (f"t {s['t_s']:6.1f} s  confirmed tracks {s['confirmed']:3d}  launches {s['launches']:2d}  "
                f"kills {s['kills']:2d}")
        if not virtual:
            line += f"  host p99 {duration_text(s.get('host_p99_us'))}"
        stream.write(("\r" + line + "   ") if tty else line + "\n")
        stream.flush()

    return show


EXIT_CRITERION_FAILED = 1  # the run completed and a criterion of its verdict failed
EXIT_RIG_FAILED = 3  # bring-up failed, a link lost for good, a launcher never armed or left SAFE, a radar silent
SIGNAL_EXITS = {"SIGINT": 130, "SIGTERM": 143}


def exit_status(summary: dict[str, Any]) -> int:
    """130/143 after a signal; 3 when the rig itself failed; 1 when a criterion failed; else 0 (pass). A usage or
    configuration error (2) never gets this far."""
    if summary.get("interrupted"):
        return SIGNAL_EXITS.get(str(summary.get("signal")), 130)
    if summary.get("rig_problems"):
        return EXIT_RIG_FAILED
    if (summary.get("verdict") or {}).get("result") == FAIL:
        return EXIT_CRITERION_FAILED
    return 0


# what each word of the engagement table's result column means (the README's "Outcomes" says the same)
OUTCOMES = (
    ("killed", "an interceptor destroyed it"),
    ("leaked", "it reached the asset it was homing on"),
    ("survived", "still flying when the run ended (for a friendly or a neutral, the right outcome)"),
    ("not_launched", "its start time came at or after the end of the run: it never flew"),
)


def _latency_row(label: str, v: dict[str, Any]) -> str:
    return f"{label:<24}{int(v.get('count') or 0):>9,}" + "".join(f"{c:>10}" for c in percentile_cells(v))


def format_summary(s: dict[str, Any]) -> str:
    """The summary a run prints: latency per stage, the run's counts, and one row per target with its outcome."""
    virtual = s.get("time_mode") == "virtual"
    elsewhere = s.get("scored") not in (None, "here", "plant")  # hil host: a plant elsewhere scores the run
    judged_by = "the plant (hil plant) scores this run: its verdict and exit status are in its run folder"
    rig_problems = s.get("rig_problems", [])
    out = [f"scenario {s['scenario']}  seed {s['seed']}  time {s['time_mode']}  rig {s['rig']}  "
           f"duration {s['duration_s']:.0f} s",
           *(f"RIG FAILED: {problem}" for problem in rig_problems),
           *(verdict_lines(s["verdict"], judged_by if elsewhere else "", rig_failed=bool(rig_problems))
             if s.get("verdict") else []), ""]
    if s.get("interrupted"):
        out[-1:] = [f"INTERRUPTED by {s.get('signal')}: the figures below cover the run up to that moment", ""]
    out.append(f"{'stage':<24}{'count':>9}" + "".join(f"{k.replace('_', '.'):>10}" for k, _ in PERCENTILES)
               + f"{'max':>10}")
    for stage, v in s["latency_us"].items():
        if virtual and stage == "host_total":
            continue  # virtual: frame received to command written takes no virtual time, always 0
        row = _latency_row(stage, v)
        if v.get("count") and v.get("uncertainty_us") is not None:
            row += f"  clock sync ± {duration_text(v['uncertainty_us'])}"
        out.append(row)
    floor = s.get("floor_us")
    if floor and floor.get("count"):
        out.append(_latency_row("machine floor", floor) + "  (scheduling latency beside us)")
    out.append(TOO_FEW_SAMPLES)
    if virtual:
        out.append("virtual time: decode, track, fire_control and command are the host's compute time, "
                   "sensor_to_shooter is virtual time; host_total is not measured")
    out.append("")
    results = Counter(e["result"] for e in s["engagements"])
    gospa = s.get("gospa_mean_m")
    outcomes = ("outcomes: scored by the plant" if elsewhere else
                f"kills {results['killed']}  leaks {results['leaked']}  "
                f"friendly engagements {s['friendly_engagements']}")
    out.append(f"plots {s['plots']:,}  confirmed tracks {s['confirmed_tracks']:,} "
               f"(track numbers opened {s['tracks']:,})  GOSPA mean {'–' if gospa is None else f'{gospa:.0f} m'}  "
               f"launches {s['launches']}  {outcomes}")
    dm = s.get("deadline_misses") or {}
    if dm.get("iterations"):
        out.append(f"loop: {dm['overruns']:,} of {dm['iterations']:,} iterations over the "
                   f"{duration_text(dm['period_us'])} period (compute {dm['compute']:,}, not scheduled {dm['os']:,}"
                   + (f", {dm['os_in_compute']:,} of them while computing" if dm.get("os_in_compute") else "") + "); "
                   f"wake lateness p99 {duration_text(dm['lateness_p99_us'])}, "
                   f"max {duration_text(dm['lateness_max_us'])}")
    if not virtual:
        out += applied_lines(s.get("realtime") or [])
    if s.get("decisions_deferred"):
        out.append(f"{s['decisions_deferred']} of {s['decisions']} decisions came after the engaged track's newest "
                   "plot (waiting for a launcher): their sensor-to-shooter includes that wait")
    out.append("")
    if elsewhere:
        out.append("targets: the plant's summary has each target's outcome")
        return "\n".join(out)
    out.append(f"{'target':<14}{'kind':<10}{'side':<10}{'engaged':<9}{'first launch':>12}  {'launcher':<16}"
               f"{'rounds':>6}  result")
    for e in s["engagements"]:
        launch = "" if e["first_launch_s"] is None else f"{e['first_launch_s']:.1f} s"
        why = "" if e["engaged"] else "  (" + (", ".join(e["refusal_reasons"][:3]) or
                                               ("tracked, no decision" if e["tracked"] else "not tracked")) + ")"
        out.append(f"{e['target']:<14}{e['kind']:<10}{e.get('allegiance', ''):<10}{'yes' if e['engaged'] else 'no':<9}"
                   f"{launch:>12}  {e['launcher'] or '':<16}{e['shots']:>6}  {e['result']}{why}")
    out.append("")
    width = max(len(word) for word, _ in OUTCOMES)
    out += [f"{'result:' if k == 0 else '':<8}{word:<{width}}  {meaning}" for k, (word, meaning) in enumerate(OUTCOMES)]
    return "\n".join(out)


def _what_to_run(args: argparse.Namespace, rig: Rig) -> tuple[Scenario, float | None]:
    """The scenario and the duration (None: the scenario's). With a rig file hil plant wrote: refused once that plant
    is gone, and its scenario and duration unless --scenario or --duration say otherwise (a scenario other than the
    plant's is refused; another duration is warned of: the plant scores its own)."""
    plant = rig.plant_run
    if plant is None:
        return Scenario.load(args.scenario or DEFAULT_SCENARIO), args.duration
    problem = plant.problem(rig.source)
    if problem is not None:
        raise problem
    scenario = Scenario.load(args.scenario or plant.scenario_file)
    if scenario.name != plant.scenario:
        raise ConfigError("--scenario", "value", f"the plant behind {rig.source} runs scenario {plant.scenario!r}, "
                                                 f"not {scenario.name!r}: leave --scenario out to run the plant's")
    if args.duration is None:
        return scenario, plant.duration_s
    if args.duration != plant.duration_s:
        print(f"hil: --duration {args.duration:g} s, but the plant scores {plant.duration_s:g} s from the host's "
              "first byte: its verdict covers its own duration", file=sys.stderr)
    return scenario, args.duration


def main(args: argparse.Namespace) -> int:
    from hil.drivers.faults import parse_faults
    from hil.errors import LinkError
    from hil.runtime import RunOptions, run_chain

    rig = Rig.load(args.rig)
    if args.duration is not None and args.duration <= 0:
        raise ConfigError("--duration", "value", "must be positive")
    scenario, duration_s = _what_to_run(args, rig)
    seed = scenario.seed if args.seed is None else args.seed
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path("runs") / f"{scenario.name}-{args.time_mode}-{stamp}"
    status = None if args.quiet else _status_printer(sys.stderr, virtual=args.time_mode == "virtual")
    faults = parse_faults(args.fault)
    board_faults = [f for f in faults if f.kind in ("silent", "resume")]
    if rig.plant == "external" and board_faults:
        raise ConfigError("--fault", board_faults[0].link, "silent and resume act on a board itself, and the boards "
                                                           "here are hil plant's: this host only talks to them")
    criteria = parse_criteria_option(args.criteria)
    started = time.monotonic()
    try:
        summary = run_chain(RunOptions(scenario=scenario, rig=rig, seed=seed, time_mode=args.time_mode, out_dir=out,
                                       duration_s=duration_s, status=status, record=not args.no_record,
                                       report=not args.no_report,
                                       realtime=options_from_args(args), faults=faults, tracker=args.tracker,
                                       fire_control=args.fire_control, criteria=criteria))
    except LinkError as e:
        if status:
            sys.stderr.write("\n")
        print(f"hil: the rig failed: {e}", file=sys.stderr)
        return EXIT_RIG_FAILED
    if status:
        sys.stderr.write("\n")
    print(format_summary(summary))
    print(f"\nrun folder: {out}")
    if args.junit:
        write_junit(args.junit, f"hil run {scenario.name} seed {seed}", summary["verdict"], time.monotonic() - started)
        print(f"JUnit: {args.junit}")
    return exit_status(summary)
