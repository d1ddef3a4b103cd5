"""The host's side of fire control: the kernel's inputs built from a scenario (launchers, assets, no-fire zones)
and from a track snapshot (position and velocity variances, friendly and neutral flags).

The kernel's own types (FireControlConfig, Doctrine, RefusalReason, LauncherSpec, AssetSpec, NoFireZone and
the results) and the model it implements are in hil.ext.firecontrol_types.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from hil.ext.firecontrol_types import AssetSpec, FloatArray, IntArray, LauncherSpec, NoFireZone


def specs_from_scenario(scenario: Any) -> tuple[list[AssetSpec], list[LauncherSpec], list[NoFireZone]]:
    """Assets, launchers and no-fire zones of a hil.scenario.Scenario, in its order."""
    return list(scenario.assets), list(scenario.launchers), list(scenario.no_fire_zones)


def friendly_code_array(codes: Iterable[int]) -> IntArray:
    """A scenario's friendly (or neutral) IFF Mode 3/A codes as track_inputs and protection_inputs compare
    them (-2, no code at all, if none)."""
    return np.array(sorted(codes) or [-2], dtype=np.int32)


def track_inputs(tracks: Any, friendly_codes: IntArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """What fire control reads from a track snapshot besides the states: each track's position variance
    (the trace of its position covariance) and whether its Mode 3/A code is a friendly one. The runtime,
    replay and the host-path benchmark all build the kernel's inputs here, so replay can compare the
    run's recorded variances bit for bit."""
    cov = tracks.cov
    pos_var = cov[:, 0, 0] + cov[:, 1, 1] + cov[:, 2, 2]
    return pos_var, (tracks.mode3a[:, None] == friendly_codes[None, :]).any(axis=1)


class ProtectionInputs(NamedTuple):
    """Fire control's per-track inputs from a snapshot beyond the states (see protection_inputs)."""

    pos_var_m2: FloatArray  # trace of the position covariance
    friendly: npt.NDArray[np.bool_]
    neutral: npt.NDArray[np.bool_]  # a neutral code and not a friendly one
    vel_var_m2s2: FloatArray  # trace of the velocity covariance: grows the predicted sigma with time


def protection_inputs(tracks: Any, friendly_codes: IntArray, neutral_codes: IntArray) -> ProtectionInputs:
    """track_inputs plus what protection needs: the neutral flags and the velocity variances. Pass them as
    evaluate(..., neutral=, vel_var_m2s2=). Codes come from friendly_code_array (for either list)."""
    pos_var, friendly = track_inputs(tracks, friendly_codes)
    neutral = (tracks.mode3a[:, None] == neutral_codes[None, :]).any(axis=1) & ~friendly
    cov = tracks.cov
    return ProtectionInputs(pos_var, friendly, neutral, cov[:, 3, 3] + cov[:, 4, 4] + cov[:, 5, 5])


__all__ = ["ProtectionInputs", "friendly_code_array", "protection_inputs", "specs_from_scenario", "track_inputs"]
