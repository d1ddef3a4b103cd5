"""GOSPA, OSPA and identity scoring: hand-checked cases and the metric axioms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from hil.measure.metrics import (
    TrackingScore,
    distances,
    gospa,
    min_cost_pairs,
    nearest_within,
    ospa,
    pairs_within,
)


def pts(*xy: tuple[float, float]) -> np.ndarray:
    return np.array([[x, y, 0.0] for x, y in xy]).reshape(len(xy), 3)


def test_gospa_decomposes_into_localisation_missed_and_false() -> None:
    truth = pts((0, 0), (1000, 0), (5000, 0))
    tracks = pts((30, 40), (1000, 20), (9000, 0), (20000, 0))
    g = gospa(truth, tracks, c=1000.0, p=1, alpha=2)
    assert g.localisation == pytest.approx(50.0 + 20.0)
    assert (g.n_missed, g.n_false) == (1, 2)  # the truth at 5 km has no track within c; two tracks are false
    assert g.missed == pytest.approx(500.0) and g.false == pytest.approx(1000.0)
    assert g.total == pytest.approx(g.localisation + g.missed + g.false)
    assert sorted(g.pairs) == [(0, 0), (1, 1)]


def test_gospa_with_p_2_is_the_root_of_the_parts() -> None:
    g = gospa(pts((0, 0)), pts((3, 4), (100, 0)), c=10.0, p=2, alpha=2)
    assert g.localisation == pytest.approx(25.0) and g.false == pytest.approx(50.0)
    assert g.total == pytest.approx(np.sqrt(75.0))


def test_empty_sets() -> None:
    assert gospa(pts(), pts(), c=100).total == 0.0
    assert gospa(pts((0, 0), (1, 1)), pts(), c=100).missed == pytest.approx(100.0)
    assert ospa(pts(), pts((0, 0))) == 1000.0 and ospa(pts(), pts()) == 0.0


def test_ospa_averages_over_the_larger_set() -> None:
    assert ospa(pts((0, 0)), pts((0, 30), (5000, 0)), c=100.0, p=1) == pytest.approx((30.0 + 100.0) / 2)


point_sets = st.lists(st.tuples(st.floats(-3000, 3000), st.floats(-3000, 3000)), max_size=6).map(lambda v: pts(*v))


@settings(max_examples=150, deadline=None)
@given(point_sets, point_sets, point_sets)
def test_gospa_is_a_metric(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    d = lambda x, y: gospa(x, y, c=1000.0, p=1, alpha=2).total  # noqa: E731
    assert d(a, a) == pytest.approx(0.0, abs=1e-9)
    assert d(a, b) == pytest.approx(d(b, a), rel=1e-9, abs=1e-9)
    assert d(a, c) <= d(a, b) + d(b, c) + 1e-6


def test_identity_switches_and_breaks() -> None:
    score = TrackingScore(c=1000.0)
    ids = np.array([7, 8])
    # step 1: track 1 holds truth 7, track 2 holds truth 8
    score.step(ids, pts((0, 0), (5000, 0)), np.array([1, 2]), pts((10, 0), (5010, 0)))
    # step 2: the targets' tracks swap (two switches)
    score.step(ids, pts((0, 0), (5000, 0)), np.array([2, 1]), pts((10, 0), (5010, 0)))
    # step 3: truth 8 loses its track (a break), then step 4 gets it back under a new number (a switch)
    score.step(ids, pts((0, 0), (5000, 0)), np.array([2]), pts((10, 0)))
    score.step(ids, pts((0, 0), (5000, 0)), np.array([2, 3]), pts((10, 0), (5010, 0)))
    # step 5: truth 8 dies; that is no break
    score.step(ids[:1], pts((0, 0)), np.array([2]), pts((10, 0)))
    assert (score.switches, score.breaks) == (3, 1)
    s = score.summary()
    assert s["steps"] == 5 and s["identity_switches"] == 3
    assert score.gospa_per_target == pytest.approx(score.gospa_sum / 9)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**32 - 1), st.booleans())
def test_min_cost_pairs_is_optimal_as_scipy_is(m: int, n: int, seed: int, capped: bool) -> None:
    """GOSPA's assignment (the tracker kernel's solver on a zero-padded square) costs what scipy's rectangular
    linear_sum_assignment costs, pairs min(m, n) distinct rows and columns, capped at c or not."""
    cost = np.random.default_rng(seed).uniform(0.0, 2000.0, (m, n))
    if capped:
        cost = np.minimum(cost, 1000.0)  # many equal costs: ties, as GOSPA's cut-off makes them
    rows, cols = min_cost_pairs(cost)
    r, c = linear_sum_assignment(cost)
    assert len(rows) == len(set(rows.tolist())) == len(set(cols.tolist())) == min(m, n)
    assert cost[rows, cols].sum() == pytest.approx(cost[r, c].sum(), rel=1e-12, abs=1e-9)


def dense_gospa(truth: np.ndarray, tracks: np.ndarray, c: float, p: int) -> tuple[float, float, list[tuple[int, int]]]:
    """GOSPA with alpha = 2 the plain way: every distance, one assignment over them all (total, localisation, pairs)."""
    m, n, half = len(truth), len(tracks), c**p / 2
    if not m or not n:
        return ((m + n) * half) ** (1 / p), 0.0, []
    d = distances(truth, tracks)
    cost = np.minimum(d, c) ** p
    r, k = min_cost_pairs(cost)
    close = d[r, k] < c
    loc, pairs = float(np.sum(cost[r[close], k[close]])), int(close.sum())
    made = list(zip(r[close].tolist(), k[close].tolist(), strict=True))
    return (loc + half * (m - pairs) + half * (n - pairs)) ** (1 / p), loc, made


# targets in clusters a few hundred metres apart (formations), tracks near them and clutter: pairs within c that
# compete, pairs alone, points with nothing near
clustered = st.lists(st.tuples(st.sampled_from([0.0, 700.0, 5000.0]), st.floats(-600, 600), st.floats(-600, 600)),
                     max_size=9).map(lambda v: np.array([[x + dx, dy, 0.0] for x, dx, dy in v]).reshape(len(v), 3))


@settings(max_examples=300, deadline=None)
@given(clustered, clustered, st.sampled_from([1, 2]))
def test_gospa_finds_the_plain_assignments_cost_without_every_distance(truth: np.ndarray, tracks: np.ndarray,
                                                                        p: int) -> None:
    g = gospa(truth, tracks, c=1000.0, p=p, alpha=2)
    total, loc, pairs = dense_gospa(truth, tracks, 1000.0, p)
    assert g.total == pytest.approx(total, rel=1e-12, abs=1e-9)
    assert g.localisation == pytest.approx(loc, rel=1e-12, abs=1e-9)
    assert len(g.pairs) == len(pairs) and g.n_missed == len(truth) - len(pairs)
    if len(truth) and len(tracks):
        d = distances(truth, tracks)
        assert all(d[r, k] < 1000.0 for r, k in g.pairs)  # and every pair it makes is within c
    assert len({r for r, _ in g.pairs}) == len({k for _, k in g.pairs}) == len(g.pairs)


@settings(max_examples=300, deadline=None)
@given(clustered, clustered)
def test_each_tracks_nearest_truth_is_argmins(truth: np.ndarray, tracks: np.ndarray) -> None:
    near_rows, nearest = nearest_within(truth, tracks, 800.0)
    if not len(truth) or not len(tracks):
        assert not len(near_rows)
        return
    d = distances(truth, tracks)
    best = np.argmin(d, axis=0)
    within = d[best, np.arange(len(tracks))] < 800.0
    np.testing.assert_array_equal(near_rows, np.flatnonzero(within))
    np.testing.assert_array_equal(nearest, best[within])


@settings(max_examples=300, deadline=None)
@given(clustered, clustered, st.sampled_from([1.0, 650.0, 1000.0, 5000.0]))
def test_the_pairs_within_a_radius_are_every_pair_the_distance_matrix_has_there(truth: np.ndarray,
                                                                                 tracks: np.ndarray,
                                                                                 radius: float) -> None:
    rows, cols, d = pairs_within(truth, tracks, radius)
    if not len(truth) or not len(tracks):
        assert not len(rows)
        return
    every = distances(truth, tracks)
    expected_rows, expected_cols = np.nonzero(every < radius)
    np.testing.assert_array_equal(rows, expected_rows)
    np.testing.assert_array_equal(cols, expected_cols)
    np.testing.assert_array_equal(d, every[expected_rows, expected_cols])  # bit for bit
