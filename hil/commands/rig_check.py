"""`hil rig check`: open every link of a rig and prove it before a run — identity, clock, registers, data flowing."""

from __future__ import annotations

import argparse
import asyncio
import select
import time
from dataclasses import dataclass
from typing import Any

from hil.clock import RealClock
from hil.commands.run import DEFAULT_SCENARIO
from hil.errors import HilError
from hil.plant.boards import Boards, bring_up
from hil.plant.radars import config_from_spec
from hil.rig import Rig
from hil.scenario import Scenario
from hil.units import duration_text

SYNC_SAMPLES = 16


@dataclass
class Check:
    board: str
    check: str
    ok: bool
    detail: str


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rig", default=None, help="a shipped rig's name (mock, simavr) or a rig file (default: mock)")
    p.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help="scenario (name or file) whose radars and launchers name the boards to check (default: raid)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for each answer")


def clock_detail(sync: Any) -> str:
    """The board clock's offset from the host's (its epoch differs, so seconds are common) and the round trips."""
    offset = duration_text(sync.offset_ns / 1e3)
    return (f"offset {'' if offset.startswith('-') else '+'}{offset} ± {duration_text(sync.uncertainty_ns / 1e3)}, "
            f"round trip min {duration_text(sync.round_trip_min_ns / 1e3)}, "
            f"median {duration_text(sync.round_trip_median_ns / 1e3)}")


async def _check_radar(name: str, link: Any, spec: Any, timeout_s: float) -> list[Check]:
    out = []
    try:
        ident = await asyncio.to_thread(link.identify, timeout_s)
        out.append(Check(name, "identity", True, str(ident)))
    except HilError as e:
        return [Check(name, "identity", False, str(e))]
    for _ in range(SYNC_SAMPLES):
        link.request_time_sync()
        # read the answer the moment it lands: the round trip is measured up to our read
        await asyncio.to_thread(select.select, [link.fileno()], [], [], timeout_s)
        link.poll()
        await asyncio.sleep(0.005)
    sync = link.clock_sync
    if sync.synced:
        out.append(Check(name, "clock", True, clock_detail(sync)))
    else:
        out.append(Check(name, "clock", False, "no time-sync answer"))
    link.send_config(config_from_spec(spec, seed=1))
    deadline = time.monotonic() + max(timeout_s, spec.scan_period_s / spec.sectors * 3)
    sectors = 0
    while time.monotonic() < deadline and sectors == 0:
        await asyncio.sleep(0.01)
        _, services = link.poll()
        sectors += len(services)
    out.append(Check(name, "sweep", sectors > 0,
                     "CAT034 sector messages arriving" if sectors else "no CAT034 message after configuring"))
    rejected = sum(link.counters.summary()["rejected"].values())
    out.append(Check(name, "frames", rejected == 0, f"{rejected} rejected frames" if rejected else "no rejected frame"))
    return out


async def _check_launcher(name: str, link: Any) -> list[Check]:
    out = []
    try:
        await link.connect()
        ident = await link.identify()
        out.append(Check(name, "identity", True, str(ident)))
        status = None
        for _ in range(SYNC_SAMPLES):
            status = await link.read_status()
        sync = link.clock_sync
        out.append(Check(name, "clock", True, clock_detail(sync)))
        assert status is not None
        safe = not status.armed
        out.append(Check(name, "registers", safe,
                         f"state {status.state.name}, rounds {status.rounds}, launches {status.launch_count}, "
                         f"last reject {status.reject_name}"
                         + (", watchdog tripped since the last arm" if status.watchdog_tripped else "")
                         + ("" if safe else " — ARMED before any run: not safe")))
    except HilError as e:
        out.append(Check(name, "link", False, str(e)))
    finally:
        link.close()
    return out


async def check_rig(rig: Rig, scenario: Scenario, timeout_s: float) -> list[Check]:
    clock = RealClock()
    try:
        boards: Boards = bring_up(scenario, rig, clock, virtual=False, recorder=None, seed=1)
    except HilError as e:
        return [Check("rig", "bring-up", False, str(e))]
    results: list[Check] = []
    try:
        for spec, link in zip(scenario.radars, boards.radars, strict=True):
            results += await _check_radar(spec.name, link, spec, timeout_s)
        for site, llink in zip(scenario.launchers, boards.launchers, strict=True):
            results += await _check_launcher(site.name, llink)
    finally:
        boards.close()
    return results


def format_table(results: list[Check]) -> str:
    width = max([len(r.board) for r in results] + [5])
    lines = [f"{'board':<{width}}  {'check':<10}  result  detail"]
    lines += [f"{r.board:<{width}}  {r.check:<10}  {'pass' if r.ok else 'FAIL':<6}  {r.detail}" for r in results]
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    rig = Rig.load(args.rig)
    scenario = Scenario.load(args.scenario)
    results = asyncio.run(check_rig(rig, scenario, args.timeout))
    print(format_table(results))
    failed = [r for r in results if not r.ok]
    print(f"\nrig check: {len(results) - len(failed)} checks ok, {len(failed)} failed")
    return 1 if failed else 0
