"""When the host asks fire control again: when a confirmed track took one of this iteration's plots, or the confirmed
set changed; plots that fed only tentative tracks (clutter, mostly) wait for fire control's own period."""

from __future__ import annotations

import numpy as np

from hil.ext.tracker_types import TrackSnapshot, TrackStatus
from hil.host.host import Host
from hil.host.plugins import make_fire_control
from hil.scenario import Scenario
from tests.helpers import ShownTracks

CONFIRMED, TENTATIVE = int(TrackStatus.CONFIRMED), int(TrackStatus.TENTATIVE)


def snapshot(rows: list[tuple[int, int, float]]) -> TrackSnapshot:
    """Rows (track id, status, time of its newest plot) as a snapshot."""
    n = len(rows)
    ids, status = np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int8)
    return TrackSnapshot(ids, status, np.zeros((n, 6)), np.zeros((n, 6, 6)), np.array([r[2] for r in rows]),
                         np.full(n, -1, np.int32), np.ones(n, np.int32))


def test_only_plots_of_confirmed_tracks_and_changes_of_the_confirmed_set_are_news() -> None:
    sc = Scenario.load("raid")
    tracker = ShownTracks(snapshot)
    host = Host(sc, tracker, make_fire_control(sc, None))
    tracker.rows = [(1, CONFIRMED, 1.0), (2, TENTATIVE, 1.0)]
    host.fresh_plot_times = np.array([1.0])
    assert host.has_news()  # a confirmed track appeared and took a plot
    host.fresh_plot_times = np.empty(0)
    assert not host.has_news()  # no plots: nothing new
    tracker.rows = [(1, CONFIRMED, 1.0), (2, TENTATIVE, 2.0), (3, TENTATIVE, 2.0)]
    host.fresh_plot_times = np.array([2.0])
    assert not host.has_news()  # clutter fed tentative tracks only
    tracker.rows = [(1, CONFIRMED, 3.0), (2, TENTATIVE, 2.0)]
    host.fresh_plot_times = np.array([3.0])
    assert host.has_news()  # the confirmed track was updated
    tracker.rows = [(1, CONFIRMED, 3.0), (2, CONFIRMED, 4.0)]
    host.fresh_plot_times = np.array([4.0])
    assert host.has_news()  # track 2 confirmed
    tracker.rows = [(2, CONFIRMED, 4.0)]
    host.fresh_plot_times = np.array([3.5])
    assert host.has_news()  # track 1 dropped: the confirmed set changed
