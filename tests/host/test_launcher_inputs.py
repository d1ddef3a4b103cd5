"""What fire control is told of the launchers (LauncherKeeper.inputs): each as its board last reported it, the same
answer reused while nothing changed, a new one as soon as a status, a lost link or a fire on its way changes it."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from hil.clock import RealClock, VirtualClock
from hil.drivers.launcher_link import LauncherStatus, State
from hil.host.launchers import LauncherKeeper
from hil.host.seams import LauncherInputs
from hil.rig import Rig
from hil.scenario import Scenario
from tests.helpers import RAID


def status(**changes: object) -> LauncherStatus:
    ready = LauncherStatus(state=State.ARMED, armed=True, ready=True, reloading=False, watchdog_tripped=False,
                           fault=False, rounds=4, last_fire_seq=0, launch_count=0, last_fire_track=0, last_reject=0,
                           reject_count=0, fault_code=0, board_time_us=0, last_launch_board_us=0,
                           last_cmd_board_us=0, host_ns=0)
    return dataclasses.replace(ready, **changes)


async def _nothing(_: int) -> None:
    return None


def test_the_launchers_as_last_reported_and_rebuilt_only_on_a_change() -> None:
    scenario = Scenario.load(RAID)
    keeper = LauncherKeeper(scenario, Rig.load("mock"), VirtualClock(), lambda ns: ns / 1e9, lambda *a, **k: None,
                            _nothing)
    assert not keeper.inputs().armed.any()  # no status read yet: nothing armed
    keeper.state[0].status = status()
    first = keeper.inputs()
    assert first.armed.tolist()[:2] == [True, False] and first.rounds[0] == 4 and first.ready[0]
    assert keeper.inputs() is first  # nothing changed: the same answer, not built again
    keeper.state[0].status = status()  # a new read, the same status: still the same
    assert keeper.inputs() is first
    with pytest.raises(ValueError):
        first.ready[0] = False  # shared between decisions: nobody may write it
    keeper.state[0].busy = True  # a fire on its way to it: not ready
    assert not keeper.inputs().ready[0]
    keeper.state[0].busy = False
    keeper.state[0].status = status(rounds=3, ready=False)  # fired: one round less, reloading
    after = keeper.inputs()
    assert after.rounds[0] == 3 and not after.ready[0] and after.reload_left_s[0] == scenario.launchers[0].reload_s
    keeper.state[0].lost = True  # its link lost: nothing of it counts
    assert not keeper.inputs().armed[0] and np.array_equal(keeper.inputs().rounds, np.zeros(len(keeper.state)))


def test_a_heartbeat_tick_builds_what_fire_control_is_told_before_a_fire_asks() -> None:
    """A status read changes what fire control is told: it is built by the tick that read it (off the path of the fire
    decided next), so the decision only takes it."""
    scenario = Scenario.load(RAID)
    keeper = LauncherKeeper(scenario, Rig.load("mock"), RealClock(), lambda ns: ns / 1e9, lambda *a, **k: None,
                            _nothing)

    class Link:
        lost, unconfirmed_seq = False, 0

        async def heartbeat(self) -> None:
            return None

        async def read_status(self) -> LauncherStatus:
            return status(rounds=3)

    keeper.links = [Link() for _ in scenario.launchers]

    async def one_tick() -> None:
        ticking = asyncio.ensure_future(keeper.keep(0))
        for _ in range(1000):  # a second at most
            if keeper.state[0].status is not None:
                break
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.001)
        ticking.cancel()
        assert keeper.state[0].status is not None, "the tick read no status"

    asyncio.run(one_tick())

    def built_on_the_fire_path() -> LauncherInputs:
        raise AssertionError("what fire control is told was built when the decision asked")

    keeper._built_inputs = built_on_the_fire_path  # type: ignore[method-assign]
    told = keeper.inputs()
    assert told.rounds[0] == 3 and told.armed[0] and told.ready[0]
