# cython: language_level=3
# distutils: extra_compile_args = -ffp-contract=off
"""The fire command's request, compiled: the launcher link's last step before a fire goes on the wire (hil.drivers.
launcher_link.LauncherLink.fire_now), in one call instead of a dozen Python steps on the fire path.

fire_request(track_id, azimuth_rad, elevation_rad, range_m, tgo_s, seq, ...) is, byte for byte,
    modbus_rtu.write_multiple_request(FIRE_BLOCK, registers.fire_block(track_id, *aim, seq))
with the aim as its plain twin (hil.ext.reference.fire_command, the launcher link's Python before this kernel)
reckons it, or None where the aim cannot be sent: azimuth in centidegrees clockwise from north (0..35999, the
azimuth taken modulo a turn as Python's % takes it), elevation in centidegrees within the register's limits, range
in metres and time to go in centiseconds within 0..65535, each rounded half to even as Python's round() rounds;
then the block FIRE_TRACK..FIRE_SEQ and FIRE_CHECK (CRC-16/MODBUS over the six registers, big-endian), as the
function-16 request PDU. tests/kernels/test_fire_command.py holds the two to the same bytes.
"""

from libc.math cimport M_PI, fmod, isfinite, rint
from libc.stdint cimport uint8_t, uint16_t

cdef double RAD_TO_DEG = 180.0 / M_PI  # math.degrees' factor (CPython's radToDeg)
cdef double TURN = 2.0 * M_PI


cdef inline double py_mod(double x, double m) noexcept nogil:
    """x % m as Python computes it for floats, m > 0 (CPython's float_rem)."""
    cdef double r = fmod(x, m)
    if r != 0.0:
        if r < 0.0:
            r += m
    else:
        r = 0.0
    return r


cdef inline uint16_t crc16_modbus(const uint8_t* data, int n) noexcept nogil:
    """CRC-16/MODBUS (reflected poly 0xA001, init 0xFFFF), as hil.drivers.modbus_rtu.crc16."""
    cdef uint16_t crc = 0xFFFF
    cdef int i, b
    for i in range(n):
        crc ^= data[i]
        for b in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0xA001
            else:
                crc >>= 1
    return crc


def fire_request(long long track_id, double azimuth_rad, double elevation_rad, double range_m, double tgo_s,
                 int seq, int block_address, int el_min_cdeg, int el_max_cdeg, int range_max_m):
    """The request PDU writing one fire block, or None when the aim cannot be sent (the module docstring)."""
    cdef double az, el, rng, tgo
    cdef uint16_t regs[7]
    cdef uint8_t pdu[20]
    cdef int k
    if not (isfinite(azimuth_rad) and isfinite(elevation_rad) and isfinite(range_m) and isfinite(tgo_s)):
        return None
    az = rint(py_mod(azimuth_rad, TURN) * RAD_TO_DEG * 100.0)
    if az >= 36000.0:
        az -= 36000.0
    el = rint(elevation_rad * RAD_TO_DEG * 100.0)
    rng = rint(range_m)
    tgo = rint(tgo_s * 100.0)
    if not (el_min_cdeg <= el <= el_max_cdeg and 0.0 <= rng <= range_max_m and 0.0 <= tgo <= 65535.0):
        return None
    regs[0] = <uint16_t>(track_id & 0xFFFF)
    regs[1] = <uint16_t>az
    regs[2] = <uint16_t>el
    regs[3] = <uint16_t>rng
    regs[4] = <uint16_t>tgo
    regs[5] = <uint16_t>seq
    for k in range(6):
        pdu[6 + 2 * k] = regs[k] >> 8
        pdu[7 + 2 * k] = regs[k] & 0xFF
    regs[6] = crc16_modbus(pdu + 6, 12)
    pdu[18] = regs[6] >> 8
    pdu[19] = regs[6] & 0xFF
    pdu[0] = 16  # write multiple registers
    pdu[1] = (block_address >> 8) & 0xFF
    pdu[2] = block_address & 0xFF
    pdu[3] = 0
    pdu[4] = 7
    pdu[5] = 14
    return (<char*>pdu)[:20]
