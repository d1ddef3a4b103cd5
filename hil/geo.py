"""Geometry of the one local ENU frame: polar measurements, sites and WGS-84 conversion.

Conventions everywhere in hil: x east, y north, z up (metres); azimuth clockwise from north and
elevation up from the horizontal (radians); range-rate positive when the target recedes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)
METRES_PER_NM = 1852.0
METRES_PER_FOOT = 0.3048
STANDARD_GRAVITY = 9.80665


def enu_to_polar(rel: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Range, azimuth (clockwise from north, in [0, 2π)) and elevation of ENU offsets (..., 3)."""
    x, y, z = rel[..., 0], rel[..., 1], rel[..., 2]
    ground = np.hypot(x, y)
    rng = np.hypot(ground, z)
    az = np.mod(np.arctan2(x, y), 2.0 * np.pi)
    el = np.arctan2(z, ground)
    return rng, az, el


def polar_to_enu(rng: FloatArray, az: FloatArray, el: FloatArray) -> FloatArray:
    """ENU offsets (..., 3) of polar measurements; inverse of enu_to_polar."""
    ground = rng * np.cos(el)
    return np.stack([ground * np.sin(az), ground * np.cos(az), rng * np.sin(el)], axis=-1)


def range_rate(rel: FloatArray, rel_vel: FloatArray) -> FloatArray:
    """Radial speed (positive receding) of targets at ENU offsets rel moving at rel_vel."""
    rng = np.linalg.norm(rel, axis=-1)
    return np.sum(rel * rel_vel, axis=-1) / np.maximum(rng, 1e-9)


def geodetic_to_ecef(lat_deg: float, lon_deg: float, h_m: float) -> FloatArray:
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    n = WGS84_A / np.sqrt(1.0 - WGS84_E2 * np.sin(lat) ** 2)
    return np.array(
        [
            (n + h_m) * np.cos(lat) * np.cos(lon),
            (n + h_m) * np.cos(lat) * np.sin(lon),
            (n * (1.0 - WGS84_E2) + h_m) * np.sin(lat),
        ]
    )


def geodetic_to_enu(
    lat_deg: float, lon_deg: float, h_m: float, origin: tuple[float, float, float]
) -> FloatArray:
    """ENU position of a WGS-84 point relative to origin (lat_deg, lon_deg, h_m)."""
    lat0, lon0 = np.radians(origin[0]), np.radians(origin[1])
    d = geodetic_to_ecef(lat_deg, lon_deg, h_m) - geodetic_to_ecef(*origin)
    sl, cl, so, co = np.sin(lat0), np.cos(lat0), np.sin(lon0), np.cos(lon0)
    rot = np.array([[-so, co, 0.0], [-sl * co, -sl * so, cl], [cl * co, cl * so, sl]])
    return np.asarray(rot @ d, dtype=np.float64)
