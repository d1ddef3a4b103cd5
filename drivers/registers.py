"""The launcher's Modbus register map (docs/PROTOCOLS.md §4) in code: addresses, values, limits, packing."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import IntEnum, IntFlag

DEFAULT_DEVICE_ID = 1
IDENT_MAGIC = 0x484C  # "HL"
REGMAP_VERSION = 2
ARM_KEY = 0xA55A


class FunctionCode(IntEnum):
    READ_HOLDING = 3
    READ_INPUT = 4
    WRITE_SINGLE = 6
    WRITE_MULTIPLE = 16


class ExceptionCode(IntEnum):
    ILLEGAL_FUNCTION = 1
    ILLEGAL_DATA_ADDRESS = 2
    ILLEGAL_DATA_VALUE = 3


class Holding(IntEnum):
    """Holding registers (read/write)."""

    HEARTBEAT = 0
    ARM_KEY = 1
    WATCHDOG_MS = 2
    FIRE_TRACK = 3
    FIRE_AZ_CDEG = 4
    FIRE_EL_CDEG = 5
    FIRE_RANGE_M = 6
    FIRE_TGO_CS = 7
    FIRE_SEQ = 8
    FIRE_CHECK = 9
    RELOAD_MS = 10
    ROUNDS_LOADED = 11


HOLDING_COUNT = 12
# A fire is one FC16 write of exactly these registers; FIRE_CHECK covers the ones before it.
FIRE_BLOCK = int(Holding.FIRE_TRACK)
FIRE_BLOCK_REGS = int(Holding.FIRE_CHECK - Holding.FIRE_TRACK + 1)


class Input(IntEnum):
    """Input registers (read only); multi-register values name their first register."""

    IDENT_MAGIC = 0
    REGMAP_VERSION = 1
    FW_VERSION = 2
    STATE = 3
    STATUS = 4
    ROUNDS_REMAINING = 5
    LAST_FIRE_SEQ = 6
    LAUNCH_COUNT = 7
    LAST_FIRE_TRACK = 8
    LAST_REJECT = 9
    REJECT_COUNT = 10
    FAULT_CODE = 11
    BOARD_TIME_US = 12
    LAST_LAUNCH_T_US = 16
    LAST_CMD_T_US = 20
    LAST_CMD_SEQ = 24
    BAD_CHECK_COUNT = 25
    WATCHDOG_TRIPS = 26
    LAST_FIRE_AZ_CDEG = 27
    LAST_FIRE_EL_CDEG = 28
    LAST_FIRE_RANGE_M = 29
    LAST_FIRE_TGO_CS = 30
    FW_NAME = 31
    BUILD_ID = 39


INPUT_COUNT = 43
STATUS_REGS = int(Input.LAST_CMD_T_US) + 4  # input 0..23 (the last a u64): one read is a whole status
RECORD_REGS = int(Input.FW_NAME)  # input 0..30: a status and the last fire's record (reconciliation reads it)
U64_REGS = 4
FW_NAME_REGS = 8  # 16 ASCII bytes
BUILD_ID_REGS = 4  # 8 ASCII bytes


class State(IntEnum):
    SAFE = 0
    ARMED = 1
    FAULT = 2


class StatusBit(IntFlag):
    ARMED = 1 << 0
    READY = 1 << 1
    RELOADING = 1 << 2
    WATCHDOG_TRIPPED = 1 << 3  # latched until the next arm
    FAULT = 1 << 4


class Reject(IntEnum):
    NONE = 0
    NOT_ARMED = 1
    RELOADING = 2
    NO_ROUNDS = 3
    DUPLICATE_SEQ = 4
    BAD_KEY = 5
    FAULT = 6
    ZERO_SEQ = 7
    NOT_SAFE = 8
    BAD_CHECK = 9  # FIRE_CHECK does not match registers 3..8 as written
    PARTIAL_FIRE = 10  # a write touched FIRE_SEQ or FIRE_CHECK but was not one write of the whole block 3..9


# Inclusive limits of the holding registers a write is checked against (outside: exception 03).
# Registers not listed take any 16-bit value.
WATCHDOG_MS_MIN, WATCHDOG_MS_MAX, WATCHDOG_MS_DEFAULT = 50, 10_000, 500
RELOAD_MS_MIN, RELOAD_MS_MAX, RELOAD_MS_DEFAULT = 0, 60_000, 2000
FIRE_AZ_CDEG_MAX = 35_999
FIRE_EL_CDEG_MAX = 9000
ROUNDS_DEFAULT = 4
HOLDING_LIMITS: dict[Holding, tuple[int, int]] = {
    Holding.WATCHDOG_MS: (WATCHDOG_MS_MIN, WATCHDOG_MS_MAX),
    Holding.FIRE_AZ_CDEG: (0, FIRE_AZ_CDEG_MAX),
    Holding.FIRE_EL_CDEG: (0, FIRE_EL_CDEG_MAX),
    Holding.RELOAD_MS: (RELOAD_MS_MIN, RELOAD_MS_MAX),
}


def in_limits(reg: int, value: int) -> bool:
    lo, hi = HOLDING_LIMITS.get(Holding(reg), (0, 0xFFFF)) if 0 <= reg < HOLDING_COUNT else (0, 0xFFFF)
    return lo <= value <= hi


def fire_check(values: Sequence[int]) -> int:
    """FIRE_CHECK for FIRE_TRACK..FIRE_SEQ (six registers): CRC-16/MODBUS over their big-endian bytes.

    The register holds the CRC as a number (not in the RTU trailer's low-byte-first order).
    """
    from hil.drivers.modbus_rtu import crc16  # the RTU frame's own CRC (imported here: it imports this map)

    if len(values) != FIRE_BLOCK_REGS - 1:
        raise ValueError(f"the check covers {FIRE_BLOCK_REGS - 1} registers, got {len(values)}")
    return crc16(struct.pack(">6H", *values))


def fire_block(track: int, az_cdeg: int, el_cdeg: int, range_m: int, tgo_cs: int, seq: int) -> list[int]:
    """The seven registers of one fire write, FIRE_TRACK..FIRE_CHECK, check included."""
    values = [track & 0xFFFF, az_cdeg, el_cdeg, range_m, tgo_cs, seq]
    return [*values, fire_check(values)]


def pack_u64(value: int) -> list[int]:
    """A u64 as four registers, high word first."""
    if not 0 <= value < 1 << 64:
        raise ValueError(f"{value} does not fit in a u64")
    return [(value >> shift) & 0xFFFF for shift in (48, 32, 16, 0)]


def unpack_u64(regs: Sequence[int]) -> int:
    if len(regs) != U64_REGS:
        raise ValueError(f"a u64 spans {U64_REGS} registers, got {len(regs)}")
    value = 0
    for r in regs:
        value = (value << 16) | (r & 0xFFFF)
    return value


def pack_ascii(text: str, nregs: int) -> list[int]:
    """ASCII text NUL-padded to nregs registers, two bytes each, first byte in the high half."""
    raw = text.encode("ascii")
    if len(raw) > 2 * nregs:
        raise ValueError(f"{text!r} is longer than {2 * nregs} bytes")
    raw = raw.ljust(2 * nregs, b"\0")
    return [(raw[i] << 8) | raw[i + 1] for i in range(0, len(raw), 2)]


def unpack_ascii(regs: Sequence[int]) -> str:
    """Text from packed registers, up to the first NUL; bytes outside printable ASCII become '?'."""
    raw = b"".join(((r >> 8) & 0xFF).to_bytes() + (r & 0xFF).to_bytes() for r in regs)
    raw = raw.split(b"\0", 1)[0]
    return "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in raw)


def fw_version(major: int, minor: int) -> int:
    return ((major & 0xFF) << 8) | (minor & 0xFF)


def c_defines() -> dict[str, int]:
    """Every value of the map under the name firmware_stubs/common/hil_registers.h gives it."""
    d: dict[str, int] = {
        "HIL_DEFAULT_DEVICE_ID": DEFAULT_DEVICE_ID,
        "HIL_IDENT_MAGIC": IDENT_MAGIC,
        "HIL_REGMAP_VERSION": REGMAP_VERSION,
        "HIL_ARM_KEY": ARM_KEY,
        "HIL_HR_COUNT": HOLDING_COUNT,
        "HIL_FIRE_BLOCK": FIRE_BLOCK,
        "HIL_FIRE_BLOCK_REGS": FIRE_BLOCK_REGS,
        "HIL_IR_COUNT": INPUT_COUNT,
        "HIL_IR_STATUS_REGS": STATUS_REGS,
        "HIL_IR_RECORD_REGS": RECORD_REGS,
        "HIL_U64_REGS": U64_REGS,
        "HIL_FW_NAME_REGS": FW_NAME_REGS,
        "HIL_BUILD_ID_REGS": BUILD_ID_REGS,
        "HIL_WATCHDOG_MS_MIN": WATCHDOG_MS_MIN,
        "HIL_WATCHDOG_MS_MAX": WATCHDOG_MS_MAX,
        "HIL_WATCHDOG_MS_DEFAULT": WATCHDOG_MS_DEFAULT,
        "HIL_RELOAD_MS_MIN": RELOAD_MS_MIN,
        "HIL_RELOAD_MS_MAX": RELOAD_MS_MAX,
        "HIL_RELOAD_MS_DEFAULT": RELOAD_MS_DEFAULT,
        "HIL_FIRE_AZ_CDEG_MAX": FIRE_AZ_CDEG_MAX,
        "HIL_FIRE_EL_CDEG_MAX": FIRE_EL_CDEG_MAX,
        "HIL_ROUNDS_DEFAULT": ROUNDS_DEFAULT,
    }
    for prefix, enum in (("HIL_FC_", FunctionCode), ("HIL_EX_", ExceptionCode), ("HIL_HR_", Holding),
                         ("HIL_IR_", Input), ("HIL_STATE_", State), ("HIL_STATUS_", StatusBit),
                         ("HIL_REJECT_", Reject)):
        for name, member in enum.__members__.items():
            d[prefix + name] = int(member)
    return d
