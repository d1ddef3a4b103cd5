"""Plain-Python twin of the fire-command kernel (hil.ext.fire_command): the fire block's aim and its request, as the
launcher link built them in Python before the kernel. tests/kernels/test_fire_command.py holds the kernel to it, byte
for byte. The model is in ext/fire_command.pyx's docstring."""

from __future__ import annotations

import math

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
