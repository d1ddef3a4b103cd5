"""The host's own interlock holds whatever fire control is plugged in: an assignment at a friendly, a neutral, a
tentative track or a row that does not exist never becomes a fire command."""

from __future__ import annotations

from typing import Any

import numpy as np

from hil.ext.firecontrol_types import Assignments, Refusals
from hil.host.host import Host
from hil.host.plugins import make_tracker
from hil.host.seams import CONFIRMED, FireControlInputs, LauncherInputs
from hil.rig import Rig
from hil.runtime import RunOptions, run_chain
from hil.scenario import Scenario


class FireAtEverything:
    """A reckless fire control: every track it is shown, from the first launcher, plus one row that is not there."""

    def decide(self, inputs: FireControlInputs) -> Any:
        n = len(inputs.tracks.track_id)
        rows = np.arange(n + 1, dtype=np.int32)  # the last row does not exist
        aim = np.zeros((n + 1, 3))
        aim[:n] = inputs.tracks.state[:, :3]
        return _Decision(Assignments(rows, np.zeros(n + 1, np.int32), aim, np.full(n + 1, 10.0),
                                     np.full(n + 1, 0.9), np.ones(n + 1)))


class _Decision:
    def __init__(self, assignments: Assignments) -> None:
        self.assignments = assignments
        empty = np.zeros(0, np.int32)
        self.refusals = Refusals(empty, empty, np.zeros(0, np.int8), empty)

    def explain(self, i: int) -> dict[str, Any]:
        return {"t_s": 0.0, "track": i, "launchers": []}


def reckless(scenario: Scenario, **_: Any) -> FireAtEverything:
    return FireAtEverything()


def test_orders_only_at_confirmed_tracks_without_a_friendly_or_neutral_code() -> None:
    sc = Scenario.load("safety/crossing")
    host = Host(sc, make_tracker(sc), FireAtEverything())
    from hil.plant.radars import scan_plots

    launchers = LauncherInputs(np.ones(len(sc.launchers), bool), np.ones(len(sc.launchers), bool),
                               np.full(len(sc.launchers), 4, np.int32), np.zeros(len(sc.launchers)),
                               np.zeros(len(sc.launchers), np.int32))
    ordered: set[int] = set()
    prev = [float("nan")] * len(sc.radars)
    for t_end, i, plots, crossings in scan_plots(sc, step_s=0.05):
        if t_end > 40.0:
            break
        if len(plots):
            host.tracker.update(plots.t_s, np.full(len(plots), i, np.int32), plots.range_m, plots.azimuth_rad,
                                plots.elevation_rad, plots.range_rate_mps, plots.mode3a)
        for c in crossings:
            if prev[i] == prev[i]:
                host.tracker.sector_swept(i, c.t_s, prev[i], c.azimuth_rad)
            prev[i] = c.azimuth_rad
        view = host.fire_control_view(t_end)
        orders = host.decide(t_end, launchers)
        host.pending.clear()
        if view is None:
            continue
        tracks, ident = view
        allowed = {int(tid) for tid, ok in zip(tracks.track_id, (tracks.status == CONFIRMED) & ~ident.friendly
                                               & ~ident.neutral, strict=True) if ok}
        for o in orders:
            assert o.track_id in allowed
            ordered.add(o.track_id)
    reasons = {r["reason"] for r in host.refusals.values()}
    assert ordered, "the reckless fire control fired at nothing: the scene did not test the interlock"
    assert {"HOST_FRIENDLY", "HOST_BAD_ASSIGNMENT"} <= reasons
    assert "HOST_NEUTRAL" in reasons or not sc.neutral_codes


def test_a_reckless_fire_control_takes_no_friendly_in_a_run(tmp_path: Any, monkeypatch: Any) -> None:
    """Through the whole chain (virtual time): the plant counts no round that took a friendly or a neutral."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "reckless_fc.py").write_text("from tests.host.test_host_interlock import reckless\n")
    summary = run_chain(RunOptions(scenario=Scenario.load("safety/crossing"), rig=Rig.load("mock"), seed=1,
                                   time_mode="virtual", duration_s=40, out_dir=None, record=False, report=False,
                                   fire_control="reckless_fc:reckless"))
    assert summary["host"]["fire_control"] == "reckless_fc:reckless"
    assert summary["friendly_engagements"] == 0
    assert summary["launches"] > 0
    assert {"HOST_FRIENDLY", "HOST_BAD_ASSIGNMENT"} <= {r["reason"] for r in summary["refusals"]}
