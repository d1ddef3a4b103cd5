"""Launcher command round trip (checked fire block + launch record readback) over a pty pair and TCP.

Run `pytest tests/bench/bench_launcher.py --benchmark-enable`; with --benchmark-disable each case runs once
and checks the fire was accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from hil.drivers.launcher_link import LauncherLink
from hil.emulators.launcher import LaunchEvents
from hil.procutil import Child

pytestmark = pytest.mark.timeout(120)


Armed = tuple[asyncio.AbstractEventLoop, LauncherLink, LaunchEvents]


@pytest.fixture(params=["rtu", "tcp"])
def armed_link(request: pytest.FixtureRequest) -> Iterator[Armed]:
    children: list[Child] = []
    args = ["--reload-ms", "0", "--rounds", "65535", "--watchdog-ms", "10000"]
    if request.param == "rtu":
        cable = Child.python("hil.plant.nullmodem", [], name="cable")
        children.append(cable)
        children.append(Child.python("hil.emulators.launcher", ["--rtu", cable.info["a"], *args], name="launcher"))
        url = cable.info["b"]
    else:
        children.append(Child.python("hil.emulators.launcher", ["--tcp", "127.0.0.1:0", *args], name="launcher"))
        url = "tcp://" + children[-1].info["tcp"]
    stdout = children[-1].proc.stdout
    assert stdout is not None
    events = LaunchEvents(stdout.fileno())  # read as a run's plant does: an unread pipe slows the board down
    loop = asyncio.new_event_loop()
    link = LauncherLink.from_url(url, name=f"bench-{request.param}", timeout_s=1.0)
    loop.run_until_complete(link.connect())
    loop.run_until_complete(link.arm())
    try:
        yield loop, link, events
    finally:
        link.close()
        loop.close()
        for child in reversed(children):
            child.stop()


def test_fire_round_trip(benchmark: Any, armed_link: Armed) -> None:
    loop, link, events = armed_link
    results = []
    launched = []

    def feed() -> None:
        # keeps the board's watchdog fed and the link's status fresh, outside the timed part
        launched.extend(events.poll())
        loop.run_until_complete(link.heartbeat())
        loop.run_until_complete(link.read_status())

    def fire() -> None:
        results.append(loop.run_until_complete(link.fire(1, 0.5, 0.1, 5000.0, 10.0)))

    benchmark.pedantic(fire, setup=feed, rounds=300, iterations=1, warmup_rounds=5)
    assert results and all(r.accepted for r in results), [r.reason for r in results if not r.accepted][:3]
    launched.extend(events.poll())
    assert [launch.seq for launch in launched] == [r.seq for r in results]  # board launches equal host launches
    benchmark.extra_info["write_round_trip_us_median"] = sorted(r.round_trip_ns for r in results)[
        len(results) // 2] / 1000


def test_status_read(benchmark: Any, armed_link: Armed) -> None:
    loop, link, _ = armed_link
    status = benchmark(lambda: loop.run_until_complete(link.read_status()))
    assert status.armed
