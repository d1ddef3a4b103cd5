"""The launcher register map: the C header matches drivers/registers.py, packing, and the RTU codec under fuzz."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU

from hil.drivers import modbus_rtu
from hil.drivers import registers as reg
from tests.helpers import REPO, require_tool

HEADER = REPO / "firmware_stubs" / "common" / "hil_registers.h"


def _header_macros(gcc: str) -> set[str]:
    out = subprocess.run([gcc, "-dM", "-E", "-x", "c", str(HEADER)], capture_output=True, text=True, check=True)
    return {m.group(1) for m in re.finditer(r"^#define (HIL_[A-Z0-9_]+) ", out.stdout, re.M)} - {"HIL_REGISTERS_H"}


def test_c_header_names_every_value_of_the_python_map_and_nothing_else() -> None:
    gcc = require_tool("gcc", "gcc")
    assert _header_macros(gcc) == set(reg.c_defines())


def test_c_header_values_compiled_equal_the_python_map(tmp_path: Path) -> None:
    gcc = require_tool("gcc", "gcc")
    names = sorted(reg.c_defines())
    body = "\n".join(f'    printf("{n} %lu\\n", (unsigned long)({n}));' for n in names)
    src = tmp_path / "dump.c"
    src.write_text(f'#include <stdio.h>\n#include "{HEADER}"\nint main(void) {{\n{body}\n    return 0;\n}}\n')
    exe = tmp_path / "dump"
    subprocess.run([gcc, "-Wall", "-Werror", "-o", str(exe), str(src)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    compiled = {name: int(value) for name, value in (line.split() for line in out.splitlines())}
    assert compiled == reg.c_defines()


def test_c_header_compiles_for_the_uno() -> None:
    avr_gcc = require_tool("avr-gcc", "gcc-avr")
    subprocess.run([avr_gcc, "-mmcu=atmega328p", "-fsyntax-only", "-Wall", "-Werror", "-x", "c", str(HEADER)],
                   check=True)


def test_map_matches_the_protocol_doc_where_it_is_easy_to_get_wrong() -> None:
    assert reg.Input.BOARD_TIME_US == 12 and reg.Input.LAST_LAUNCH_T_US == 16 and reg.Input.LAST_CMD_T_US == 20
    assert reg.Input.FW_NAME + reg.FW_NAME_REGS == reg.Input.BUILD_ID
    assert reg.Input.BUILD_ID + reg.BUILD_ID_REGS == reg.INPUT_COUNT
    assert max(reg.Holding) + 1 == reg.HOLDING_COUNT
    assert reg.pack_ascii("HL", 1) == [reg.IDENT_MAGIC]


def test_u64_goes_high_word_first() -> None:
    assert reg.pack_u64(0x0001_0002_0003_0004) == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        reg.pack_u64(1 << 64)
    with pytest.raises(ValueError):
        reg.unpack_u64([1, 2, 3])


@given(st.integers(0, (1 << 64) - 1))
def test_u64_round_trips(value: int) -> None:
    regs = reg.pack_u64(value)
    assert all(0 <= r <= 0xFFFF for r in regs)
    assert reg.unpack_u64(regs) == value


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=16))
def test_ascii_round_trips_with_the_first_byte_high(text: str) -> None:
    regs = reg.pack_ascii(text, 8)
    assert len(regs) == 8
    assert reg.unpack_ascii(regs) == text
    if text:
        assert regs[0] >> 8 == ord(text[0])


def test_ascii_too_long_is_an_error_and_garbage_reads_as_question_marks() -> None:
    with pytest.raises(ValueError):
        reg.pack_ascii("x" * 9, 4)
    assert reg.unpack_ascii([0x41FF, 0x0042]) == "A?"


def test_limits() -> None:
    assert reg.in_limits(reg.Holding.WATCHDOG_MS, 50) and not reg.in_limits(reg.Holding.WATCHDOG_MS, 49)
    assert not reg.in_limits(reg.Holding.FIRE_AZ_CDEG, 36000)
    assert reg.in_limits(reg.Holding.FIRE_SEQ, 0xFFFF)


# --- the RTU codec -----------------------------------------------------------------------------------


def test_crc_check_value() -> None:
    assert modbus_rtu.crc16(b"123456789") == 0x4B37


@given(st.binary(max_size=64))
def test_crc_agrees_with_pymodbus(data: bytes) -> None:
    # pymodbus returns the CRC byte-swapped, i.e. as the two wire bytes read big-endian
    ours = modbus_rtu.crc16(data)
    assert FramerRTU.compute_CRC(data) == ((ours & 0xFF) << 8) | (ours >> 8)


def test_a_known_request_adu() -> None:
    # read input registers 0..2 of device 1, as mbpoll sends it
    assert modbus_rtu.encode_adu(1, modbus_rtu.read_request(4, 0, 3)).hex() == "010400000003b00b"


@given(st.binary(max_size=300))
def test_decode_adu_rejects_garbage_cleanly(data: bytes) -> None:
    try:
        dev, pdu = modbus_rtu.decode_adu(data)
    except modbus_rtu.ModbusFrameError:
        return
    assert modbus_rtu.encode_adu(dev, pdu) == data


@given(st.binary(max_size=300))
def test_parse_request_rejects_garbage_cleanly(pdu: bytes) -> None:
    try:
        request = modbus_rtu.parse_request(pdu)
    except modbus_rtu.ModbusExceptionResponse as e:
        assert e.code in (1, 3)
        return
    except modbus_rtu.ModbusFrameError:
        return
    assert request.function_code in (3, 4, 6, 16)


@given(st.integers(3, 4), st.integers(1, 125), st.binary(max_size=260))
def test_parse_read_response_rejects_garbage_cleanly(fc: int, count: int, pdu: bytes) -> None:
    try:
        regs = modbus_rtu.parse_read_response(fc, count, pdu)
    except (modbus_rtu.ModbusFrameError, modbus_rtu.ModbusExceptionResponse):
        return
    assert len(regs) == count


@given(st.integers(0, 0xFFFF), st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=123))
def test_requests_round_trip(address: int, values: list[int]) -> None:
    r = modbus_rtu.parse_request(modbus_rtu.write_multiple_request(address, values))
    assert (r.function_code, r.address, list(r.values)) == (16, address, values)
    modbus_rtu.parse_write_response(16, address, len(values), modbus_rtu.write_response(r))
    with pytest.raises(modbus_rtu.ModbusExceptionResponse) as e:
        modbus_rtu.parse_read_response(3, 1, modbus_rtu.exception_response(3, 2))
    assert e.value.code == 2
