"""Typed face of the compiled fire-control kernel (ext/firecontrol.pyx); its types and the model it implements
are in hil.ext.firecontrol_types."""

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from hil.ext.firecontrol_types import (
    AssetSpec,
    FireControlConfig,
    FireControlResult,
    LauncherSpec,
    NoFireZone,
    Refusals,
)

def solve_assignment(score: npt.ArrayLike, pk: npt.ArrayLike, feasible: npt.ArrayLike, shots_left: npt.ArrayLike,
                     capacity: npt.ArrayLike, solver: str = "exact", node_budget: int = 200_000,
                     ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], bool, int]:
    """One solver ("lap", "greedy", "exact") on a bare problem: (track_index, launcher_index, proven optimal,
    branch-and-bound nodes)."""

class FireControl:
    """Threat evaluation and weapon-target assignment for a fixed set of assets, launchers and no-fire zones."""

    @property
    def config(self) -> FireControlConfig: ...
    @property
    def launcher_specs(self) -> tuple[LauncherSpec, ...]: ...
    @property
    def asset_specs(self) -> tuple[AssetSpec, ...]: ...
    @property
    def zone_specs(self) -> tuple[NoFireZone, ...]: ...
    @property
    def launcher_names(self) -> tuple[str, ...]: ...
    @property
    def asset_names(self) -> tuple[str, ...]: ...
    last_nodes: int  # branch-and-bound nodes of the last evaluation
    def __init__(self, config: FireControlConfig | None = None, assets: Iterable[AssetSpec] = (),
                 launchers: Iterable[LauncherSpec] = (), no_fire_zones: Iterable[NoFireZone] = ()) -> None: ...
    @property
    def n_launchers(self) -> int: ...
    def evaluate(self, t_s: float, track_id: npt.ArrayLike, state: npt.ArrayLike, pos_var_m2: npt.ArrayLike,
                 confirmed: npt.ArrayLike | None, friendly: npt.ArrayLike, in_flight: npt.ArrayLike,
                 shots_fired: npt.ArrayLike, launcher_armed: npt.ArrayLike, launcher_ready: npt.ArrayLike,
                 launcher_rounds: npt.ArrayLike, launcher_reload_left_s: npt.ArrayLike,
                 channels_in_use: npt.ArrayLike | None = None, solver: str | None = None, *,
                 neutral: npt.ArrayLike | None = None, assessing: npt.ArrayLike | None = None,
                 vel_var_m2s2: npt.ArrayLike | None = None, status: npt.ArrayLike | None = None) -> FireControlResult:
        """Rank threats, solve every launcher x threat pair and assign launchers (hil.ext.firecontrol_types).
        confirmed may be None when status (the tracks' TrackStatus codes) is given: confirmed is status == 2."""

def refusals_of(track_reason: npt.ArrayLike, pair_reason: npt.ArrayLike, shot_tracks: npt.ArrayLike,
                pair_protected: npt.ArrayLike | None = None) -> Refusals:
    """hil.ext.firecontrol_types.refusals_of (its numpy twin), compiled: every refusal of one evaluation."""
