"""Plain-Python twin of the fire-command kernel (hil.ext.fire_command): the fire block's aim and its request, as the
launcher link built them in Python before the kernel, and the fire orders' fields, as the host built them. The kernel
tests hold the kernel to it, byte for byte and tuple for tuple. The model is in ext/fire_command.pyx's docstring."""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from hil.drivers.modbus_rtu import write_multiple_request
from hil.drivers.registers import fire_block


def aim_registers(azimuth_rad: float, elevation_rad: float, range_m: float, tgo_s: float, el_min_cdeg: int,
                  el_max_cdeg: int, range_max_m: int) -> tuple[int, int, int, int] | None:
    """The aim as FIRE_AZ_CDEG, FIRE_EL_CDEG, FIRE_RANGE_M, FIRE_TGO_CS, or None if it cannot be sent."""
    if not all(math.isfinite(v) for v in (azimuth_rad, elevation_rad, range_m, tgo_s)):
        return None
    el_cdeg, tgo_cs = math.degrees(elevation_rad) * 100, tgo_s * 100
    if not (math.isfinite(el_cdeg) and math.isfinite(tgo_cs)):  # beyond any register: refused, never raised
        return None
    az = round(math.degrees(azimuth_rad % (2 * math.pi)) * 100) % 36000
    el, rng, tgo = round(el_cdeg), round(range_m), round(tgo_cs)
    if not (el_min_cdeg <= el <= el_max_cdeg and 0 <= rng <= range_max_m and 0 <= tgo <= 0xFFFF):
        return None
    return az, el, rng, tgo


def fire_request(track_id: int, azimuth_rad: float, elevation_rad: float, range_m: float, tgo_s: float, seq: int,
                 block_address: int, el_min_cdeg: int, el_max_cdeg: int, range_max_m: int) -> bytes | None:
    """What hil.ext.fire_command.fire_request returns, the same way."""
    aim = aim_registers(azimuth_rad, elevation_rad, range_m, tgo_s, el_min_cdeg, el_max_cdeg, range_max_m)
    return None if aim is None else write_multiple_request(block_address, fire_block(track_id, *aim, seq))


NO_T0 = 2**62  # hil.host.host.NO_T0


def _index_rows(rows: npt.ArrayLike) -> list[int]:
    """Row indices as int64; one beyond int64 clamped to 2**62 (out of range, never wrapped)."""
    try:
        return list(np.asarray(rows, np.int64).tolist())
    except OverflowError:
        return [min(max(int(v), -1), 2**62) for v in np.asarray(rows, object).tolist()]


def fire_orders(track_index: npt.ArrayLike, launcher_index: npt.ArrayLike, intercept_enu: npt.ArrayLike,
                time_of_flight_s: npt.ArrayLike, track_id: npt.ArrayLike, status: npt.ArrayLike,
                friendly: npt.ArrayLike, neutral: npt.ArrayLike, last_update_s: npt.ArrayLike,
                fresh_plot_times: npt.ArrayLike, fresh_t_abs_s: npt.ArrayLike, fresh_uncertainty_ns: float,
                fresh_uncertainties_ns: npt.ArrayLike | None, sites: npt.ArrayLike) -> list[tuple[Any, ...]]:
    """What hil.ext.fire_command.fire_orders returns, assignment by assignment in plain Python."""
    tis, lis = _index_rows(track_index), _index_rows(launcher_index)
    aims, tofs = np.asarray(intercept_enu, np.float64).reshape(-1, 3).tolist(), np.asarray(time_of_flight_s,
                                                                                          np.float64).tolist()
    ids, st = np.asarray(track_id, np.int64).tolist(), np.asarray(status, np.int8).tolist()
    fr, ne = np.asarray(friendly, bool).tolist(), np.asarray(neutral, bool).tolist()
    last = np.asarray(last_update_s, np.float64).tolist()
    times, t_abs = np.asarray(fresh_plot_times, np.float64).tolist(), np.asarray(fresh_t_abs_s, np.float64).tolist()
    uncs = None if fresh_uncertainties_ns is None else np.asarray(fresh_uncertainties_ns, np.float64).tolist()
    site_rows = np.asarray(sites, np.float64).reshape(-1, 5).tolist()
    out: list[tuple[Any, ...]] = []
    for k, (ti, li) in enumerate(zip(tis, lis, strict=True)):
        if not (0 <= ti < len(ids) and 0 <= li < len(site_rows)):
            out.append((k, ti, -1, -1, 1, 0.0, -1, 0, 0, (0.0, 0.0, 0.0), 0.0))
            continue
        why = 2 if fr[ti] else 3 if ne[ti] else 4 if st[ti] != 2 else 0  # HOST_INTERLOCKS' order
        if why:
            out.append((k, ti, li, ids[ti], why, 0.0, -1, 0, 0, (0.0, 0.0, 0.0), 0.0))
            continue
        plot_t = last[ti]
        row = bisect.bisect_right(times, plot_t) - 1
        row = row if row >= 0 and times[row] == plot_t else -1
        t0_ns, unc_ns = 0, NO_T0
        if row >= 0:
            u = fresh_uncertainty_ns if uncs is None else uncs[row]
            t0_s = t_abs[row] * 1e9
            if math.isfinite(u) and abs(u) < NO_T0 and math.isfinite(t0_s) and abs(t0_s) < 9.2e18:
                t0_ns, unc_ns = int(t0_s), int(u)
        east, north, centre_deg, slew_dps, delay_s = site_rows[li]
        aim = aims[k]
        az_deg = math.degrees(math.atan2(aim[0] - east, aim[1] - north))
        turn = abs((az_deg - centre_deg + 180.0) % 360.0 - 180.0)
        slew_s = turn / slew_dps if slew_dps > 0 else 0.0
        out.append((k, ti, li, ids[ti], 0, plot_t, row, t0_ns, unc_ns, tuple(aim), delay_s + slew_s + tofs[k]))
    return out
