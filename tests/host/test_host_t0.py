"""The t0 of a fire (the detection behind its track's newest plot) is found whether that plot came this loop
iteration or earlier, from one radar or several, and plot records are never read from a refilled batch."""

from __future__ import annotations

from typing import Any

import numpy as np

from hil.drivers.plot_batch import PlotBatch
from hil.host.host import NO_T0, PLOT_T0_KEPT, Host, RadarPoll, build_host
from hil.scenario import Scenario

START_S = 1000.0  # host seconds of run time 0


def batch(times_s: list[float], sensor: int = 0) -> PlotBatch:
    """Plots at these run times (host times START_S later), received at their time plus 1 ms."""
    b = PlotBatch.empty(16)
    b.n = len(times_s)
    b.t_s[: b.n] = np.array(times_s) + START_S
    b.sensor[: b.n] = sensor
    b.range_m[: b.n] = 20_000.0
    b.azimuth_rad[: b.n] = np.linspace(0.1, 0.2, b.n)
    b.elevation_rad[: b.n] = 0.01
    b.range_rate_mps[: b.n] = np.nan
    b.mode3a[: b.n] = -1
    b.host_rx_ns[: b.n] = ((np.array(times_s) + START_S + 0.001) * 1e9).astype(np.int64)
    return b


def host(records: Any = None) -> Host:
    h = build_host(Scenario.load("raid"))
    h.start_ns = int(START_S * 1e9)
    h.records = records
    return h


def expected_t0(t_s: float) -> int:
    return int(np.int64((t_s + START_S) * 1e9))


def test_a_plot_of_this_iteration_or_an_earlier_one_gives_its_t0_and_uncertainty() -> None:
    h = host()
    assert h.take_plots([RadarPoll(0, batch([1.0, 1.0, 1.25]), [], 5e5)])
    assert h._t0_of(1.25) == (expected_t0(1.25), 500_000)  # this iteration's
    h.bookkeeping()
    two = [RadarPoll(0, batch([2.0]), [], 7e5), RadarPoll(1, batch([1.5, 2.5], sensor=1), [], 9e5)]
    assert h.take_plots(two)
    assert h._t0_of(1.0) == (expected_t0(1.0), 500_000)  # remembered from the iteration before
    assert h._t0_of(1.5) == (expected_t0(1.5), 900_000)  # several radars: each plot keeps its own radar's
    assert h._t0_of(2.0) == (expected_t0(2.0), 700_000)
    assert h._t0_of(3.0) == (0, NO_T0)  # never seen
    assert h.iteration_t1_ns == int((2.5 + START_S + 0.001) * 1e9)
    assert not h.take_plots([RadarPoll(0, None, [], 0.0)])  # an iteration without plots
    assert not len(h.fresh_plot_times) and h._t0_of(2.5) == (expected_t0(2.5), 900_000)


def test_a_fire_order_takes_the_t0_the_host_keeps() -> None:
    """The fire orders' kernel finds a track's newest plot among this iteration's plots with the t0 and uncertainty
    the host's own lookup gives; a plot not among them is left to the host's memory (row -1)."""
    h = host()
    assert h.take_plots([RadarPoll(0, batch([1.0, 1.25]), [], 5e5)])
    h.bookkeeping()
    assert h.take_plots([RadarPoll(0, batch([2.0]), [], 7e5), RadarPoll(1, batch([1.5, 2.5], sensor=1), [], 9e5)])
    assert h._fresh_t0 is not None
    t_abs, unc = h._fresh_t0
    newest = [1.0, 1.5, 2.0, 2.5, 3.0]  # each track's newest plot: remembered, this iteration's, never seen
    n = len(newest)
    orders = h._fire_orders(np.arange(n, dtype=np.int32), np.zeros(n, np.int32), np.zeros((n, 3)), np.ones(n),
                            np.arange(n, dtype=np.int64), np.full(n, 2, np.int8), np.zeros(n, bool),
                            np.zeros(n, bool), np.array(newest), h.fresh_plot_times, t_abs, 0.0, unc, h._sites)
    fresh = set(h.fresh_plot_times.tolist())
    for (_, _, _, _, why, plot_t, row, t0_ns, unc_ns, *_), t in zip(orders, newest, strict=True):
        assert why == 0 and plot_t == t and (row >= 0) == (t in fresh)
        if row >= 0:
            assert (t0_ns, unc_ns) == h._t0_of(t)


def test_the_memory_keeps_the_newest_plot_times() -> None:
    h = host()
    for k in range(PLOT_T0_KEPT // 10 + 2):
        h.take_plots([RadarPoll(0, batch([k + i / 16 for i in range(12)]), [], 1e5)])
        h.bookkeeping()
    assert len(h.plot_t0) == PLOT_T0_KEPT
    newest = max(h.plot_t0)
    assert h._t0_of(newest) == (expected_t0(newest), 100_000) and h._t0_of(0.0) == (0, NO_T0)


class Plots:
    """A record sink that keeps the plot times it is given."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def plots(self, t_s: Any, *_: Any) -> None:
        self.times += t_s.tolist()

    def decision(self, record: dict[str, Any]) -> None:
        pass


def test_plot_records_are_the_plots_taken_even_when_the_batch_is_refilled_before_they_are_written() -> None:
    for before_next_poll in (True, False):
        sink = Plots()
        h = host(sink)
        h.records_before_next_poll = before_next_poll
        b = batch([1.0, 1.5])
        h.take_plots([RadarPoll(0, b, [], 1e5)])
        if before_next_poll:  # as the runtime does: the records are written before the link is polled again
            h.bookkeeping()
        b.t_s[: b.n] = START_S + 9.0  # the next poll refills the batch
        h.bookkeeping()
        assert sink.times == [1.0, 1.5], before_next_poll
