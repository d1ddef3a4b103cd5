"""The host's side of tracking: sensor definitions read from sensors.toml, and the arrays the tracker is built
with. The tracker's own types (TrackerConfig, SensorDef, TrackSnapshot, TrackStatus, ReorderBuffer) live with
the kernel, in hil.ext.tracker_types."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from hil.errors import ConfigError, read_toml
from hil.ext.tracker_types import SensorDef
from hil.geo import FloatArray, geodetic_to_enu


def sensor_arrays(sensors: list[SensorDef]) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(sites [n,3], sigmas [n,4] as range, azimuth, elevation, range-rate, max range [n]) for Tracker()."""
    sites = np.array([s.site_enu_m for s in sensors], dtype=np.float64).reshape(len(sensors), 3)
    sigmas = np.array([[s.sigma_range_m, s.sigma_azimuth_rad, s.sigma_elevation_rad, s.sigma_range_rate_mps]
                       for s in sensors], dtype=np.float64).reshape(len(sensors), 4)
    max_range = np.array([s.max_range_m for s in sensors], dtype=np.float64)
    return sites, sigmas, max_range


_SENSOR_KEYS = {"name", "site_enu_m", "site_lla", "sigma_range_m", "sigma_azimuth_deg", "sigma_elevation_deg",
                "sigma_range_rate_mps", "max_range_m"}


def load_sensors(path: str | Path) -> list[SensorDef]:
    """Sensors from a TOML file: [[sensor]] tables (site_enu_m or site_lla with a top-level origin_lla)."""
    return sensors_from_doc(read_toml(path, "sensors"), str(path))


def sensors_from_doc(doc: dict[str, Any], source: str) -> list[SensorDef]:
    for key in doc:
        if key not in ("origin_lla", "sensor"):
            raise ConfigError(source, key, "unknown field (known: origin_lla, sensor)")
    tables = doc.get("sensor")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(source, "sensor", "needs one or more [[sensor]] tables")
    origin = None
    if "origin_lla" in doc:
        origin = _vector(doc["origin_lla"], source, "origin_lla")
    out: list[SensorDef] = []
    for i, t in enumerate(tables):
        where = f"sensor[{i}]"
        for key in t:
            if key not in _SENSOR_KEYS:
                raise ConfigError(source, f"{where}.{key}", f"unknown field (known: {', '.join(sorted(_SENSOR_KEYS))})")
        name = t.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(source, f"{where}.name", "missing (every sensor needs a name)")
        where = f"sensor[{i}] ({name})"
        if name in {s.name for s in out}:
            raise ConfigError(source, f"{where}.name", "duplicate name")
        if "site_enu_m" in t:
            x, y, z = _vector(t["site_enu_m"], source, f"{where}.site_enu_m")
        elif "site_lla" in t:
            if origin is None:
                raise ConfigError(source, f"{where}.site_lla", "needs origin_lla = [lat, lon, h] at the top level")
            lat, lon, h = _vector(t["site_lla"], source, f"{where}.site_lla")
            x, y, z = (float(v) for v in geodetic_to_enu(lat, lon, h, origin))
        else:
            raise ConfigError(source, where, "needs site_enu_m = [x, y, z] or site_lla = [lat, lon, h]")

        def num(key: str, default: float, lo: float, hi: float, where: str = where,
                t: dict[str, Any] = t) -> float:
            v = t.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int | float) or not (lo < v <= hi):
                raise ConfigError(source, f"{where}.{key}", f"must be a number in ({lo}, {hi}], got {v!r}")
            return float(v)

        out.append(SensorDef(
            name=name, site_enu_m=(x, y, z),
            sigma_range_m=num("sigma_range_m", 50.0, 0.0, 10_000.0),
            sigma_azimuth_rad=math.radians(num("sigma_azimuth_deg", 0.2, 0.0, 10.0)),
            sigma_elevation_rad=math.radians(num("sigma_elevation_deg", 0.2, 0.0, 10.0)),
            sigma_range_rate_mps=num("sigma_range_rate_mps", 5.0, 0.0, 1_000.0),
            max_range_m=num("max_range_m", math.inf, 0.0, math.inf),
        ))
    return out


def _vector(v: object, source: str, where: str) -> tuple[float, float, float]:
    if not isinstance(v, list) or len(v) != 3 or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in v):
        raise ConfigError(source, where, f"must be a list of 3 numbers, got {v!r}")
    return (float(v[0]), float(v[1]), float(v[2]))
