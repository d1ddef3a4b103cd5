"""`hil plant`: run the plant alone (truth, emulated boards, rounds) and score whatever host talks to its boards.

It starts one radar and one launcher emulator per scenario radar and launcher, prints where each listens for a host
and writes a rig file for one (DIR/host-rig.toml: `hil host --rig DIR/host-rig.toml`, or any host in any language
that opens those ports). The scenario runs in real time from the host's first byte on a radar link; the run folder
gets the summary `hil run` writes: outcomes, GOSPA from the host's CAT062 system tracks, wire-level latency.
Mock boards only. docs/PLANT.md has the details.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from hil.commands.run import DEFAULT_SCENARIO, EXIT_RIG_FAILED, exit_status, format_summary
from hil.errors import ConfigError, LinkError
from hil.measure.realtime import RealtimeOptions, applied_line, apply, board_placement, parse_cpus
from hil.measure.verdict import parse_criteria_option, write_junit
from hil.rig import Rig
from hil.scenario import Scenario

DEFAULT_WAIT_S = 60.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help="a shipped scenario's name (raid, safety/escorts) or a scenario file (default: raid)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's)")
    p.add_argument("--rig", default=None,
                   help="a rig of mock boards (default: mock); its launcher transport (rtu or tcp) is used")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds to run from the host's first byte (default: the scenario's)")
    p.add_argument("--out", default=None, help="run folder (default: runs/plant-<scenario>-<stamp>)")
    p.add_argument("--wait", type=float, default=DEFAULT_WAIT_S,
                   help=f"seconds to wait for a host before giving up with exit status 3 (default: {DEFAULT_WAIT_S:g})")
    p.add_argument("--criteria", default="", metavar="NAME=VALUE,...",
                   help="criteria over the rig's and the scenario's, e.g. leaks=0,gospa_mean_m=800 (docs/CRITERIA.md)")
    p.add_argument("--junit", default=None, metavar="FILE",
                   help="write the verdict as JUnit XML, one test per criterion")
    p.add_argument("--no-record", action="store_true", help="do not write recording.pcapng")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    p.add_argument("--cpus", type=parse_cpus, default=None, metavar="LIST",
                   help="the CPUs the plant itself runs on, e.g. 0 (keep the world off the host's CPUs)")
    p.add_argument("--board-cpus", type=parse_cpus, default=None, metavar="LIST",
                   help="the CPUs its emulated boards start on (default: wherever the plant runs)")


def _status_printer(stream: Any) -> Any:
    tty = stream.isatty()

    def show(s: dict[str, Any]) -> None:
        line = (f"t {s['t_s']:6.1f} s  plots {s['plots']:6,d}  system tracks heard {s['system_tracks']:4d}  "
                f"launches {s['launches']:2d}  kills {s['kills']:2d}")
        stream.write(("\r" + line + "   ") if tty else line + "\n")
        stream.flush()

    return show


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    from hil.plant.standalone import Plant, PlantOptions

    rig = Rig.load(args.rig)
    scenario = Scenario.load(args.scenario)
    if args.duration is not None and args.duration <= 0:
        raise ConfigError("--duration", "value", "must be positive")
    if args.wait <= 0:
        raise ConfigError("--wait", "value", "must be positive")
    seed = scenario.seed if args.seed is None else args.seed
    out = Path(args.out) if args.out else Path("runs") / f"plant-{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    status = None if args.quiet else _status_printer(sys.stderr)
    RealtimeOptions(cpus=args.cpus, board_cpus=args.board_cpus).validate()  # a CPU the machine lacks: one line
    # where the boards start is checked against the CPUs this process may use before --cpus narrows them
    boards_on, on_boards = board_placement(RealtimeOptions(board_cpus=args.board_cpus))
    placed = [*(apply(RealtimeOptions(cpus=args.cpus)) if args.cpus is not None else []),
              *([on_boards] if on_boards else [])]
    for option, ok, message in placed:
        print(applied_line(option, ok, message, of="plant"), flush=True)
    plant = Plant(PlantOptions(scenario=scenario, rig=rig, seed=seed, out_dir=out, duration_s=args.duration,
                               wait_s=args.wait, record=not args.no_record,
                               announce=lambda line: print(line, flush=True), note=_say, status=status,
                               criteria=parse_criteria_option(args.criteria), board_cpus=boards_on,
                               realtime=placed))
    started = time.monotonic()
    try:
        plant.start()
    except LinkError as e:
        _say(f"hil plant: a board failed: {e}")
        return EXIT_RIG_FAILED
    summary = plant.run()
    if status and sys.stderr.isatty():
        sys.stderr.write("\n")
    if summary["host_came_after_s"] is None and not summary["interrupted"]:
        _say(f"hil plant: {summary['rig_problems'][0]}")  # no host came: one line, nothing to score
        return EXIT_RIG_FAILED
    print(format_summary(summary))
    st = summary["system_tracks"]
    if st["received"]:
        print(f"\ntracking scored by the plant from {st['updates_scored']} CAT062 updates "
              f"({st['received']:,} track records from {st['sender']})")
    else:
        print("\nno system tracks came (ASTERIX CAT062 to "
              f"{st['where']}): tracking is not scored, outcomes are")
    print(f"\nrun folder: {out}")
    if args.junit:
        write_junit(args.junit, f"hil plant {scenario.name} seed {seed}", summary["verdict"],
                    time.monotonic() - started)
        print(f"JUnit: {args.junit}")
    return exit_status(summary)
