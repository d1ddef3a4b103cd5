"""The radar model and the Python radar board: plots where the beam sweeps, with the stated noise and Pd."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.drivers import asterix
from hil.drivers.framing import FrameDecoder, FrameType, encode_frame, encode_stimulus, encode_time_sync_req
from hil.emulators.radar import RadarBoard
from hil.emulators.radar_model import PlotSet, RadarModel
from hil.geo import enu_to_polar
from hil.plant.radars import config_from_spec, scan_plots
from hil.scenario import RadarSpec, tracking_scenario


def test_plots_have_the_configured_noise_and_detection_probability() -> None:
    sc = tracking_scenario(40, seed=2, duration_s=60, clutter_per_scan=0.0)
    truth = sc.truth()
    site = np.array(sc.radars[0].site)
    errors, detections, opportunities = [], 0, 0
    for _, _, plots, _ in scan_plots(sc, truth=truth):
        opportunities += 40
        real = plots.target >= 0
        detections += int(real.sum())
        st = truth.states_at(plots.target[real], plots.t_s[real])
        r, az, el = enu_to_polar(st[:, :3] - site)
        errors.append(np.c_[plots.range_m[real] - r, (plots.azimuth_rad[real] - az + np.pi) % (2 * np.pi) - np.pi,
                            plots.elevation_rad[real] - el])
    e = np.vstack(errors)
    assert detections / opportunities == pytest.approx(0.9, abs=0.03)
    np.testing.assert_allclose(e.std(axis=0), [50.0, math.radians(0.2), math.radians(0.2)], rtol=0.1)
    assert abs(e[:, 0].mean()) < 5.0


def test_clutter_rate_and_sector_crossings_per_scan() -> None:
    model = RadarModel(RadarSpec(name="r", site=(0, 0, 0), clutter_per_scan=20.0, sectors=16), seed=1)
    plots = model.sweep(0.0, 50.0, np.zeros(0, np.int64), np.zeros(0, np.int32), lambda r, t: np.zeros((0, 6)))
    assert len(plots) / 50 == pytest.approx(20.0, rel=0.15)
    assert (plots.target == -1).all() and np.all(np.diff(plots.t_s) >= 0)
    crossings = model.sectors_crossed(0.0, 2.0)
    assert len(crossings) == 32 and sum(c.is_north for c in crossings) == 2


def test_a_target_is_seen_when_the_beam_reaches_its_azimuth() -> None:
    model = RadarModel(RadarSpec(name="r", site=(0, 0, 0), pd=1.0, clutter_per_scan=0.0, scan_period_s=4.0), seed=1)
    east = np.array([[30_000.0, 0.0, 1000.0, 0.0, 0.0, 0.0]])
    plots = model.sweep(0.0, 4.0, np.array([0]), np.array([-1], np.int32), lambda r, t: np.repeat(east, len(r), 0))
    assert len(plots) == 1 and plots.t_s[0] == pytest.approx(1.0, abs=1e-6)  # east is a quarter turn


def test_board_answers_time_sync_and_emits_decodable_asterix() -> None:
    sc = tracking_scenario(10, seed=4, duration_s=10, clutter_per_scan=5.0)
    snap = sc.truth().at(0.0)
    board, host = RadarBoard(), FrameDecoder("host")
    board.receive(encode_frame(FrameType.SENSOR_CONFIG, 1, 0, config_from_spec(sc.radars[0], 3).encode()), 100, 100)
    for i, p in enumerate(encode_stimulus(snap.index, snap.mode3a, snap.state)):
        board.receive(encode_frame(FrameType.STIMULUS, 2 + i, 0, p), 100, 100)
    sync = board.receive(encode_frame(FrameType.TIME_SYNC_REQ, 9, 0, encode_time_sync_req(77)), 500, 600)
    (reply,) = host.feed(sync[0].data)
    assert reply.ftype == FrameType.TIME_SYNC_RESP and reply.payload[:4] == (77).to_bytes(4, "little")
    frames = [f for t in range(1000, 2_100_000, 5000) for out in board.advance(t) for f in host.feed(out.data)]
    records = [r for f in frames for r in asterix.decode_blocks(f.payload)]
    plots = [r for r in records if isinstance(r, asterix.Cat048Plot)]
    norths = [r for r in records if isinstance(r, asterix.Cat034Message) and r.message_type == 1]
    assert len(norths) == 2 and len(plots) >= 10
    assert host.counters.frames_ok == len(frames) + 1 and not any(host.counters.rejected.values())


@pytest.mark.parametrize("step_s", [0.005, 0.037, 1.0])
def test_clutter_is_the_same_however_the_sweeps_are_cut(step_s: float) -> None:
    """A seed's clutter does not depend on how often the board steps (virtual time's 5 ms ticks, a real-time
    board's reads, a whole scenario at once): the same plots at the same times."""
    spec = RadarSpec(name="r", site=(0, 0, 0), clutter_per_scan=40.0, sectors=8, scan_period_s=2.0)
    none, codes = np.zeros(0, np.int64), np.zeros(0, np.int32)

    def states(rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.zeros((0, 6))

    whole = RadarModel(spec, seed=9).sweep(0.0, 30.0, none, codes, states)
    cut, stepped, t = RadarModel(spec, seed=9), [], 0.0
    while t < 30.0:
        t_next = min(t + step_s, 30.0)
        stepped.append(cut.sweep(t, t_next, none, codes, states))
        t = t_next
    assert len(whole) / 15 == pytest.approx(40.0, rel=0.15)  # clutter_per_scan a turn of the beam
    for field in ("t_s", "range_m", "azimuth_rad", "elevation_rad", "range_rate_mps"):
        np.testing.assert_array_equal(np.concatenate([getattr(p, field) for p in stepped]), getattr(whole, field))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**32 - 1), st.integers(0, 4095))
def test_a_dwells_few_plots_go_out_as_the_arrays_would_send_them(n: int, seed: int, plot_number: int) -> None:
    """The board sends a dwell of up to SMALL_BLOCK plots in plain floats: the same frame, byte for byte, as the
    array path (heights from range and elevation, Doppler beyond ±511 m/s left out, plot numbers wrapping)."""
    rng = np.random.default_rng(seed)
    plots = PlotSet(t_s=np.sort(rng.uniform(0.0, 200_000.0, n)), range_m=rng.uniform(1.0, 60_000.0, n),
                    azimuth_rad=rng.uniform(0.0, 2 * math.pi, n), elevation_rad=rng.uniform(-0.05, 0.5, n),
                    range_rate_mps=rng.choice([-900.0, -511.0, 0.0, 37.5, 511.0, 700.0, np.nan], n),
                    mode3a=rng.choice([-1, 0o4001, 0o7777], n).astype(np.int32), target=np.zeros(n, np.int64))
    cfg = config_from_spec(RadarSpec(name="r", site=(0.0, 0.0, 31.5)), seed=1)
    frames = []
    for small in (asterix.SMALL_BLOCK, 0):
        board = RadarBoard()
        board.plot_number = plot_number
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(asterix, "SMALL_BLOCK", small)
            frames.append(board._plot_frame(plots, cfg).data)
    assert frames[0] == frames[1]
