"""The radar board looks at a target only when the beam can reach it; it must still see every target it would
have seen by looking at all of them in every sweep, however fast the target moves across the beam."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hil.drivers.framing import FrameType, encode_frame, encode_stimulus
from hil.emulators.radar import RadarBoard
from hil.emulators.radar_model import RadarModel
from hil.plant.radars import config_from_spec
from hil.scenario import RadarSpec


class EveryTargetBoard(RadarBoard):
    """The board without the shortcut: every sweep looks at every target."""

    def _due_by(self, model: RadarModel, t_from: float, t_to: float) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(len(self.ids))
        return rows, self.mode3a[rows]


def close_traffic(rng: np.random.Generator, n: int) -> np.ndarray:
    """Targets from 300 m to 8 km of the site at up to 700 m/s, a few heading straight over it: their azimuth
    moves fast and unevenly, the hard case for knowing when the beam will reach them."""
    bearing = rng.uniform(0.0, 2.0 * math.pi, n)
    ground = rng.uniform(300.0, 8_000.0, n)
    speed = rng.uniform(50.0, 700.0, n)
    heading = rng.uniform(0.0, 2.0 * math.pi, n)
    heading[: n // 4] = bearing[: n // 4] + math.pi  # inbound, over the site
    return np.column_stack([ground * np.sin(bearing), ground * np.cos(bearing), rng.uniform(50.0, 3_000.0, n),
                            speed * np.sin(heading), speed * np.cos(heading), rng.uniform(-50.0, 50.0, n)])


def run(board: RadarBoard, spec: RadarSpec, states: np.ndarray, steps_us: list[int]) -> bytes:
    """The board's output for targets flying at constant velocity, sent as truth every 100 ms."""
    boot_us = 7_654_321
    board.receive(encode_frame(FrameType.SENSOR_CONFIG, 1, 0, config_from_spec(spec, seed=5).encode()),
                  boot_us, boot_us)
    ids = np.arange(len(states))
    codes = np.where(ids % 3 == 0, 0o4000 + ids, -1).astype(np.int32)
    out, t_us, next_truth_us, seq = [], 0, 0, 2
    for step in steps_us:
        if t_us >= next_truth_us:
            now = states.copy()
            now[:, :3] += states[:, 3:] * (t_us / 1e6)
            for payload in encode_stimulus(ids, codes, now):
                board.receive(encode_frame(FrameType.STIMULUS, seq, 0, payload), boot_us + t_us, boot_us + t_us)
                seq += 1
            next_truth_us += 100_000
        t_us += step
        out += [f.data for f in board.advance(boot_us + t_us)]
    return b"".join(out)


@pytest.mark.parametrize("scan_period_s, sectors", [(1.0, 16), (0.25, 1), (4.0, 8)])
def test_the_board_sees_exactly_what_a_board_looking_at_every_target_sees(scan_period_s: float,
                                                                          sectors: int) -> None:
    rng = np.random.default_rng(int(scan_period_s * 100) + sectors)
    spec = RadarSpec(name="r", site=(0.0, 0.0, 10.0), scan_period_s=scan_period_s, sectors=sectors,
                     clutter_per_scan=10.0, pd=0.8, iff_reply_p=0.9, max_range_m=6_000.0)
    states = close_traffic(rng, 40)
    steps = [int(s) for s in rng.choice([1_000, 5_000, 5_000, 20_000, 37_000], 1_500)]
    shortcut, every = run(RadarBoard(), spec, states, steps), run(EveryTargetBoard(), spec, states, steps)
    assert len(shortcut) > 5_000  # plots and sector messages were sent
    assert shortcut == every
