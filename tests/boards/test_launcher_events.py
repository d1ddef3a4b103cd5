"""Launch events leave the launcher process on its stdout, one JSON line per launch, and never block the board."""

from __future__ import annotations

import asyncio
import math
import sys
import time

import pytest

from hil.drivers.launcher_link import LauncherLink
from hil.emulators.launcher import Launch, LaunchEvents
from hil.procutil import Child
from tests.helpers import RPI_FIRMWARE

pytestmark = pytest.mark.timeout(120)
RPI = RPI_FIRMWARE / "launcher.py"


def poll_until(events: LaunchEvents, count: int, timeout_s: float = 5.0) -> list[Launch]:
    seen: list[Launch] = []
    end = time.monotonic() + timeout_s
    while len(seen) < count and time.monotonic() < end:
        seen += events.poll()
        time.sleep(0.01)
    return seen


@pytest.mark.parametrize("entry", ["mock", "rpi"])
def test_each_launch_is_one_json_line_with_the_aim_the_wire_carried(entry: str) -> None:
    args = ["--tcp", "127.0.0.1:0", "--reload-ms", "0"]
    board = (Child.python("hil.emulators.launcher", args, name="launcher") if entry == "mock"
             else Child([sys.executable, str(RPI), *args], name="rpi launcher"))
    try:
        assert board.proc.stdout is not None
        events = LaunchEvents(board.proc.stdout.fileno())

        async def go() -> list[int]:
            link = LauncherLink.from_url("tcp://" + board.info["tcp"], timeout_s=1.0)
            await link.connect()
            await link.arm()
            seqs = []
            for i, (az_deg, rng, tgo) in enumerate(((10.0, 8000.0, 12.5), (200.25, 31_000.5, 40.0))):
                r = await link.fire(100 + i, math.radians(az_deg), math.radians(3.0), rng, tgo)
                assert r.accepted
                seqs.append(r.seq)
            bad = await link.fire(9, 0.0, math.radians(95.0), 1000.0, 1.0)  # refused by the link: no event
            assert not bad.sent
            link.close()
            return seqs

        seqs = asyncio.run(go())
        launches = poll_until(events, 2)
        assert [launch.seq for launch in launches] == seqs
        assert [launch.track for launch in launches] == [100, 101]
        assert [launch.azimuth_cdeg for launch in launches] == [1000, 20025]
        assert [launch.range_m for launch in launches] == [8000, 31_000]  # metres on the wire
        assert [launch.tgo_s for launch in launches] == [12.5, 40.0]
        assert math.isclose(launches[1].azimuth_rad, math.radians(200.25))
        assert launches[0].t_us < launches[1].t_us
        assert events.poll() == [] and events.ignored == 0
    finally:
        board.stop()


def test_a_launcher_whose_stdout_nobody_reads_keeps_answering_and_loses_no_event() -> None:
    # 600 launch lines are about 140 kB: more than a pipe holds, so the board would hang on a blocking print
    board = Child.python("hil.emulators.launcher", ["--tcp", "127.0.0.1:0", "--reload-ms", "0", "--rounds", "1000",
                                                    "--watchdog-ms", "10000"], name="launcher")
    try:
        assert board.proc.stdout is not None

        async def go() -> int:
            link = LauncherLink.from_url("tcp://" + board.info["tcp"], timeout_s=2.0)
            await link.connect()
            await link.arm()
            for i in range(600):
                if i % 100 == 0:
                    await link.heartbeat()
                r = await link.fire(i, 0.5, 0.1, 5000.0, 9.0)
                assert r.accepted, r.reason
            status = await link.read_status()
            link.close()
            return status.launch_count

        assert asyncio.run(go()) == 600
        events = LaunchEvents(board.proc.stdout.fileno())
        launches = poll_until(events, 600, timeout_s=20.0)
        assert [launch.track for launch in launches] == list(range(600))
    finally:
        board.stop()
