"""The fire command's request, compiled (hil.ext.fire_command), against its plain twin (hil.ext.reference
.fire_command: the Python it replaced on the fire path): the same bytes for every aim, None for every aim that
cannot be sent, whatever the floats (ties, a turn's edge, negative angles, NaN, infinities, the limits). And the
fire orders' fields: the host's interlock, the t0 behind each order and its time to go, tuple for tuple."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hil.drivers.launcher_link import FIRE_EL_MAX_CDEG, FIRE_EL_MIN_CDEG, RANGE_M_MAX
from hil.drivers.registers import FIRE_BLOCK
from hil.ext.fire_command import fire_orders, fire_request
from hil.ext.firecontrol_types import HOST_INTERLOCKS
from hil.ext.reference import fire_command as reference

# angles whose centidegrees are exact ties, a turn's edge from both sides, and plain floats of every size
ANGLES = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.integers(-72000, 72000).map(lambda c: math.radians((c + 0.5) / 100)),
                   st.sampled_from([0.0, -0.0, 2 * math.pi, -2 * math.pi, math.nextafter(2 * math.pi, 0), -1e-300,
                                    math.pi / 2, math.radians(90.005), 1e20]))
AMOUNTS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 70000).map(lambda v: v + 0.5),
                    st.sampled_from([0.0, -0.0, 65535.0, 65535.5, 65535.49, 655.35, 655.355, -0.5, -0.49]))


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 2**40), ANGLES, ANGLES, AMOUNTS, AMOUNTS, st.integers(1, 0xFFFF))
@example(17, 1.0, 0.2, 9000.0, 12.5, 3)
def test_the_request_is_the_python_one_byte_for_byte(track_id: int, az: float, el: float, rng: float, tgo: float,
                                                     seq: int) -> None:
    limits = (FIRE_BLOCK, FIRE_EL_MIN_CDEG, FIRE_EL_MAX_CDEG, RANGE_M_MAX)
    assert fire_request(track_id, az, el, rng, tgo, seq, *limits) == \
        reference.fire_request(track_id, az, el, rng, tgo, seq, *limits)


@st.composite
def decisions(draw: st.DrawFn) -> tuple[Any, ...]:
    """A decision's assignments (rows out of range too) over tracks of any status and identity, this iteration's
    plots (several at one time, a track's newest plot among them or not, uncertainties at and beyond NO_T0, NaN),
    and launchers of any rest azimuth and slew rate (0 too)."""
    n, n_l, n_plots = draw(st.integers(0, 8)), draw(st.integers(1, 3)), draw(st.integers(0, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    times = np.sort(rng.choice([1.0, 1.25, 1.5, 2.0], n_plots))
    last = rng.choice([1.0, 1.25, 1.5, 2.0, 0.75], n)
    m = draw(st.integers(0, 6))
    ti = np.array(draw(st.lists(st.integers(-1, n), min_size=m, max_size=m)), np.int32)
    li = np.array(draw(st.lists(st.integers(-1, n_l), min_size=m, max_size=m)), np.int32)
    aim = rng.normal(0.0, 20_000.0, (m, 3))
    aim[: m // 2, :2] = 0.0  # straight above a site: the azimuth of a zero vector
    uncs = st.sampled_from([0.0, 500_000.0, 2.0**62, 2.0**63, math.nan, 1e3 + 0.7])
    each = draw(st.booleans())
    unc_rows = np.array(draw(st.lists(uncs, min_size=n_plots, max_size=n_plots))) if each else None
    sites = np.column_stack([rng.normal(0, 5000.0, n_l), rng.normal(0, 5000.0, n_l), rng.uniform(-360, 720, n_l),
                             rng.choice([0.0, 30.0, 45.5], n_l), rng.uniform(0, 3, n_l)])
    return (ti, li, aim, rng.uniform(1, 60, m), np.arange(n, dtype=np.int64) * 7 + 1,
            rng.choice(np.array([1, 2], np.int8), n), rng.random(n) < 0.2, rng.random(n) < 0.2, last, times,
            1.7e9 + times + rng.normal(0, 1e-3, n_plots), draw(uncs), unc_rows, sites)


@settings(max_examples=500, deadline=None)
@given(decisions())
def test_the_fire_orders_are_the_python_ones_tuple_for_tuple(decision: tuple[Any, ...]) -> None:
    got, want = fire_orders(*decision), reference.fire_orders(*decision)
    assert got == want
    ti, li, *_ = decision
    status, friendly, neutral = decision[5], decision[6], decision[7]
    for k, t, launcher, _, why, *_ in got:  # the interlock, said plainly
        in_range = 0 <= ti[k] < len(status) and 0 <= li[k] < len(decision[13])
        expected = ("HOST_BAD_ASSIGNMENT" if not in_range else "HOST_FRIENDLY" if friendly[t] else
                    "HOST_NEUTRAL" if neutral[t] else "HOST_NOT_CONFIRMED" if status[t] != 2 else "")
        assert HOST_INTERLOCKS[why] == expected and (launcher == -1) == (not in_range)


def test_a_fire_order_s_time_to_go_is_delay_then_slew_then_flight() -> None:
    """A launcher at the origin resting north at 10 deg/s, 2 s of launch delay: an aim due east turns it 90 deg."""
    one = ([0], [0], [[5000.0, 0.0, 3000.0]], [12.0], [42], np.array([2], np.int8), [False], [False], [1.5],
           [1.5], [1.7e9 + 1.5], 400_000.0, None, [[0.0, 0.0, 0.0, 10.0, 2.0]])
    ((_, _, _, tid, why, plot_t, row, t0_ns, unc_ns, aim, tgo_s),) = fire_orders(*one)
    assert (tid, why, plot_t, row, unc_ns) == (42, 0, 1.5, 0, 400_000) and aim == (5000.0, 0.0, 3000.0)
    assert t0_ns == int((1.7e9 + 1.5) * 1e9) and tgo_s == pytest.approx(2.0 + 9.0 + 12.0)


def test_a_plug_in_s_rows_beyond_int32_are_refused_not_wrapped() -> None:
    """A fire control's int64 rows 2**32 and 2**32 + 1 would wrap onto track 0 and launcher 1 if narrowed."""
    rows = np.array([2**32, 0], np.int64), np.array([0, 2**32 + 1], np.int64)
    args: tuple[Any, ...] = (*rows, np.zeros((2, 3)), [1.0, 1.0], [5, 6], np.array([2, 2], np.int8),
                             [False, False], [False, False], [0.0, 0.0], [], [], 0.0, None, np.zeros((2, 5)))
    got = fire_orders(*args)
    assert [HOST_INTERLOCKS[why] for _, _, _, _, why, *_ in got] == ["HOST_BAD_ASSIGNMENT"] * 2
    assert got == reference.fire_orders(*args)
    beyond = ([2**64, -(2**70)], [0, 0], *args[2:])  # rows no int64 holds, as a plug-in's plain lists may give
    got = fire_orders(*beyond)
    assert [HOST_INTERLOCKS[why] for _, _, _, _, why, *_ in got] == ["HOST_BAD_ASSIGNMENT"] * 2
    assert got == reference.fire_orders(*beyond)


def test_arrays_that_disagree_are_one_clear_error() -> None:
    """Unequal rows, rows in two dimensions and an aim of two coordinates are refused whole, never read past."""
    one_track: tuple[Any, ...] = ([1], [2], [False], [False], [0.0], [], [], 0.0, None, [[0.0] * 5])
    for rows, launchers, aims in (([0, 1], [0], [[0.0, 0.0, 0.0]] * 2), ([[0], [0]], [[0], [0]], [[0.0] * 3] * 2),
                                  ([0, 0], [0, 0], np.zeros((2, 2)))):
        with pytest.raises(ValueError, match="needs launcher_index"):
            fire_orders(rows, launchers, aims, [1.0, 1.0], *one_track)
    with pytest.raises(ValueError, match=r"sites must be \[launchers, 5\]"):
        fire_orders(*([0], [0], [[0.0] * 3], [1.0], *one_track[:-1], np.zeros((1, 4))))
