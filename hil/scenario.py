"""Scenarios: the plant's truth (targets, sensors, launchers, defended assets) loaded from TOML or generated."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from hil.errors import ConfigError, read_toml
from hil.geo import STANDARD_GRAVITY, FloatArray, geodetic_to_enu

ALLEGIANCES = ("hostile", "friendly", "neutral")
TRUTH_STEP_S = 0.05
T = TypeVar("T")


def parse_mode3a(value: object, source: str, field_name: str) -> int:
    """A Mode 3/A code written as four octal digits ("4021") as its 12-bit value; -1 for none."""
    if value is None or value == "":
        return -1
    text = str(value)
    if len(text) != 4 or any(c not in "01234567" for c in text):
        raise ConfigError(source, field_name, f"Mode 3/A code must be four octal digits, got {value!r}")
    return int(text, 8)


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
class LauncherSite:
    """A launcher: where it stands and its envelope (what fire control plans with), and what the plant flies
    and counts (interceptor_max_g, rounds, reload_s, lethal_radius_m). hil.fire_control calls it LauncherSpec."""

    name: str
    position: tuple[float, float, float]
    interceptor_speed_mps: float = 1000.0
    interceptor_max_g: float = 30.0
    launch_delay_s: float = 1.0
    slew_rate_dps: float = 60.0  # 0: no slew time counted
    min_range_m: float = 2_000.0
    max_range_m: float = 40_000.0
    min_alt_m: float = 30.0
    max_alt_m: float = 20_000.0
    max_tof_s: float = 60.0
    rounds: int = 4
    reload_s: float = 2.0
    channels: int = 2
    # azimuth sector the launcher covers, clockwise from north; its centre is also the rest azimuth slew starts from
    sector_centre_deg: float = 0.0
    sector_width_deg: float = 360.0
    lethal_radius_m: float = 15.0
    pk: float = 0.85  # single-shot pk in the best conditions
    # the interceptor's terminal seeker (the plant's, hil.engagement): it acquires at this range from what it
    # homes on, and takes a true object only inside its basket, a cone of this half-angle around its boresight
    seeker_range_m: float = 8_000.0
    seeker_half_angle_deg: float = 10.0

    def __post_init__(self) -> None:
        src = f"launcher {self.name}"
        if not self.interceptor_speed_mps > 0.0:
            raise ConfigError(src, "interceptor_speed_mps", "must be positive")
        if not 0.0 <= self.min_range_m < self.max_range_m:
            raise ConfigError(src, "min_range_m", "must be >= 0 and below max_range_m")
        if not self.min_alt_m <= self.max_alt_m:
            raise ConfigError(src, "min_alt_m", "must not exceed max_alt_m")
        if not (self.launch_delay_s >= 0.0 and self.slew_rate_dps >= 0.0 and self.max_tof_s > 0.0):
            raise ConfigError(src, "launch_delay_s", "delay and slew rate must be >= 0, max_tof_s > 0")
        if not 0.0 <= self.sector_width_deg <= 360.0:
            raise ConfigError(src, "sector_width_deg", "must be in [0, 360]")
        if self.channels < 0 or not 0.0 <= self.pk <= 1.0:
            raise ConfigError(src, "pk", "channels must be >= 0 and pk in [0, 1]")
        if not all(math.isfinite(c) for c in self.position):
            raise ConfigError(src, "position", "must be finite")


@dataclass(frozen=True)
class AssetSite:
    """A defended asset (hil.fire_control's AssetSpec)."""

    name: str
    position: tuple[float, float, float]
    radius_m: float = 1_000.0
    value: float = 1.0

    def __post_init__(self) -> None:
        if not (self.radius_m > 0.0 and self.value >= 0.0):
            raise ConfigError(f"asset {self.name}", "radius_m", "radius must be positive and value >= 0")


@dataclass(frozen=True)
class NoFireZoneSpec:
    """A vertical cylinder nothing may be fired into (or at) (hil.fire_control's NoFireZone)."""

    name: str
    centre: tuple[float, float]
    radius_m: float
    z_min_m: float = -1e9
    z_max_m: float = 1e9

    def __post_init__(self) -> None:
        if not (self.radius_m > 0.0 and self.z_min_m <= self.z_max_m):
            raise ConfigError(f"no-fire zone {self.name}", "radius_m", "radius must be positive, z_min <= z_max")


@dataclass(frozen=True)
class Scenario:
    name: str
    duration_s: float
    seed: int
    targets: tuple[TargetSpec, ...]
    radars: tuple[RadarSpec, ...]
    launchers: tuple[LauncherSite, ...] = ()
    assets: tuple[AssetSite, ...] = ()
    no_fire_zones: tuple[NoFireZoneSpec, ...] = ()
    friendly_codes: frozenset[int] = frozenset()
    neutral_codes: frozenset[int] = frozenset()  # Mode 3/A codes of neutral traffic (airliners): never engaged
    origin_lla: tuple[float, float, float] | None = None
    doctrine: str = "shoot-look-shoot"  # or "salvo"
    salvo_size: int = 2
    look_scans: int = 2  # kill assessment: scans a track is looked at after a round's intercept time
    protect_radius_m: float | None = None  # None: the seeker basket at acquisition plus the lethal radius
    faults: tuple[str, ...] = ()  # scheduled link faults, in the grammar of `hil run --fault`
    source: str = "<generated>"
    description: str = ""

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        return _ScenarioReader(str(path), read_toml(path, "scenario")).read()

    def truth(self) -> Truth:
        return Truth(self)


# --- reading TOML with errors that name the field -------------------------------------------------


class _ScenarioReader:
    def __init__(self, source: str, doc: dict[str, Any]) -> None:
        self.source, self.doc = source, doc

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(self.source, where, problem)

    def number(self, table: dict[str, Any], key: str, where: str, default: float | None = None,
               lo: float = -math.inf, hi: float = math.inf) -> float:
        if key not in table:
            if default is None:
                raise self.fail(f"{where}.{key}", "missing")
            return default
        v = table[key]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.fail(f"{where}.{key}", f"must be a number, got {v!r}")
        if not (lo <= v <= hi) or math.isnan(v):
            raise self.fail(f"{where}.{key}", f"{v} is outside [{lo}, {hi}]")
        return float(v)

    def vector(self, table: dict[str, Any], key: str, where: str, n: int = 3) -> tuple[float, ...]:
        v = table.get(key)
        if v is None:
            raise self.fail(f"{where}.{key}", "missing")
        if not isinstance(v, list) or len(v) != n or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in v
        ):
            raise self.fail(f"{where}.{key}", f"must be a list of {n} numbers, got {v!r}")
        return tuple(float(x) for x in v)

    def position(self, table: dict[str, Any], where: str, key: str = "position") -> tuple[float, float, float]:
        """ENU metres from `<key>_enu_m`, or from `<key>_lla` relative to the scenario's origin_lla."""
        if f"{key}_enu_m" in table:
            x, y, z = self.vector(table, f"{key}_enu_m", where)
            return (x, y, z)
        if f"{key}_lla" in table:
            if "origin_lla" not in self.doc:
                raise self.fail(f"{where}.{key}_lla", "needs origin_lla at the top of the scenario")
            lat, lon, h = self.vector(table, f"{key}_lla", where)
            e = geodetic_to_enu(lat, lon, h, self.origin())
            return (float(e[0]), float(e[1]), float(e[2]))
        raise self.fail(where, f"needs {key}_enu_m = [x, y, z] or {key}_lla = [lat, lon, h]")

    def origin(self) -> tuple[float, float, float]:
        lat, lon, h = self.vector(self.doc, "origin_lla", "origin_lla")
        return (lat, lon, h)

    def tables(self, key: str) -> list[tuple[str, dict[str, Any]]]:
        items = self.doc.get(key, [])
        if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
            raise self.fail(key, "must be an array of tables ([[" + key + "]])")
        out = []
        names: set[str] = set()
        for i, t in enumerate(items):
            name = t.get("name", f"{key}-{i + 1}")
            where = f"{key}[{i}] ({name})"
            if name in names:
                raise self.fail(f"{where}.name", "duplicate name")
            names.add(name)
            out.append((where, t))
        return out

    def build(self, cls: type[T], where: str, **fields: Any) -> T:
        """cls(**fields), a failure of its own checks named by this file and `where`."""
        try:
            return cls(**fields)
        except ConfigError as e:
            raise self.fail(f"{where}.{e.field}", e.problem) from None

    def check_keys(self, table: dict[str, Any], where: str, allowed: set[str]) -> None:
        for k in table:
            if k not in allowed:
                raise self.fail(f"{where}.{k}", f"unknown field (known: {', '.join(sorted(allowed))})")

    def read(self) -> Scenario:
        d = self.doc
        self.check_keys(d, "scenario", {"name", "description", "duration_s", "seed", "origin_lla",
                                         "friendly_mode3a", "neutral_mode3a", "target", "radar", "launcher",
                                         "asset", "no_fire_zone", "fire_control", "faults"})
        fc = d.get("fire_control", {})
        if not isinstance(fc, dict):
            raise self.fail("fire_control", "must be a table")
        self.check_keys(fc, "fire_control", {"doctrine", "salvo_size", "look_scans", "protect_radius_m"})
        doctrine = fc.get("doctrine", "shoot-look-shoot")
        if doctrine not in ("shoot-look-shoot", "salvo"):
            raise self.fail("fire_control.doctrine", f"must be shoot-look-shoot or salvo, got {doctrine!r}")
        salvo_size = int(self.number(fc, "salvo_size", "fire_control", 2, 1, 8))
        duration = self.number(d, "duration_s", "scenario", lo=1.0, hi=86_400.0)
        seed = int(self.number(d, "seed", "scenario", default=1, lo=0, hi=2**32 - 1))
        friendly = d.get("friendly_mode3a", [])
        if not isinstance(friendly, list):
            raise self.fail("friendly_mode3a", "must be a list of octal codes")
        codes = frozenset(parse_mode3a(c, self.source, "friendly_mode3a") for c in friendly)
        neutral = d.get("neutral_mode3a", [])
        if not isinstance(neutral, list):
            raise self.fail("neutral_mode3a", "must be a list of octal codes")
        neutral_codes = frozenset(parse_mode3a(c, self.source, "neutral_mode3a") for c in neutral)
        look_scans = int(self.number(fc, "look_scans", "fire_control", 2, 0, 50))
        protect = self.number(fc, "protect_radius_m", "fire_control", -1.0, 0.0, 100_000.0)
        faults = d.get("faults", [])
        if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
            raise self.fail("faults", "must be a list of strings like \"launcher-north:drop=0.01@8\"")
        radars = tuple(self.radar(w, t) for w, t in self.tables("radar"))
        if not radars:
            raise self.fail("radar", "a scenario needs at least one [[radar]]")
        assets = tuple(self.asset(w, t) for w, t in self.tables("asset"))
        asset_names = {a.name for a in assets}
        targets = tuple(self.target(w, t, asset_names) for w, t in self.tables("target"))
        if not targets:
            raise self.fail("target", "a scenario needs at least one [[target]]")
        return Scenario(
            name=str(d.get("name", Path(self.source).stem)),
            description=str(d.get("description", "")),
            duration_s=duration,
            seed=seed,
            targets=targets,
            radars=radars,
            launchers=tuple(self.launcher(w, t) for w, t in self.tables("launcher")),
            assets=assets,
            no_fire_zones=tuple(self.no_fire_zone(w, t) for w, t in self.tables("no_fire_zone")),
            friendly_codes=codes,
            neutral_codes=neutral_codes,
            origin_lla=self.origin() if "origin_lla" in d else None,
            doctrine=doctrine,
            salvo_size=salvo_size,
            look_scans=look_scans,
            protect_radius_m=None if protect < 0 else protect,
            faults=tuple(faults),
            source=self.source,
        )

    def radar(self, where: str, t: dict[str, Any]) -> RadarSpec:
        self.check_keys(t, where, {"name", "site_enu_m", "site_lla", "scan_period_s", "sigma_range_m",
                                   "sigma_azimuth_deg", "sigma_elevation_deg", "sigma_range_rate_mps", "pd",
                                   "clutter_per_scan", "max_range_m", "iff_reply_p", "sac", "sic", "sectors",
                                   "north_offset_deg"})
        n = self.number
        return RadarSpec(
            name=str(t.get("name")),
            site=self.position(t, where, "site"),
            scan_period_s=n(t, "scan_period_s", where, 1.0, 0.1, 60.0),
            sigma_range_m=n(t, "sigma_range_m", where, 50.0, 0.0, 10_000.0),
            sigma_azimuth_rad=math.radians(n(t, "sigma_azimuth_deg", where, 0.2, 0.0, 10.0)),
            sigma_elevation_rad=math.radians(n(t, "sigma_elevation_deg", where, 0.2, 0.0, 10.0)),
            sigma_range_rate_mps=n(t, "sigma_range_rate_mps", where, 5.0, 0.0, 1000.0),
            pd=n(t, "pd", where, 0.9, 0.0, 1.0),
            clutter_per_scan=n(t, "clutter_per_scan", where, 20.0, 0.0, 10_000.0),
            max_range_m=n(t, "max_range_m", where, 150_000.0, 1_000.0, 470_000.0),
            iff_reply_p=n(t, "iff_reply_p", where, 0.98, 0.0, 1.0),
            sac=int(n(t, "sac", where, 1, 0, 255)),
            sic=int(n(t, "sic", where, 1, 0, 255)),
            sectors=int(n(t, "sectors", where, 16, 1, 64)),
            north_offset_rad=math.radians(n(t, "north_offset_deg", where, 0.0, 0.0, 360.0)),
        )

    def launcher(self, where: str, t: dict[str, Any]) -> LauncherSite:
        known = {f.name for f in LauncherSite.__dataclass_fields__.values()} - {"position"}
        self.check_keys(t, where, known | {"position_enu_m", "position_lla"})
        kwargs: dict[str, Any] = {}
        for key in known - {"name"}:
            if key in t:
                kwargs[key] = self.number(t, key, where, lo=0.0)
        for key in ("rounds", "channels"):
            if key in kwargs:
                kwargs[key] = int(kwargs[key])
        return self.build(LauncherSite, where, name=str(t.get("name")), position=self.position(t, where), **kwargs)

    def asset(self, where: str, t: dict[str, Any]) -> AssetSite:
        self.check_keys(t, where, {"name", "position_enu_m", "position_lla", "radius_m", "value"})
        return self.build(
            AssetSite, where,
            name=str(t.get("name")),
            position=self.position(t, where),
            radius_m=self.number(t, "radius_m", where, 1000.0, 1.0, 1e6),
            value=self.number(t, "value", where, 1.0, 0.0, 1e6),
        )

    def no_fire_zone(self, where: str, t: dict[str, Any]) -> NoFireZoneSpec:
        self.check_keys(t, where, {"name", "centre_enu_m", "radius_m", "z_min_m", "z_max_m"})
        cx, cy = self.vector(t, "centre_enu_m", where, 2)
        return self.build(
            NoFireZoneSpec, where,
            name=str(t.get("name")),
            centre=(cx, cy),
            radius_m=self.number(t, "radius_m", where, lo=1.0),
            z_min_m=self.number(t, "z_min_m", where, -1e9),
            z_max_m=self.number(t, "z_max_m", where, 1e9),
        )

    def target(self, where: str, t: dict[str, Any], assets: set[str]) -> TargetSpec:
        self.check_keys(t, where, {"name", "allegiance", "kind", "position_enu_m", "position_lla",
                                   "velocity_mps", "start_s", "mode3a", "manoeuvre", "home_on", "max_turn_g"})
        allegiance = str(t.get("allegiance", "hostile"))
        if allegiance not in ALLEGIANCES:
            raise self.fail(f"{where}.allegiance", f"must be one of {', '.join(ALLEGIANCES)}, got {allegiance!r}")
        velocity = self.vector(t, "velocity_mps", where)
        if math.hypot(*velocity) < 1.0:
            raise self.fail(f"{where}.velocity_mps", "a target must move (speed below 1 m/s)")
        home_on = t.get("home_on")
        if home_on is not None and home_on not in assets:
            raise self.fail(f"{where}.home_on", f"no asset named {home_on!r}")
        manoeuvres = []
        for j, m in enumerate(t.get("manoeuvre", [])):
            mw = f"{where}.manoeuvre[{j}]"
            self.check_keys(m, mw, {"start_s", "duration_s", "turn_g", "climb_mps"})
            manoeuvres.append(Manoeuvre(
                start_s=self.number(m, "start_s", mw, lo=0.0),
                duration_s=self.number(m, "duration_s", mw, lo=0.0),
                turn_g=self.number(m, "turn_g", mw, 0.0, -15.0, 15.0),
                climb_mps=self.number(m, "climb_mps", mw, 0.0, -500.0, 500.0),
            ))
        x, y, z = self.position(t, where)
        return TargetSpec(
            name=str(t.get("name")),
            allegiance=allegiance,
            kind=str(t.get("kind", "aircraft")),
            position=(x, y, z),
            velocity=(velocity[0], velocity[1], velocity[2]),
            start_s=self.number(t, "start_s", where, 0.0, 0.0),
            mode3a=parse_mode3a(t.get("mode3a"), self.source, f"{where}.mode3a"),
            manoeuvres=tuple(manoeuvres),
            home_on=home_on,
            max_turn_g=self.number(t, "max_turn_g", where, 20.0, 0.1, 60.0),
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
        return self.states_at(np.array([target]), np.array([t_s]))[0]

    def states_at(self, rows: np.ndarray, times: FloatArray) -> FloatArray:
        """ENU states [n, 6] of targets rows, each at its own time, interpolated between the precomputed samples
        (the earlier sample where the later one is past the target's end)."""
        u = np.clip(np.asarray(times, dtype=np.float64) / TRUTH_STEP_S, 0.0, len(self.times) - 1.0)
        k = np.minimum(u.astype(np.int64), len(self.times) - 2)
        w = (u - k)[:, None]
        a, b = self.states[rows, k], self.states[rows, k + 1]
        return np.asarray(np.where(np.isnan(b[:, :1]), a, (1.0 - w) * a + w * b))

    def at(self, t_s: float) -> TruthSnapshot:
        idx = self.alive(t_s)
        states = self.states_at(idx, np.full(len(idx), t_s))
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
    """The tracking benchmark scene of issue 3: targets at 5–120 km, crossing pairs and 4 g turns.

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
