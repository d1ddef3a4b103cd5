"""hil's host publishes its system tracks as ASTERIX CAT062 where the rig says, as a fire-control computer does."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from hil.drivers.cat062 import SystemTrackReceiver
from hil.rig import Rig
from hil.runtime import RunOptions, run_chain
from hil.scenario import Scenario


def test_the_host_publishes_its_tracks_as_cat062(tmp_path: Path) -> None:
    sc = Scenario.load("raid")
    origin = sc.origin_lla or (0.0, 0.0, 0.0)
    receiver = SystemTrackReceiver("udp://127.0.0.1:0", origin=origin)
    try:
        rig = dataclasses.replace(Rig.load("mock"), system_tracks=f"udp://127.0.0.1:{receiver.port}")
        summary = run_chain(RunOptions(scenario=sc, rig=rig, seed=1, time_mode="virtual", duration_s=20,
                                       out_dir=None, record=False, report=False))
        got = receiver.poll()
    finally:
        receiver.close()
    assert summary["system_tracks"]["datagrams_sent"] > 0 and summary["system_tracks"]["send_errors"] == 0
    assert len(got.track_number) > 0
    confirmed = got.status == 2
    assert confirmed.any()
    # the last update's confirmed tracks lie where the raid's aircraft are: within a few km of some true object
    truth = sc.truth().at(20.0)
    last = confirmed & (got.tod_s == got.tod_s.max())
    d = np.linalg.norm(got.state[last, None, :2] - truth.state[None, :, :2], axis=2).min(axis=1)
    assert np.median(d) < 2_000.0
