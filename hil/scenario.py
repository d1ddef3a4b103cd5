"""Scenarios: the plant's truth (targets, sensors, launchers, defended assets) loaded from TOML or generated."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import numpy as np
from pydantic import BeforeValidator, Field, Strict, StringConstraints
from pydantic_core import PydanticCustomError

from hil.config_schema import (
    MAX_DISTANCE_M,
    MAX_DURATION_S,
    MAX_SPEED_MPS,
    Coordinate,
    Enu,
    FileModel,
    Integer,
    Lla,
    Name,
    Number,
    Text,
    default_of,
    list_of,
    shown,
    validate,
)
from hil.errors import ConfigError, read_toml
from hil.ext.firecontrol_types import AssetSpec, LauncherSpec, NoFireZone
from hil.geo import STANDARD_GRAVITY, FloatArray, geodetic_to_enu
from hil.shipped import resolve_scenario

TRUTH_STEP_S = 0.05
T = TypeVar("T")


def parse_mode3a(value: object, source: str, field_name: str) -> int:
    """A Mode 3/A code written as four octal digits ("4021") as its 12-bit value; -1 for none."""
    if value is None or value == "":
        return -1
    if not isinstance(value, str) or not _MODE3A.fullmatch(value):
        raise ConfigError(source, field_name, f'Mode 3/A code must be four octal digits like "4021", got {value!r}')
    return int(value, 8)


def format_mode3a(code: int) -> str:
    return "" if code < 0 else f"{code:04o}"


@dataclass(frozen=True)
class Manoeuvre:
    """A horizontal coordinated turn (positive turn_g turns right, clockwise seen from above)."""

    start_s: float
    duration_s: float
    turn_g: float = 0.0
    climb_mps: float = 0.0


@dataclass(frozen=True)
class TargetSpec:
    name: str
    allegiance: str
    kind: str
    position: tuple[float, float, float]
    velocity: tuple[float, float, float]
    start_s: float = 0.0
    mode3a: int = -1
    manoeuvres: tuple[Manoeuvre, ...] = ()
    home_on: str | None = None
    max_turn_g: float = 20.0


@dataclass(frozen=True)
class RadarSpec:
    name: str
    site: tuple[float, float, float]
    scan_period_s: float = 1.0
    sigma_range_m: float = 50.0
    sigma_azimuth_rad: float = math.radians(0.2)
    sigma_elevation_rad: float = math.radians(0.2)
    sigma_range_rate_mps: float = 5.0
    pd: float = 0.9
    clutter_per_scan: float = 20.0
    max_range_m: float = 150_000.0
    iff_reply_p: float = 0.98
    sac: int = 1
    sic: int = 1
    sectors: int = 16
    north_offset_rad: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    duration_s: float
    seed: int
    targets: tuple[TargetSpec, ...]
    radars: tuple[RadarSpec, ...]
    launchers: tuple[LauncherSpec, ...] = ()
    assets: tuple[AssetSpec, ...] = ()
    no_fire_zones: tuple[NoFireZone, ...] = ()
    friendly_codes: frozenset[int] = frozenset()
    neutral_codes: frozenset[int] = frozenset()  # Mode 3/A codes of neutral traffic (airliners): never engaged
    origin_lla: tuple[float, float, float] | None = None
    doctrine: str = "shoot-look-shoot"  # or "salvo"
    salvo_size: int = 2
    look_scans: int = 2  # kill assessment: scans a track is looked at after a round's intercept time
    protect_radius_m: float | None = None  # None: the seeker basket at acquisition plus the lethal radius
    faults: tuple[str, ...] = ()  # scheduled link faults, in the grammar of `hil run --fault`
    tracker: str = "hil"  # the host's tracker: "hil" (the Cython kernel), "reference", a plug-in (hil.host.plugins)
    fire_control: str = "hil"  # the host's fire control, likewise
    # [criteria]: what a run of this scenario must achieve (hil.measure.verdict), checked when the file is read
    criteria: dict[str, Any] = field(default_factory=dict, hash=False)
    source: str = "<generated>"
    description: str = ""

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """A scenario file's path (relative to the current directory) or a shipped scenario's name ("raid")."""
        found = resolve_scenario(path)
        return _read(str(found), read_toml(found, "scenario"))

    def truth(self) -> Truth:
        return Truth(self)


# --- the file: typed and ranged fields (hil.config_schema), then what spans fields ------------------


_MODE3A = re.compile(r"[0-7]{4}")


def _mode3a_text(value: Any) -> Any:
    """An integer code (`mode3a = 4001`) is refused with the fix: a TOML integer is decimal, a code is octal."""
    if isinstance(value, int) and not isinstance(value, bool):
        fix = f'write "{value}"' if _MODE3A.fullmatch(str(value)) else 'write it like "4001"'
        raise PydanticCustomError("mode3a", "a Mode 3/A code is four octal digits in quotes: {fix}", {"fix": fix})
    if isinstance(value, str) and value and not _MODE3A.fullmatch(value):
        raise PydanticCustomError("mode3a", 'must be four octal digits like "4021", got {got}', {"got": shown(value)})
    return value


Mode3A = Annotated[str, Strict(), StringConstraints(pattern=r"^[0-7]{4}$"), BeforeValidator(_mode3a_text),
                   Field(description='Mode 3/A code as four octal digits, e.g. "4021"')]
Mode3AOrNone = Annotated[str, Strict(), StringConstraints(pattern=r"^([0-7]{4})?$"), BeforeValidator(_mode3a_text)]
Allegiance = Literal["hostile", "friendly", "neutral"]
FaultText = Annotated[str, Strict(), Field(min_length=1, max_length=200)]
SpeedComponent = Annotated[Number, Field(ge=-MAX_SPEED_MPS, le=MAX_SPEED_MPS)]
Velocity = Annotated[tuple[SpeedComponent, ...], Field(min_length=3, max_length=3, description="[east, north, up] "
                                                       "in m/s"), list_of(3, "[vx, vy, vz]")]
Centre = Annotated[tuple[Coordinate, ...], Field(min_length=2, max_length=2, description="[x east, y north] in metres"),
                   list_of(2, "[x, y]")]
ALLEGIANCES = get_args(Allegiance)


class ManoeuvreTable(FileModel):
    """A horizontal coordinated turn and/or a climb, for a while."""

    start_s: Number = Field(ge=0.0, le=MAX_DURATION_S, description="when it starts, s after the scenario starts")
    duration_s: Number = Field(ge=0.0, le=MAX_DURATION_S, description="how long it lasts, s")
    turn_g: Number = Field(default_of(Manoeuvre, "turn_g"), ge=-15.0, le=15.0,
                           description="lateral load in g; positive turns right (clockwise from above)")
    climb_mps: Number = Field(default_of(Manoeuvre, "climb_mps"), ge=-500.0, le=500.0,
                              description="vertical speed meanwhile, m/s (0: keep it)")


class TargetTable(FileModel):
    """[[target]]: something that flies; position as position_enu_m or position_lla."""

    name: Name | None = Field(None, description="unique among targets (default target-<n>)")
    allegiance: Allegiance = "hostile"
    kind: Name = Field("aircraft", description="a label: aircraft, missile, ...")
    position_enu_m: Enu | None = None
    position_lla: Lla | None = Field(None, description="[lat deg, lon deg, h m]; needs origin_lla")
    velocity_mps: Velocity = Field(description="[east, north, up] in m/s; speed from 1 to 10000 m/s")
    start_s: Number = Field(default_of(TargetSpec, "start_s"), ge=0.0, le=MAX_DURATION_S,
                            description="when it appears, s")
    mode3a: Mode3AOrNone = Field("", description='its Mode 3/A reply, four octal digits ("": none)')
    manoeuvre: list[ManoeuvreTable] = Field(default_factory=list, max_length=100)
    home_on: Name | None = Field(None, description="name of the asset it homes on (pure pursuit)")
    max_turn_g: Number = Field(default_of(TargetSpec, "max_turn_g"), ge=0.1, le=60.0,
                               description="lateral load limit when homing, g")


class RadarTable(FileModel):
    """[[radar]]: a sensor site and its measurement model; site as site_enu_m or site_lla."""

    name: Name | None = Field(None, description="unique among radars; the rig's boards are found by it")
    site_enu_m: Enu | None = None
    site_lla: Lla | None = Field(None, description="[lat deg, lon deg, h m]; needs origin_lla")
    scan_period_s: Number = Field(default_of(RadarSpec, "scan_period_s"), ge=0.1, le=60.0)
    sigma_range_m: Number = Field(default_of(RadarSpec, "sigma_range_m"), ge=0.0, le=10_000.0)
    sigma_azimuth_deg: Number = Field(math.degrees(default_of(RadarSpec, "sigma_azimuth_rad")), ge=0.0, le=10.0)
    sigma_elevation_deg: Number = Field(math.degrees(default_of(RadarSpec, "sigma_elevation_rad")), ge=0.0, le=10.0)
    sigma_range_rate_mps: Number = Field(default_of(RadarSpec, "sigma_range_rate_mps"), ge=0.0, le=1_000.0)
    pd: Number = Field(default_of(RadarSpec, "pd"), ge=0.0, le=1.0, description="probability of detection a scan")
    clutter_per_scan: Number = Field(default_of(RadarSpec, "clutter_per_scan"), ge=0.0, le=10_000.0,
                                     description="mean false plots a scan")
    max_range_m: Number = Field(default_of(RadarSpec, "max_range_m"), ge=1_000.0, le=470_000.0)
    iff_reply_p: Number = Field(default_of(RadarSpec, "iff_reply_p"), ge=0.0, le=1.0)
    sac: Integer = Field(default_of(RadarSpec, "sac"), ge=0, le=255, description="ASTERIX system area code")
    sic: Integer = Field(default_of(RadarSpec, "sic"), ge=0, le=255, description="ASTERIX system identification code")
    sectors: Integer = Field(default_of(RadarSpec, "sectors"), ge=1, le=64, description="north markers a scan")
    north_offset_deg: Number = Field(math.degrees(default_of(RadarSpec, "north_offset_rad")), ge=0.0, le=360.0)


class LauncherTable(FileModel):
    """[[launcher]]: where it stands, its envelope, and its magazine; position as position_enu_m or position_lla."""

    name: Name | None = Field(None, description="unique among launchers; the rig's boards are found by it")
    position_enu_m: Enu | None = None
    position_lla: Lla | None = Field(None, description="[lat deg, lon deg, h m]; needs origin_lla")
    interceptor_speed_mps: Number = Field(default_of(LauncherSpec, "interceptor_speed_mps"), gt=0.0, le=MAX_SPEED_MPS)
    interceptor_max_g: Number = Field(default_of(LauncherSpec, "interceptor_max_g"), ge=0.0, le=100.0)
    launch_delay_s: Number = Field(default_of(LauncherSpec, "launch_delay_s"), ge=0.0, le=600.0)
    slew_rate_dps: Number = Field(default_of(LauncherSpec, "slew_rate_dps"), ge=0.0, le=3_600.0,
                                  description="deg/s; 0: no slew time counted")
    min_range_m: Number = Field(default_of(LauncherSpec, "min_range_m"), ge=0.0, le=MAX_DISTANCE_M)
    max_range_m: Number = Field(default_of(LauncherSpec, "max_range_m"), ge=0.0, le=MAX_DISTANCE_M)
    min_alt_m: Number = Field(default_of(LauncherSpec, "min_alt_m"), ge=0.0, le=MAX_DISTANCE_M)
    max_alt_m: Number = Field(default_of(LauncherSpec, "max_alt_m"), ge=0.0, le=MAX_DISTANCE_M)
    max_tof_s: Number = Field(default_of(LauncherSpec, "max_tof_s"), gt=0.0, le=3_600.0)
    # a magazine, not a depot; the board counts rounds in a 16-bit register
    rounds: Integer = Field(default_of(LauncherSpec, "rounds"), ge=0, le=1_000)
    # the board's RELOAD_MS register is 16 bits: 65.535 s at most
    reload_s: Number = Field(default_of(LauncherSpec, "reload_s"), ge=0.0, le=65.535)
    channels: Integer = Field(default_of(LauncherSpec, "channels"), ge=0, le=64,
                              description="guidance channels: interceptors it can guide at once")
    sector_centre_deg: Number = Field(default_of(LauncherSpec, "sector_centre_deg"), ge=0.0, le=360.0,
                                      description="centre of the covered sector, clockwise from north")
    sector_width_deg: Number = Field(default_of(LauncherSpec, "sector_width_deg"), ge=0.0, le=360.0)
    lethal_radius_m: Number = Field(default_of(LauncherSpec, "lethal_radius_m"), ge=0.0, le=1_000.0)
    pk: Number = Field(default_of(LauncherSpec, "pk"), ge=0.0, le=1.0, description="single-shot kill probability")
    seeker_range_m: Number = Field(default_of(LauncherSpec, "seeker_range_m"), ge=0.0, le=100_000.0)
    seeker_half_angle_deg: Number = Field(default_of(LauncherSpec, "seeker_half_angle_deg"), ge=0.0, le=90.0)


class AssetTable(FileModel):
    """[[asset]]: a defended asset."""

    name: Name | None = Field(None, description="unique among assets; targets home_on it")
    position_enu_m: Enu | None = None
    position_lla: Lla | None = Field(None, description="[lat deg, lon deg, h m]; needs origin_lla")
    radius_m: Number = Field(default_of(AssetSpec, "radius_m"), ge=1.0, le=MAX_DISTANCE_M)
    value: Number = Field(default_of(AssetSpec, "value"), ge=0.0, le=1e6)


class NoFireZoneTable(FileModel):
    """[[no_fire_zone]]: a vertical cylinder nothing may be fired into."""

    name: Name | None = None
    centre_enu_m: Centre
    radius_m: Number = Field(ge=1.0, le=MAX_DISTANCE_M)
    # the defaults (1e9 m) mean "no floor" and "no ceiling"
    z_min_m: Number = Field(default_of(NoFireZone, "z_min_m"), ge=-1e9, le=1e9)
    z_max_m: Number = Field(default_of(NoFireZone, "z_max_m"), ge=-1e9, le=1e9)


class FireControlTable(FileModel):
    """[fire_control]: the doctrine."""

    doctrine: Literal["shoot-look-shoot", "salvo"] = default_of(Scenario, "doctrine")
    salvo_size: Integer = Field(default_of(Scenario, "salvo_size"), ge=1, le=8)
    look_scans: Integer = Field(default_of(Scenario, "look_scans"), ge=0, le=50,
                                description="scans a track is looked at after a round's intercept time")
    protect_radius_m: Number | None = Field(None, ge=0.0, le=100_000.0,
                                            description="absent: the seeker basket at acquisition plus lethal radius")


PLUGIN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*(:[A-Za-z_][A-Za-z0-9_.]*)?$"


class HostTable(FileModel):
    """[host]: the algorithms under test (docs/PLUGINS.md)."""

    tracker: str = Field(default_of(Scenario, "tracker"), max_length=200, pattern=PLUGIN_PATTERN,
                         description='"hil", "reference", an entry point of hil.trackers, or "pkg.module:factory"')
    fire_control: str = Field(default_of(Scenario, "fire_control"), max_length=200, pattern=PLUGIN_PATTERN,
                              description='"hil", an entry point of hil.fire_controls, or "pkg.module:factory"')


class ScenarioFile(FileModel):
    """A hil scenario: targets, radars, launchers, defended assets and no-fire zones."""

    name: Name | None = Field(None, description="default: the file's stem")
    description: Text = ""
    duration_s: Number = Field(ge=1.0, le=MAX_DURATION_S)
    seed: Integer = Field(1, ge=0, le=2**32 - 1)
    origin_lla: Lla | None = Field(None, description="[lat deg, lon deg, h m] of the ENU origin")
    friendly_mode3a: list[Mode3A] = Field(default_factory=list, max_length=4096)
    neutral_mode3a: list[Mode3A] = Field(default_factory=list, max_length=4096,
                                         description="codes of neutral traffic (airliners): never engaged")
    target: list[TargetTable] = Field(min_length=1, max_length=10_000)
    radar: list[RadarTable] = Field(min_length=1, max_length=255)
    launcher: list[LauncherTable] = Field(min_length=1, max_length=255)
    asset: list[AssetTable] = Field(default_factory=list, max_length=1_000)
    no_fire_zone: list[NoFireZoneTable] = Field(default_factory=list, max_length=1_000)
    fire_control: FireControlTable = FireControlTable.model_validate({})
    host: HostTable = HostTable.model_validate({})
    criteria: dict[str, Any] = Field(default_factory=dict, description="what a run must achieve (docs/CRITERIA.md)")
    faults: list[FaultText] = Field(default_factory=list, max_length=1_000,
                                    description='scheduled link faults like "launcher-north:drop=0.01@8"')


# A scenario needs these, and a missing one is said with why.
_NEEDED = {
    "radar": "a scenario needs at least one [[radar]]",
    "target": "a scenario needs at least one [[target]]",
    "launcher": "a scenario needs at least one [[launcher]]: without one there is nothing to test",
}
_ARRAYS = frozenset({"target", "radar", "launcher", "asset", "no_fire_zone"})


def _read(source: str, doc: dict[str, Any]) -> Scenario:
    for key, why in _NEEDED.items():
        if not doc.get(key):
            raise ConfigError(source, key, why)
    return _Builder(source, validate(ScenarioFile, doc, source, _ARRAYS)).scenario()


class _Builder:
    """A validated ScenarioFile into a Scenario: positions to ENU, degrees to radians, names checked."""

    def __init__(self, source: str, f: ScenarioFile) -> None:
        self.source, self.f = source, f

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(self.source, where, problem)

    def named(self, key: str, items: list[T]) -> list[tuple[str, str, T]]:
        """(where, name, table) of an array of tables, each name unique (default `<key>-<n>`)."""
        out, seen = [], set()
        for i, t in enumerate(items):
            name = getattr(t, "name", None) or f"{key}-{i + 1}"
            where = f"{key}[{i}] ({name})"
            if name in seen:
                raise self.fail(f"{where}.name", "duplicate name")
            seen.add(name)
            out.append((where, name, t))
        return out

    def position(self, where: str, key: str, enu: tuple[float, ...] | None,
                 lla: tuple[float, float, float] | None) -> tuple[float, float, float]:
        """ENU metres from `<key>_enu_m`, or from `<key>_lla` relative to the scenario's origin_lla."""
        if enu is not None and lla is not None:
            raise self.fail(f"{where}.{key}_lla", f"give {key}_enu_m or {key}_lla, not both")
        if enu is not None:
            return (enu[0], enu[1], enu[2])
        if lla is None:
            raise self.fail(where, f"needs {key}_enu_m = [x, y, z] or {key}_lla = [lat, lon, h]")
        if self.f.origin_lla is None:
            raise self.fail(f"{where}.{key}_lla", "needs origin_lla at the top of the scenario")
        e = geodetic_to_enu(*lla, self.f.origin_lla)
        x, y, z = float(e[0]), float(e[1]), float(e[2])
        if max(abs(x), abs(y), abs(z)) > MAX_DISTANCE_M:
            raise self.fail(f"{where}.{key}_lla", f"is {math.hypot(x, y, z) / 1000:.0f} km from origin_lla, "
                                                  f"more than {MAX_DISTANCE_M / 1000:.0f} km on an axis")
        return (x, y, z)

    def build(self, cls: type[T], where: str, **fields: Any) -> T:
        """cls(**fields), a failure of its own checks named by this file and `where`."""
        try:
            return cls(**fields)
        except ConfigError as e:
            raise self.fail(f"{where}.{e.field}", e.problem) from None

    def scenario(self) -> Scenario:
        f, fc = self.f, self.f.fire_control
        assets = tuple(self.asset(w, n, t) for w, n, t in self.named("asset", f.asset))
        asset_names = {a.name for a in assets}
        return Scenario(
            name=f.name or Path(self.source).stem,
            description=f.description,
            duration_s=f.duration_s,
            seed=f.seed,
            targets=tuple(self.target(w, n, t, asset_names) for w, n, t in self.named("target", f.target)),
            radars=tuple(self.radar(w, n, t) for w, n, t in self.named("radar", f.radar)),
            launchers=tuple(self.launcher(w, n, t) for w, n, t in self.named("launcher", f.launcher)),
            assets=assets,
            no_fire_zones=tuple(self.no_fire_zone(w, n, t) for w, n, t in self.named("no_fire_zone", f.no_fire_zone)),
            friendly_codes=frozenset(int(c, 8) for c in f.friendly_mode3a),
            neutral_codes=frozenset(int(c, 8) for c in f.neutral_mode3a),
            origin_lla=f.origin_lla,
            doctrine=fc.doctrine,
            salvo_size=fc.salvo_size,
            look_scans=fc.look_scans,
            protect_radius_m=fc.protect_radius_m,
            faults=tuple(f.faults),
            criteria=self.criteria(f.criteria),
            tracker=f.host.tracker,
            fire_control=f.host.fire_control,
            source=self.source,
        )

    def criteria(self, table: dict[str, Any]) -> dict[str, Any]:
        from hil.measure.verdict import criteria_from

        criteria_from(table, self.source)  # one clear line for a criterion that is wrong
        return dict(table)

    def radar(self, where: str, name: str, t: RadarTable) -> RadarSpec:
        return RadarSpec(
            name=name,
            site=self.position(where, "site", t.site_enu_m, t.site_lla),
            scan_period_s=t.scan_period_s,
            sigma_range_m=t.sigma_range_m,
            sigma_azimuth_rad=math.radians(t.sigma_azimuth_deg),
            sigma_elevation_rad=math.radians(t.sigma_elevation_deg),
            sigma_range_rate_mps=t.sigma_range_rate_mps,
            pd=t.pd,
            clutter_per_scan=t.clutter_per_scan,
            max_range_m=t.max_range_m,
            iff_reply_p=t.iff_reply_p,
            sac=t.sac,
            sic=t.sic,
            sectors=t.sectors,
            north_offset_rad=math.radians(t.north_offset_deg),
        )

    def launcher(self, where: str, name: str, t: LauncherTable) -> LauncherSpec:
        envelope = t.model_dump(exclude={"name", "position_enu_m", "position_lla"})
        return self.build(LauncherSpec, where, name=name,
                          position=self.position(where, "position", t.position_enu_m, t.position_lla), **envelope)

    def asset(self, where: str, name: str, t: AssetTable) -> AssetSpec:
        position = self.position(where, "position", t.position_enu_m, t.position_lla)
        return self.build(AssetSpec, where, name=name, position=position, radius_m=t.radius_m, value=t.value)

    def no_fire_zone(self, where: str, name: str, t: NoFireZoneTable) -> NoFireZone:
        return self.build(NoFireZone, where, name=name, centre=(t.centre_enu_m[0], t.centre_enu_m[1]),
                          radius_m=t.radius_m, z_min_m=t.z_min_m, z_max_m=t.z_max_m)

    def target(self, where: str, name: str, t: TargetTable, assets: set[str]) -> TargetSpec:
        vx, vy, vz = t.velocity_mps
        speed = math.hypot(vx, vy, vz)
        if speed < 1.0:
            raise self.fail(f"{where}.velocity_mps", "a target must move (speed below 1 m/s)")
        if speed > MAX_SPEED_MPS:
            raise self.fail(f"{where}.velocity_mps", f"speed {speed:.0f} m/s is above {MAX_SPEED_MPS:.0f} m/s")
        if t.home_on is not None and t.home_on not in assets:
            raise self.fail(f"{where}.home_on", f"no asset named {t.home_on!r}")
        return TargetSpec(
            name=name,
            allegiance=t.allegiance,
            kind=t.kind,
            position=self.position(where, "position", t.position_enu_m, t.position_lla),
            velocity=(vx, vy, vz),
            start_s=t.start_s,
            mode3a=int(t.mode3a, 8) if t.mode3a else -1,
            manoeuvres=tuple(Manoeuvre(start_s=m.start_s, duration_s=m.duration_s, turn_g=m.turn_g,
                                       climb_mps=m.climb_mps) for m in t.manoeuvre),
            home_on=t.home_on,
            max_turn_g=t.max_turn_g,
        )


# --- truth ----------------------------------------------------------------------------------------


@dataclass
class TruthSnapshot:
    """Live targets at one instant: index into scenario.targets, ENU state, Mode 3/A code."""

    index: np.ndarray  # int64[n]
    state: FloatArray  # float64[n, 6]
    mode3a: np.ndarray  # int32[n]


@dataclass
class Truth:
    """Precomputed trajectories of every target, and which are still alive (kills and impacts end them)."""

    scenario: Scenario
    times: FloatArray = field(init=False)
    states: FloatArray = field(init=False)  # [n_targets, n_times, 6]
    start_s: FloatArray = field(init=False)
    end_s: FloatArray = field(init=False)  # when the target leaves truth (impact, kill or scenario end)
    impact_s: FloatArray = field(init=False)  # when a homing target reaches its asset (inf if never)
    ended_by: list[str] = field(init=False)
    _max_speed_mps: float | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        sc = self.scenario
        self.times = np.arange(0.0, sc.duration_s + TRUTH_STEP_S, TRUTH_STEP_S)
        n = len(sc.targets)
        self.states = np.full((n, len(self.times), 6), np.nan)
        self.start_s = np.array([t.start_s for t in sc.targets], dtype=np.float64)
        self.end_s = np.full(n, float(sc.duration_s), dtype=np.float64)
        self.impact_s = np.full(n, np.inf)
        self.ended_by = ["end"] * n
        self._fly_all()

    def _fly_all(self) -> None:
        """Integrate every target at once (constant speed; turns, climbs and pursuit change direction)."""
        sc = self.scenario
        n, dt = len(sc.targets), TRUTH_STEP_S
        assets = {a.name: a for a in sc.assets}
        pos = np.array([t.position for t in sc.targets], dtype=np.float64).reshape(n, 3)
        vel = np.array([t.velocity for t in sc.targets], dtype=np.float64).reshape(n, 3)
        speed = np.linalg.norm(vel, axis=1)
        m_max = max([len(t.manoeuvres) for t in sc.targets] + [1])
        m_start = np.full((n, m_max), np.inf)
        m_end = np.full((n, m_max), -np.inf)
        m_g = np.zeros((n, m_max))
        m_climb = np.zeros((n, m_max))
        for i, t in enumerate(sc.targets):
            for j, m in enumerate(t.manoeuvres):
                m_start[i, j], m_end[i, j] = m.start_s, m.start_s + m.duration_s
                m_g[i, j], m_climb[i, j] = m.turn_g, m.climb_mps
        homing = np.array([t.home_on is not None for t in sc.targets])
        goal = np.array([assets[t.home_on].position if t.home_on else (0.0, 0.0, 0.0) for t in sc.targets],
                        dtype=np.float64).reshape(n, 3)
        reach = np.array([max(assets[t.home_on].radius_m * 0.05, 50.0) if t.home_on else 0.0 for t in sc.targets])
        max_acc = np.array([t.max_turn_g * STANDARD_GRAVITY for t in sc.targets])
        flying = np.zeros(n, dtype=bool)
        done = np.zeros(n, dtype=bool)
        for k, t in enumerate(self.times):
            flying |= (self.start_s <= t + 1e-9) & ~done
            hit = flying & homing & (np.linalg.norm(goal - pos, axis=1) < reach)
            if hit.any():
                self.impact_s[hit] = self.end_s[hit] = t
                for row in np.nonzero(hit)[0].tolist():
                    self.ended_by[row] = "impact"
                flying &= ~hit
                done |= hit
            self.states[flying, k, :3], self.states[flying, k, 3:] = pos[flying], vel[flying]
            active = (m_start <= t) & (t < m_end)  # [n, m]
            g = (m_g * active).sum(axis=1)
            climbing = active & (m_climb != 0.0)
            vel[:, 2] = np.where(climbing.any(axis=1), (m_climb * climbing).sum(axis=1), vel[:, 2])
            speed_h = np.maximum(np.hypot(vel[:, 0], vel[:, 1]), 1e-9)
            acc = np.zeros((n, 3))
            acc[:, 0] = g * STANDARD_GRAVITY * vel[:, 1] / speed_h
            acc[:, 1] = -g * STANDARD_GRAVITY * vel[:, 0] / speed_h
            if homing.any():
                acc[homing] += _pursuit_acceleration(pos[homing], vel[homing], goal[homing], max_acc[homing])
            vel = vel + acc * dt
            vel *= (speed / np.maximum(np.linalg.norm(vel, axis=1), 1e-9))[:, None]  # turns keep speed
            pos = np.where(flying[:, None], pos + vel * dt, pos)
            ground = (pos[:, 2] < 0.0) & ~homing
            pos[ground, 2], vel[ground, 2] = 0.0, 0.0

    def end(self, target: int, t_s: float, reason: str) -> None:
        """Remove a target from truth from t_s on (killed by an interceptor)."""
        if t_s < self.end_s[target]:
            self.end_s[target] = t_s
            self.ended_by[target] = reason

    def alive(self, t_s: float) -> np.ndarray:
        return np.nonzero((self.start_s <= t_s) & (t_s < self.end_s))[0]

    def state_of(self, target: int, t_s: float) -> FloatArray:
        """ENU state of one target at t_s, interpolated between the precomputed samples."""
        return np.array(self.state_tuple(target, t_s))

    def state_tuple(self, target: int, t_s: float) -> tuple[float, float, float, float, float, float]:
        """state_of as six plain floats, for a caller stepping one object at a time: the same numbers as
        states_at gives (the same operations on the same doubles), without numpy's cost per call."""
        last = len(self.times) - 1
        u = min(max(t_s / TRUTH_STEP_S, 0.0), float(last))
        k = min(int(u), last - 1)
        w = u - k
        a = self.states[target, k].tolist()
        b = self.states[target, k + 1].tolist()
        if math.isnan(b[0]):
            return a[0], a[1], a[2], a[3], a[4], a[5]
        v = 1.0 - w
        return (v * a[0] + w * b[0], v * a[1] + w * b[1], v * a[2] + w * b[2],
                v * a[3] + w * b[3], v * a[4] + w * b[4], v * a[5] + w * b[5])

    @property
    def max_speed_mps(self) -> float:
        """A bound on how fast any target moves between the precomputed samples (what states_at interpolates)."""
        if self._max_speed_mps is None:
            step = np.diff(self.states[:, :, :3], axis=1)
            dist = np.sqrt(np.einsum("ijk,ijk->ij", step, step))
            finite = dist[np.isfinite(dist)]
            self._max_speed_mps = float(finite.max()) / TRUTH_STEP_S if len(finite) else 0.0
        return self._max_speed_mps

    def states_at(self, rows: np.ndarray, times: FloatArray) -> FloatArray:
        """ENU states [n, 6] of targets rows, each at its own time, interpolated between the precomputed samples
        (the earlier sample where the later one is past the target's end)."""
        u = np.clip(np.asarray(times, dtype=np.float64) / TRUTH_STEP_S, 0.0, len(self.times) - 1.0)
        k = np.minimum(u.astype(np.int64), len(self.times) - 2)
        w = (u - k)[:, None]
        a, b = self.states[rows, k], self.states[rows, k + 1]
        return np.asarray(np.where(np.isnan(b[:, :1]), a, (1.0 - w) * a + w * b))

    def states_when(self, rows: np.ndarray, t_s: float) -> FloatArray:
        """ENU states [n, 6] of targets rows all at one time t_s: the numbers states_at gives for that time
        (the same operations on the same doubles), with the sample lookup done once."""
        last = len(self.times) - 1
        u = min(max(t_s / TRUTH_STEP_S, 0.0), float(last))
        k = min(int(u), last - 1)
        w = u - k
        a, b = self.states[rows, k], self.states[rows, k + 1]
        return np.asarray(np.where(np.isnan(b[:, :1]), a, (1.0 - w) * a + w * b))

    def at(self, t_s: float) -> TruthSnapshot:
        idx = self.alive(t_s)
        states = self.states_when(idx, t_s)
        ok = ~np.isnan(states[:, 0])
        idx, states = idx[ok], states[ok]
        codes = np.array([self.scenario.targets[int(i)].mode3a for i in idx], dtype=np.int32)
        return TruthSnapshot(index=idx.astype(np.int64), state=states, mode3a=codes)


def _pursuit_acceleration(pos: FloatArray, vel: FloatArray, goal: FloatArray, max_acc: FloatArray) -> FloatArray:
    """Lateral accelerations [n, 3] that turn each velocity toward its goal (pure pursuit), limited to max_acc."""
    to_goal = goal - pos
    dist = np.maximum(np.linalg.norm(to_goal, axis=1), 1e-6)
    speed = np.maximum(np.linalg.norm(vel, axis=1), 1e-6)
    desired = to_goal / dist[:, None] * speed[:, None]
    acc = (desired - vel) / 2.0  # close the heading error over about 2 s
    acc -= (np.sum(acc * vel, axis=1) / speed**2)[:, None] * vel  # lateral only
    norm = np.maximum(np.linalg.norm(acc, axis=1), 1e-12)
    return np.asarray(acc * np.minimum(1.0, max_acc / norm)[:, None])


# --- generated scenarios --------------------------------------------------------------------------


def tracking_scenario(
    n_targets: int = 40,
    seed: int = 1,
    duration_s: float = 300.0,
    n_radars: int = 1,
    clutter_per_scan: float = 20.0,
    crossing_pairs: int | None = None,
    turning: int | None = None,
    turn_g: float = 4.0,
    min_range_m: float = 5_000.0,
    max_range_m: float = 120_000.0,
) -> Scenario:
    """The tracking reference scene: targets at 5–120 km, crossing pairs and 4 g turns.

    Radars: sigma_r 50 m, sigma_az = sigma_el 0.2 deg, sigma_rr 5 m/s, Pd 0.9, 1 s scans. With two
    radars the second stands 40 km east of the first.
    """
    rng = np.random.default_rng(seed)
    crossing_pairs = n_targets // 8 if crossing_pairs is None else crossing_pairs
    turning = n_targets // 8 if turning is None else turning
    targets: list[TargetSpec] = []
    span = max_range_m - min_range_m

    def random_target(i: int) -> TargetSpec:
        r = min_range_m + span * (0.15 + 0.7 * rng.random())
        bearing = rng.uniform(0, 2 * np.pi)
        heading = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(150.0, 300.0)
        z = rng.uniform(1_000.0, 10_000.0)
        return TargetSpec(
            name=f"t{i:04d}", allegiance="hostile", kind="aircraft",
            position=(r * math.sin(bearing), r * math.cos(bearing), z),
            velocity=(speed * math.sin(heading), speed * math.cos(heading), 0.0),
        )

    i = 0
    for _ in range(min(crossing_pairs, n_targets // 2)):
        # two targets through one point at one time, headings 30–90 degrees apart, 300 m apart in height
        r = min_range_m + span * (0.3 + 0.4 * rng.random())
        bearing = rng.uniform(0, 2 * np.pi)
        meet = np.array([r * math.sin(bearing), r * math.cos(bearing)])
        t_meet = rng.uniform(0.3, 0.6) * duration_s
        h0 = rng.uniform(0, 2 * np.pi)
        for heading, z in ((h0, 5_000.0), (h0 + rng.uniform(np.pi / 6, np.pi / 2), 5_300.0)):
            speed = rng.uniform(180.0, 250.0)
            v = np.array([speed * math.sin(heading), speed * math.cos(heading)])
            p = meet - v * t_meet
            targets.append(TargetSpec(name=f"t{i:04d}", allegiance="hostile", kind="aircraft",
                                      position=(float(p[0]), float(p[1]), z), velocity=(float(v[0]), float(v[1]), 0.0)))
            i += 1
    for k in range(n_targets - len(targets)):
        spec = random_target(i)
        if k < turning:
            start = rng.uniform(0.2, 0.6) * duration_s
            spec = TargetSpec(**{**spec.__dict__, "manoeuvres": (
                Manoeuvre(start_s=start, duration_s=20.0, turn_g=turn_g * rng.choice([-1.0, 1.0])),)})
        targets.append(spec)
        i += 1
    radars = [
        RadarSpec(name=f"radar-{j + 1}", site=(40_000.0 * j, 0.0, 10.0), clutter_per_scan=clutter_per_scan,
                  max_range_m=max_range_m + 60_000.0, sic=j + 1)
        for j in range(n_radars)
    ]
    return Scenario(name=f"tracking-{n_targets}", duration_s=duration_s, seed=seed,
                    targets=tuple(targets), radars=tuple(radars))
