"""Typed face of the compiled interceptor fly-out kernel (ext/engagement.pyx); its plain Python twin is
EngagementModel(compiled=False) in hil.plant.engagement. Whoever changes engagement.pyx's Python-visible names
changes them here too (mypy reads this, not the .pyx)."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

FLOWN: int
SEARCH: int
DETONATE: int
SELF_DESTRUCT: int

class Flyout:
    """The rounds in flight, in launch order (the model's `flying`), and the clock they were flown to."""

    t_s: float  # the clock: every round is flown to it (between advance calls)
    screen_searches: bool  # rule out empty baskets in the kernel (else every search goes to the model)
    max_speed_mps: float  # Truth.max_speed_mps, for the bound on the next search
    @property
    def current(self) -> int:
        """The round (index into the rounds in flight) the last event is about."""
    @property
    def event_t_s(self) -> float:
        """When the SEARCH, the step of the DETONATE or the SELF_DESTRUCT happens."""
    @property
    def event_tau_s(self) -> float:
        """How far into its step a DETONATE's closest approach falls."""
    @property
    def event_miss(self) -> tuple[float, float, float]:
        """The miss vector (acquired object minus round) at the closest approach of a DETONATE."""
    def __init__(self, states: npt.NDArray[np.float64], start_s: npt.NDArray[np.float64],
                 end_s: npt.NDArray[np.float64], truth_step_s: float, step_s: float, navigation_constant: float,
                 t_s: float = 0.0) -> None: ...
    def __len__(self) -> int: ...
    def add(self, fly_s: float, launch_s: float, max_tof_s: float, speed_mps: float, max_acc_mps2: float,
            seeker_range_m: float, seeker_half_angle_rad: float, pos: Sequence[float], vel: Sequence[float],
            aim: Sequence[float]) -> None:
        """A round launched: it flies after the ones before it."""
    def remove(self, i: int) -> None:
        """Round i ended: it flies no more (the ones after it keep their order)."""
    def write_back(self, rounds: list[Any]) -> None:
        """Each round's flight so far (pos, vel, miss_distance_m, passed_aim, past_aim_m, closing) into the
        records of the rounds in flight, rounds[i] being round i."""
    def searched(self, acquired: int, search_from_s: float) -> None:
        """What the current round's search found (its truth row, -1: nothing) and when it may search next."""
    def advance(self, t_to: float) -> int:
        """Fly every round to t_to, up to the first round that needs the model: FLOWN when the clock reached t_to,
        else SEARCH, DETONATE or SELF_DESTRUCT."""
