"""`hil host`: hil's own host (the system under test) against a plant running in another process (`hil plant`).

The rig file `hil plant` writes says where its boards listen and where it takes system tracks (plant = "external",
system_tracks = "udp://..."): this host opens those boards, never stimulates a radar or flies an interceptor, and
publishes its system tracks as ASTERIX CAT062 for the plant to score. It writes its own run folder (latency per
stage, decisions, the recording of its links); the outcomes are in the plant's.
"""

from __future__ import annotations

import argparse

from hil.commands import run
from hil.errors import ConfigError
from hil.rig import Rig


def add_arguments(p: argparse.ArgumentParser) -> None:
    run.add_arguments(p, plant_elsewhere=True)
    p.set_defaults(time_mode="real")


def main(args: argparse.Namespace) -> int:
    rig = Rig.load(args.rig)
    if rig.plant != "external":
        raise ConfigError(rig.source, "plant", 'hil host needs the rig file hil plant wrote (plant = "external"); '
                                               "for a run with its own plant use hil run")
    if args.time_mode != "real":
        raise ConfigError("--time", "value", "hil host runs in real time: the plant is another process")
    return run.main(args)
