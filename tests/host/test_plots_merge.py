"""One iteration's plots go to the tracker in one time order, whatever the radars sent: merge_in_time_order against
the plain definition (every batch's rows concatenated, then a stable sort by time)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.drivers.plot_batch import PlotBatch
from hil.host.plots import MERGED_COLUMNS, merge_in_time_order


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from([1.0, 1.5, 2.0, 2.0, 3.25]), max_size=6), min_size=1, max_size=3),
       st.booleans())
def test_merged_plots_are_every_plot_in_a_stable_time_order(times: list[list[float]], sort_each: bool) -> None:
    batches = []
    for k, ts in enumerate(times):
        b = PlotBatch.empty(8)
        b.n = len(ts)
        b.t_s[: b.n] = sorted(ts) if sort_each else ts
        b.sensor[: b.n] = k
        b.range_m[: b.n] = np.arange(b.n) + 100.0 * k  # which plot is which
        batches.append(b)
    cols, order = merge_in_time_order(batches)
    every = {name: np.concatenate([getattr(b, name)[: b.n] for b in batches]) for name in MERGED_COLUMNS}
    expected = np.argsort(every["t_s"], kind="stable")
    np.testing.assert_array_equal(order, expected)
    for name in MERGED_COLUMNS:
        np.testing.assert_array_equal(cols[name], every[name][expected])
    in_place, same_order = merge_in_time_order(batches, in_place=True)  # the host's fire path: no copy if it can
    np.testing.assert_array_equal(same_order, expected)
    for name in MERGED_COLUMNS:
        np.testing.assert_array_equal(in_place[name], every[name][expected])
    batches[0].t_s[:] = -1.0  # the merged columns are the caller's: the next poll refills the batch
    assert (cols["t_s"] >= 0).all()
