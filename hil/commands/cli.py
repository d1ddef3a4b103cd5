"""The `hil` command: run, plant, host, rig check, bench, replay, track, firmware, schema."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable

from hil.errors import HilError

# command -> (module, help); each module offers add_arguments(parser) and main(args) -> int
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("hil.commands.run", "drive a scenario through the whole chain and write a run folder"),
    "plant": ("hil.commands.plant", "run the plant alone (truth, boards, rounds) and score any host on its boards"),
    "host": ("hil.commands.host", "run hil's own host against a plant in another process (hil plant)"),
    "campaign": ("hil.campaign.command", "many seeded runs over a parameter grid, on this machine or a Dask cluster"),
    "bench": ("hil.measure.bench", "latency benchmark of the chain (and --kernels) with the machine's floor"),
    "replay": ("hil.records.replay", "feed a recording back through the kernels and report changed decisions"),
    "track": ("hil.commands.track", "track recorded plots offline (CSV in, CSV out)"),
    "firmware": ("hil.plant.firmware", "build the AVR firmware or run it under simavr"),
    "schema": ("hil.config_schema", "print the JSON Schema of a scenario or rig file, for editors"),
}
RIG_COMMANDS: dict[str, tuple[str, str]] = {
    "check": ("hil.commands.rig_check", "open every link of a rig and prove it: identity, clock, registers"),
}


class _Version(argparse.Action):
    """--version: the installed distribution's version, looked up only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings: list[str], dest: str, **_: object) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0,
                         help="print hil's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("hil")
        except PackageNotFoundError:  # run from a source tree that was never installed
            text = "unknown (not installed)"
        print(f"hil {text}")
        parser.exit()


def _verbose(p: argparse.ArgumentParser, dest: str) -> None:
    p.add_argument("-v", "--verbose", dest=dest, action="count", default=0,
                   help="more log output (-vv for debug), before or after the command")


def _add(sub: argparse._SubParsersAction, name: str, module: str, help_text: str, load: bool) -> None:
    """One subcommand; its module (and what it imports) is loaded only when it is the one being run."""
    if not load:
        _verbose(sub.add_parser(name, help=help_text), "verbose_after")
        return
    try:
        mod = importlib.import_module(module)
    except ImportError as e:  # a command whose optional parts are missing still answers, with why
        p = sub.add_parser(name, help=f"{help_text} [unavailable: {e}]")
        p.set_defaults(func=_unavailable(name, str(e)))
        return
    p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip().splitlines()[0])
    _verbose(p, "verbose_after")
    mod.add_arguments(p)
    p.set_defaults(func=mod.main)


def _unavailable(name: str, why: str) -> Callable[[argparse.Namespace], int]:
    def run(_: argparse.Namespace) -> int:
        print(f"hil {name}: unavailable: {why}", file=sys.stderr)
        return 2

    return run


def _named_command(argv: list[str]) -> list[str]:
    """The command words argv names (["run"], ["rig", "check"]) or []: hil's own options take no value, so the
    first word that is not an option is the command."""
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return []
    if words[0] == "rig":
        return words[:2]
    return words[:1]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command argv names is imported (all of them when argv is None), so --help is quick."""
    named = None if argv is None else _named_command(argv)
    parser = argparse.ArgumentParser(prog="hil", description="sensor-to-shooter hardware-in-the-loop testbed")
    _verbose(parser, "verbose")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, help_text) in COMMANDS.items():
        _add(sub, name, module, help_text, named is None or named[:1] == [name])
    rig = sub.add_parser("rig", help="rig commands (check)")
    _verbose(rig, "verbose_rig")
    rig_sub = rig.add_subparsers(dest="rig_command", required=True)
    for name, (module, help_text) in RIG_COMMANDS.items():
        _add(rig_sub, name, module, help_text, named is None or named == ["rig", name])
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    verbose = args.verbose + getattr(args, "verbose_rig", 0) + getattr(args, "verbose_after", 0)
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from hil.drivers.modbus_rtu import quiet_pymodbus

    quiet_pymodbus(verbose=verbose > 0)  # pymodbus speaks through our logger, no frame dumps unless -v
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
