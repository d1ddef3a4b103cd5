"""A scenario's radars on the plant side: the SENSOR_CONFIG each radar board is sent, and offline plots.

The board (hil.emulators.radar, on a Raspberry Pi or the mock rig) never sees the scenario: it parses the
SENSOR_CONFIG frame built here and sweeps its beam over the truth it is sent. scan_plots runs the same
physics (hil.emulators.radar_model.RadarModel) over a whole scenario without any board, for the kernels'
tests, the benchmarks and offline tracking.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from hil.drivers.framing import SensorConfig
from hil.emulators.radar_model import PlotSet, RadarModel, SectorCrossing
from hil.scenario import RadarSpec, Scenario, Truth

STIMULUS_PERIOD_NS = 100_000_000  # truth to the radar boards at 10 Hz


def config_from_spec(spec: RadarSpec, seed: int) -> SensorConfig:
    """The SENSOR_CONFIG frame that sets up a board as the scenario's radar; seed drives its noise and clutter."""
    return SensorConfig(
        site_x=spec.site[0], site_y=spec.site[1], site_z=spec.site[2], scan_period_s=spec.scan_period_s,
        sigma_range_m=spec.sigma_range_m, sigma_azimuth_rad=spec.sigma_azimuth_rad,
        sigma_elevation_rad=spec.sigma_elevation_rad, sigma_range_rate_mps=spec.sigma_range_rate_mps, pd=spec.pd,
        clutter_per_scan=spec.clutter_per_scan, max_range_m=spec.max_range_m, iff_reply_p=spec.iff_reply_p,
        seed=seed, sac=spec.sac, sic=spec.sic, sectors=spec.sectors, north_offset_rad=spec.north_offset_rad,
    )


def scan_plots(scenario: Scenario, truth: Truth | None = None, seed: int | None = None,
               step_s: float | None = None) -> Iterator[tuple[float, int, PlotSet, list[SectorCrossing]]]:
    """Offline plots of a whole scenario: (t_end, radar index, plots, sector crossings) per step per radar.

    The default step is one scan of the fastest radar; the same physics as the live emulators.
    """
    truth = truth or scenario.truth()
    seed = scenario.seed if seed is None else seed
    models = [RadarModel(spec, seed=seed * 1000 + i) for i, spec in enumerate(scenario.radars)]
    step = step_s or min(spec.scan_period_s for spec in scenario.radars)
    modes = np.array([t.mode3a for t in scenario.targets], dtype=np.int32)
    t = 0.0
    while t < scenario.duration_s - 1e-9:
        t_next = min(t + step, scenario.duration_s)
        rows = truth.alive(t)
        for i, model in enumerate(models):
            plots = model.sweep(t, t_next, rows, modes[rows], truth.states_at)
            yield t_next, i, plots, model.sectors_crossed(t, t_next)
        t = t_next
