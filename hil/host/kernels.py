"""The host's kernels built for a scenario: the tracker over its radars, fire control over its launchers and assets."""

from __future__ import annotations

from typing import Any

from hil.ext.tracker_types import SensorDef, TrackerConfig
from hil.host.tracking import sensor_arrays
from hil.scenario import Scenario


def sensor_defs(scenario: Scenario) -> list[SensorDef]:
    return [
        SensorDef(name=r.name, site_enu_m=r.site, sigma_range_m=r.sigma_range_m, sigma_azimuth_rad=r.sigma_azimuth_rad,
                  sigma_elevation_rad=r.sigma_elevation_rad, sigma_range_rate_mps=r.sigma_range_rate_mps,
                  max_range_m=r.max_range_m)
        for r in scenario.radars
    ]


def build_tracker(scenario: Scenario, config: TrackerConfig | None = None, capacity: int = 4096) -> Any:
    from hil.ext.tracker import Tracker

    sites, sigmas, max_range = sensor_arrays(sensor_defs(scenario))
    return Tracker(config or TrackerConfig(), sites, capacity=capacity, sigmas=sigmas, max_range_m=max_range)


def build_reference_tracker(scenario: Scenario, config: TrackerConfig | None = None) -> Any:
    """The tracker's numpy reference implementation (ext/reference/tracker.py): the same algorithm, plainly and
    slowly, behind the same seam; `--tracker reference` runs a chain on it."""
    from hil.ext.reference.tracker import ReferenceTracker

    sites, sigmas, max_range = sensor_arrays(sensor_defs(scenario))
    return ReferenceTracker(config or TrackerConfig(), sites, sigmas=sigmas, max_range_m=max_range)


def build_fire_control(scenario: Scenario, **overrides: Any) -> Any:
    """The scenario's fire control; overrides are FireControlConfig fields (e.g. protection switched off to show
    what it prevents)."""
    from hil.ext.firecontrol import FireControl
    from hil.ext.firecontrol_types import Doctrine, FireControlConfig
    from hil.host.fire_control import specs_from_scenario

    assets, launchers, zones = specs_from_scenario(scenario)
    doctrine = Doctrine.SALVO if scenario.doctrine == "salvo" else Doctrine.SHOOT_LOOK_SHOOT
    # the launchers carry their seekers (seeker_range_m, seeker_half_angle_deg, lethal_radius_m): with no
    # protect_radius_m in the scenario each launcher's protection radius is its own basket plus lethal radius
    config = FireControlConfig(**{"doctrine": doctrine, "salvo_size": scenario.salvo_size,
                                  "protect_radius_m": scenario.protect_radius_m, **overrides})
    return FireControl(config, assets, launchers, zones)


__all__ = ["build_fire_control", "build_reference_tracker", "build_tracker", "sensor_defs"]
