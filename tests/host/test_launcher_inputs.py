"""What fire control is told of the launchers (LauncherKeeper.inputs): each as its board last reported it, the same
answer reused while nothing changed, a new one as soon as a status, a lost link or a fire on its way changes it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hil.clock import VirtualClock
from hil.drivers.launcher_link import LauncherStatus, State
from hil.host.launchers import LauncherKeeper
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
