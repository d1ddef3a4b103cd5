"""The two seams where a user's own algorithm replaces hil's: a `Tracker` and a `FireControl`.

hil's Cython kernels (hil.ext.tracker.Tracker, hil.ext.firecontrol.FireControl behind `KernelFireControl`)
are the default implementations. A user's own is any object with the same methods, built by a factory
`factory(scenario, **options)`, chosen with `hil run --tracker pkg.module:factory` (or `--fire-control`),
in the scenario file (`[host] tracker = "pkg.module:factory"`) or through the entry-point groups
`hil.trackers` and `hil.fire_controls` (docs/PLUGINS.md).

The contract, in the host's units (SI, ENU metres around the scenario's origin, seconds of run time):

Tracker
    update(t_s, sensor, range_m, azimuth_rad, elevation_rad, range_rate_mps, mode3a)
        One loop iteration's plots, time ordered, as equal-length numpy arrays: t_s float64 (run time of
        the detection), sensor int32 (radar index), range_m, azimuth_rad (clockwise from north),
        elevation_rad (NaN: no height), range_rate_mps (NaN: none), mode3a int32 (-1: no code).
    sector_swept(sensor, t_s, az_from_rad, az_to_rad)
        The radar's beam swept that sector by t_s (ASTERIX CAT034): tracks inside it that got no plot
        missed a detection. A tracker that does not count misses this way may ignore it.
    tracks(t_s=None) -> TrackSnapshot
        The live tracks, predicted to t_s when given: track_id, status (TrackStatus values: 1 tentative,
        2 confirmed), state [n, 6] (x, y, z, vx, vy, vz), cov [n, 6, 6], last_update_s, mode3a (the code
        the track's plots establish, -1 none), hits.

FireControl
    decide(inputs: FireControlInputs) -> Decision
        Which launcher fires at which track now. The inputs are everything the host knows: the tracks
        fire control may see (every confirmed track, and every friendly or neutral one, tentative too, so
        it can protect them), their identity and uncertainty, the host's own account of its rounds, and
        each launcher's state as its board last reported it. A Decision has `assignments` (track and
        launcher rows into the inputs, intercept point, time of flight, pk, score), `refusals` (track,
        launcher or -1, reason code, protected track row or -1) and `explain(row) -> dict` for the
        decision records.

The host keeps the safety interlocks that do not depend on the algorithm: a launcher link never commands
a launcher whose last fire is unsettled, and never sends without a fresh status saying it is ready.
What fire control itself must never do (fire at a friendly, fire twice at one target under one doctrine,
fire into a no-fire zone) is what `hil run` checks on the plant: a user's fire control is scored on the
same plant as hil's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from hil.ext.firecontrol_types import Assignments, RefusalReason, Refusals
from hil.ext.tracker_types import TrackSnapshot, TrackStatus
from hil.host.fire_control import ProtectionInputs

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]

CONFIRMED = int(TrackStatus.CONFIRMED)  # a plain int: numpy compares it without the enum machinery


@runtime_checkable
class Tracker(Protocol):
    def update(self, t_s: FloatArray, sensor: IntArray, range_m: FloatArray, azimuth_rad: FloatArray,
               elevation_rad: FloatArray, range_rate_mps: FloatArray, mode3a: IntArray) -> None: ...

    def sector_swept(self, sensor: int, t_s: float, az_from_rad: float, az_to_rad: float) -> None: ...

    def tracks(self, t_s: float | None = None) -> TrackSnapshot: ...


@dataclass(frozen=True)
class LauncherInputs:
    """Each launcher as its board last reported it, one row per scenario launcher (the host shares the arrays
    between decisions until a launcher changes: read-only)."""

    armed: BoolArray
    ready: BoolArray  # ready to fire and no fire of the host's on its way to it
    rounds: IntArray
    reload_left_s: FloatArray
    channels_in_use: IntArray  # interceptors of this launcher in the air (each holds a guidance channel)

    @classmethod
    def none(cls, n: int) -> LauncherInputs:
        """n launchers, none armed (no status read yet)."""
        return cls(np.zeros(n, bool), np.zeros(n, bool), np.zeros(n, np.int32), np.zeros(n), np.zeros(n, np.int32))


@dataclass(frozen=True)
class EngagementInputs:
    """The host's own account of its rounds, per track row (never the plant's truth)."""

    in_flight: IntArray  # rounds commanded at the track and not yet at their planned intercept
    shots_fired: IntArray  # every round commanded at it, landed or not
    assessing: BoolArray  # a round's intercept has passed and the kill-assessment look is not over


@dataclass(frozen=True)
class FireControlInputs:
    """Everything one fire-control decision may use; row k of every per-track array is tracks' row k."""

    t_s: float
    tracks: TrackSnapshot
    identity: ProtectionInputs  # position and velocity variance, friendly and neutral flags
    engagements: EngagementInputs
    launchers: LauncherInputs

    @property
    def confirmed(self) -> BoolArray:
        confirmed: BoolArray = self.tracks.status == CONFIRMED
        return confirmed


class Decision(Protocol):
    """What a FireControl returns (hil.ext.firecontrol_types.FireControlResult is hil's)."""

    @property
    def assignments(self) -> Assignments: ...

    @property
    def refusals(self) -> Refusals: ...

    def explain(self, i: int) -> dict[str, Any]: ...


@runtime_checkable
class FireControl(Protocol):
    def decide(self, inputs: FireControlInputs) -> Decision: ...


class KernelFireControl:
    """hil's fire-control kernel (hil.ext.firecontrol.FireControl) behind the FireControl seam."""

    def __init__(self, kernel: Any) -> None:
        self.kernel = kernel

    def decide(self, inputs: FireControlInputs) -> Decision:
        tracks, ident, eng, lau = inputs.tracks, inputs.identity, inputs.engagements, inputs.launchers
        result: Decision = self.kernel.evaluate(
            inputs.t_s, tracks.track_id, tracks.state, ident.pos_var_m2, None, ident.friendly,
            eng.in_flight, eng.shots_fired, lau.armed, lau.ready, lau.rounds, lau.reload_left_s,
            channels_in_use=lau.channels_in_use, neutral=ident.neutral, assessing=eng.assessing,
            vel_var_m2s2=ident.vel_var_m2s2, status=tracks.status)  # confirmed: status == CONFIRMED, in the kernel
        return result


__all__ = ["CONFIRMED", "Assignments", "Decision", "EngagementInputs", "FireControl", "FireControlInputs",
           "KernelFireControl", "LauncherInputs", "ProtectionInputs", "RefusalReason", "Refusals", "TrackSnapshot",
           "TrackStatus", "Tracker"]
