"""The `hil` command: run, rig check, bench, replay, track, firmware, schema."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable

from hil.errors import HilError

# command -> (module, help); each module offers add_arguments(parser) and main(args) -> int
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("hil.run_command", "drive a scenario through the whole chain and write a run folder"),
    "bench": ("hil.bench", "latency benchmark of the chain (and --kernels) with the machine's floor"),
    "replay": ("hil.replay", "feed a recording back through the kernels and report changed decisions"),
    "track": ("hil.offline_track", "track recorded plots offline (CSV in, CSV out)"),
    "firmware": ("hil.firmware", "build the AVR firmware or run it under simavr"),
    "schema": ("hil.config_schema", "print the JSON Schema of a scenario or rig file, for editors"),
}
RIG_COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("hil.rig_check", "open every link of a rig and prove it: identity, clock, registers"),
}


def _add(sub: argparse._SubParsersAction, name: str, module: str, help_text: str) -> None:
    try:
        mod = importlib.import_module(module)
    except ImportError as e:  # a command whose optional parts are missing still shows in --help
        p = sub.add_parser(name, help=f"{help_text} [unavailable: {e}]")
        p.set_defaults(func=_unavailable(name, str(e)))
        return
    p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip().splitlines()[0])
    mod.add_arguments(p)
    p.set_defaults(func=mod.main)


def _unavailable(name: str, why: str) -> Callable[[argparse.Namespace], int]:
    def run(_: argparse.Namespace) -> int:
        print(f"hil {name}: unavailable: {why}", file=sys.stderr)
        return 2

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hil", description="sensor-to-shooter hardware-in-the-loop testbed")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        _add(sub, name, module, help_text)
    rig = sub.add_parser("rig", help="rig commands (check)")
    rig_sub = rig.add_subparsers(dest="rig_command", required=True)
    for name, (module, help_text) in RIG_COMMANDS.items():
        _add(rig_sub, name, module, help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from hil.drivers.modbus_rtu import quiet_pymodbus

    quiet_pymodbus(verbose=args.verbose > 0)  # pymodbus speaks through our logger, no frame dumps unless -v
    try:
        return int(args.func(args))
    except HilError as e:
        print(f"hil: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
