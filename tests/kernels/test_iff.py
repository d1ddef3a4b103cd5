"""IFF in the tracker: a plot's Mode 3/A code weighs in association, and a track's identity follows evidence."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.emulators.radar_model import PlotSet
from hil.errors import ConfigError
from hil.ext.reference.tracker import ReferenceTracker
from hil.ext.tracker import Tracker
from hil.ext.tracker_types import TrackerConfig
from hil.plant.radars import scan_plots
from hil.scenario import RadarSpec, Scenario, TargetSpec
from tests.helpers import ESCORT_CODE, GEOMETRIES, feed, identity_score, pair_scene

TWO_PI = 2.0 * math.pi
OTHER_CODE = 0o1200
NONE = -1


# --- two aircraft 300 m apart at 95 km, one squawking ------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_two_aircraft_300m_apart_keep_two_tracks_with_their_identities(geometry: str, seed: int) -> None:
    """Across the line of sight the pair is 0.9 sigma of azimuth noise apart: in at least 90 % of the scans
    from 10 s to 60 s, the escort's plots update a track showing its code and the bomber's a track showing
    none, two confirmed tracks (identity_score states the measure)."""
    assert identity_score(pair_scene(geometry, seed), TrackerConfig()) >= 0.9


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_without_iff_in_association_the_same_pair_is_confused(geometry: str) -> None:
    """The measure bites: on position alone the plots go to the wrong track often enough that the identities
    are wrong or mixed in a quarter of the scans or more (same scenes as above)."""
    scores = [identity_score(pair_scene(geometry, seed), TrackerConfig(iff_association=False)) for seed in (1, 2)]
    assert np.mean(scores) <= 0.8, scores


@pytest.mark.sweep
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_the_pair_keeps_its_identities_over_twenty_seeds(geometry: str) -> None:
    scores = [identity_score(pair_scene(geometry, seed), TrackerConfig()) for seed in range(1, 21)]
    assert np.mean(scores) >= 0.95 and min(scores) >= 0.8, scores


# --- identity from evidence, one target whose plots carry the codes we choose -------------------------------


@functools.cache
def lone_plots(n_scans: int) -> tuple[Scenario, tuple[tuple[float, PlotSet], ...]]:
    """One plot a scan (Pd 1, no clutter) of a target 40 km out, for n_scans scans."""
    target = TargetSpec(name="a", allegiance="hostile", kind="aircraft", position=(-8_000.0, 40_000.0, 5_000.0),
                        velocity=(250.0, 0.0, 0.0))
    radar = RadarSpec(name="r", site=(0.0, 0.0, 10.0), pd=1.0, clutter_per_scan=0.0)
    sc = Scenario(name="lone", duration_s=float(n_scans), seed=11, targets=(target,), radars=(radar,))
    scans = tuple((t_end, p) for t_end, _, p, _ in scan_plots(sc))
    assert [len(p) for _, p in scans] == [1] * n_scans
    return sc, scans


def identities(codes: list[int], config: TrackerConfig | None = None,
               cls: type[Tracker] | type[ReferenceTracker] = Tracker) -> list[int]:
    """The track's mode3a after each scan, its plot of scan k carrying codes[k] (-1: no reply)."""
    sc, scans = lone_plots(len(codes))
    trk = cls(config or TrackerConfig(), np.array([sc.radars[0].site]))
    seen = []
    for (t_end, p), code in zip(scans, codes, strict=True):
        feed(trk, PlotSet(p.t_s, p.range_m, p.azimuth_rad, p.elevation_rad, p.range_rate_mps,
                          np.array([code], np.int32), p.target), 0)
        trk.sector_swept(0, t_end, 0.0, TWO_PI)
        snap = trk.tracks()
        assert len(snap.track_id) == 1 and snap.track_id[0] == 1  # one track throughout
        seen.append(int(snap.mode3a[0]))
    return seen


@pytest.mark.parametrize("cls", [Tracker, ReferenceTracker])
def test_a_friendly_track_is_confirmed_showing_its_code(cls: type[Tracker] | type[ReferenceTracker]) -> None:
    """Two replies establish a young track's code: by its third plot, when it is confirmed, it shows it, even
    if one of the first three plots came without a reply."""
    assert identities([ESCORT_CODE] * 4, cls=cls) == [NONE, ESCORT_CODE, ESCORT_CODE, ESCORT_CODE]
    assert identities([NONE, ESCORT_CODE, ESCORT_CODE, ESCORT_CODE], cls=cls) == [NONE, NONE, ESCORT_CODE,
                                                                                   ESCORT_CODE]
    assert identities([ESCORT_CODE, NONE, ESCORT_CODE, ESCORT_CODE], cls=cls)[2:] == [ESCORT_CODE] * 2


@pytest.mark.parametrize("cls", [Tracker, ReferenceTracker])
@pytest.mark.parametrize(("own", "odd"), [(ESCORT_CODE, NONE), (ESCORT_CODE, OTHER_CODE), (NONE, ESCORT_CODE)])
def test_a_track_does_not_flip_on_one_odd_plot(own: int, odd: int,
                                               cls: type[Tracker] | type[ReferenceTracker]) -> None:
    codes = [own] * 12
    codes[6] = odd
    codes[9] = odd  # two odd plots, apart: still not consistent evidence
    assert identities(codes, cls=cls)[2:] == [own] * 10


@pytest.mark.parametrize("cls", [Tracker, ReferenceTracker])
def test_a_hostile_that_took_friendly_plots_recovers_its_own_identity(
        cls: type[Tracker] | type[ReferenceTracker]) -> None:
    """A silent track that takes an escort's plots: two of them never show the escort's code; a run of them
    does (5 of its last 6 plots carry it), and 5 plots of its own bring it back to none, where a code that
    stuck for the track's life kept it refused as FRIENDLY for ever."""
    assert ESCORT_CODE not in identities([NONE] * 8 + [ESCORT_CODE] * 2 + [NONE] * 6, cls=cls)
    seen = identities([NONE] * 8 + [ESCORT_CODE] * 6 + [NONE] * 8, cls=cls)
    assert seen[:12] == [NONE] * 12  # four friendly plots among its last six: not yet
    assert seen[12:18] == [ESCORT_CODE] * 6  # the fifth, and until its own plots are 5 of 6 again
    assert seen[18:] == [NONE] * 4


def test_a_code_change_is_followed_once_consistent() -> None:
    """A squawk changed in flight (4021 to 1200) is the track's new identity once 5 of its last 6 plots carry it."""
    seen = identities([ESCORT_CODE] * 6 + [OTHER_CODE] * 8)
    assert seen[1:10] == [ESCORT_CODE] * 9 and seen[10:] == [OTHER_CODE] * 4


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([NONE, ESCORT_CODE, OTHER_CODE, -7]), min_size=1, max_size=20),
       st.integers(1, 8), st.integers(1, 8))
def test_identity_rule_agrees_with_the_reference_and_moves_only_on_k_of_n(codes: list[int], window: int,
                                                                          k: int) -> None:
    window, k = max(window, k), min(window, k)
    cfg = TrackerConfig(iff_window=window, iff_k=k)
    seen = identities(codes, cfg)
    assert seen == identities(codes, cfg, ReferenceTracker)
    evidence = [max(c, NONE) for c in codes]  # any negative code is no reply
    for i in range(1, len(codes)):
        if seen[i] != seen[i - 1]:  # a change: the new answer holds k of the last n plots, the old one no more
            recent = evidence[max(0, i + 1 - window): i + 1]
            assert recent.count(seen[i]) >= k > recent.count(seen[i - 1])


# --- association: kernel and reference on scenes with codes ----------------------------------------------------


def coded_scene() -> Scenario:
    """Close pairs with and without codes, different codes side by side, lone squawkers, clutter."""
    def aircraft(name: str, pos: tuple[float, float], vel: tuple[float, float], code: int) -> TargetSpec:
        return TargetSpec(name=name, allegiance="hostile", kind="aircraft", position=(*pos, 5_000.0),
                          velocity=(*vel, 0.0), mode3a=code)

    targets = (aircraft("escort", (0.0, 30_000.0), (220.0, 0.0), ESCORT_CODE),
               aircraft("bomber", (-250.0, 30_000.0), (220.0, 0.0), NONE),
               aircraft("east", (20_000.0, 15_000.0), (0.0, -200.0), ESCORT_CODE),
               aircraft("east-2", (20_200.0, 15_000.0), (0.0, -200.0), OTHER_CODE),
               aircraft("lone", (-25_000.0, -10_000.0), (150.0, 150.0), OTHER_CODE),
               aircraft("silent", (10_000.0, -30_000.0), (-200.0, 50.0), NONE))
    radar = RadarSpec(name="r", site=(0.0, 0.0, 10.0), clutter_per_scan=6.0)
    return Scenario(name="coded", duration_s=24.0, seed=4, targets=targets, radars=(radar,))


@pytest.mark.parametrize("model", ["cv", "imm"])
def test_kernel_agrees_with_reference_on_scenes_with_codes(model: str) -> None:
    sc = coded_scene()
    sites = np.array([r.site for r in sc.radars])
    cfg = TrackerConfig(model=model)
    kernel, ref, blind = Tracker(cfg, sites), ReferenceTracker(cfg, sites), Tracker(
        TrackerConfig(model=model, iff_association=False), sites)
    codes_shown: set[int] = set()
    differs = False
    for t_end, i, p, _ in scan_plots(sc, step_s=0.25):
        for trk in (kernel, ref, blind):
            feed(trk, p, i)
            trk.sector_swept(i, t_end, ((t_end - 0.25) * TWO_PI) % TWO_PI, (t_end * TWO_PI) % TWO_PI)
        a, b, c = kernel.tracks(t_end), ref.tracks(t_end), blind.tracks(t_end)
        assert a.track_id.tolist() == b.track_id.tolist(), t_end
        assert a.status.tolist() == b.status.tolist()
        assert a.mode3a.tolist() == b.mode3a.tolist()
        np.testing.assert_allclose(a.state, b.state, rtol=1e-6, atol=1e-2)
        np.testing.assert_allclose(a.last_update_s, b.last_update_s)
        codes_shown.update(a.mode3a[a.confirmed].tolist())
        differs = differs or a.track_id.tolist() != c.track_id.tolist() or not np.array_equal(a.state, c.state)
    assert codes_shown == {NONE, ESCORT_CODE, OTHER_CODE}
    assert differs  # the codes changed some association: the comparison covered the IFF costs


@pytest.mark.parametrize(("field", "value"), [("iff_reply_p", 1.0), ("iff_false_code_p", 0.99),
                                            ("iff_false_code_p", 0.0), ("iff_k", 0), ("iff_window", 17)])
def test_a_bad_iff_setting_is_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        TrackerConfig(**{field: value})  # type: ignore[arg-type]


def test_iff_costs_are_the_likelihood_ratios_of_the_reply_model() -> None:
    cfg = TrackerConfig()
    assert cfg.iff_missing_d2 == pytest.approx(7.80, abs=0.01)  # 2 ln(0.99 / 0.02)
    assert cfg.iff_unexpected_d2 == pytest.approx(9.17, abs=0.01)  # 2 ln(0.98 / 0.01)
    off = TrackerConfig(iff_association=False)
    assert off.iff_missing_d2 == off.iff_unexpected_d2 == 0.0
