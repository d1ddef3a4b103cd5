"""A small Modbus codec (FC 3, 4, 6, 16): RTU ADUs with CRC-16/MODBUS, TCP MBAP headers, PDUs, both sides.

LauncherLink's transaction loop frames, hunts and matches answers with it on every transport (pty/serial,
TCP, and the in-process LauncherModel), so a run in virtual time records and behaves byte for byte like one
over a pty; the emulated boards use it (and pymodbus' server) to answer.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from hil.drivers.registers import ExceptionCode, FunctionCode

MAX_READ_COUNT = 125  # registers in one FC 3/4 response (Modbus spec)
MAX_WRITE_COUNT = 123  # registers in one FC 16 request (Modbus spec)
MAX_ADU = 256
MBAP_BYTES = 7  # transaction id, protocol id (0), length, unit id


def t35_s(baud: int) -> float:
    """The RTU inter-frame silence (s): 3.5 characters of 11 bits, a fixed 1.75 ms above 19200 baud (Modbus over
    serial line V1.02, 2.5.1.1; the AVR firmware's T35_US). Two frames closer than this are one frame to a
    board, which then drops both (their CRC fails)."""
    return 1.75e-3 if baud > 19200 else 38.5 / baud


class ModbusFrameError(ValueError):
    """Bytes that are not a well-formed ADU or PDU (length, CRC, byte count)."""


class ModbusExceptionResponse(Exception):
    """The device answered with a Modbus exception."""

    def __init__(self, function_code: int, code: int) -> None:
        self.function_code, self.code = function_code, code
        try:
            name = ExceptionCode(code).name
        except ValueError:
            name = f"code {code}"
        super().__init__(f"Modbus exception {code:02d} ({name}) to function {function_code}")


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (reflected poly 0x8005, init 0xFFFF); check value for b"123456789" is 0x4B37."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc


def encode_adu(device_id: int, pdu: bytes) -> bytes:
    """device id, PDU, CRC low byte first (the one little-endian field of Modbus)."""
    body = bytes([device_id]) + pdu
    return body + struct.pack("<H", crc16(body))


def decode_adu(adu: bytes) -> tuple[int, bytes]:
    """(device id, PDU) of one whole RTU ADU; ModbusFrameError on a short frame or a bad CRC."""
    if len(adu) < 4 or len(adu) > MAX_ADU:
        raise ModbusFrameError(f"an RTU ADU is 4..{MAX_ADU} bytes, got {len(adu)}")
    (crc,) = struct.unpack("<H", adu[-2:])
    if crc != crc16(adu[:-2]):
        raise ModbusFrameError(f"bad CRC {crc:04x}, expected {crc16(adu[:-2]):04x}")
    return adu[0], adu[1:-2]


# --- client side: requests out, responses in --------------------------------------------------------


def read_request(function_code: int, address: int, count: int) -> bytes:
    return struct.pack(">BHH", function_code, address, count)


def write_single_request(address: int, value: int) -> bytes:
    return struct.pack(">BHH", FunctionCode.WRITE_SINGLE, address, value)


def write_multiple_request(address: int, values: Sequence[int]) -> bytes:
    return struct.pack(f">BHHB{len(values)}H", FunctionCode.WRITE_MULTIPLE, address, len(values), 2 * len(values),
                       *values)


def encode_mbap(tid: int, device_id: int, pdu: bytes) -> bytes:
    """A Modbus TCP ADU: MBAP header (length counts the unit id and the PDU), then the PDU."""
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, device_id) + pdu


def rtu_response_size(data: bytes | bytearray, at: int = 0) -> int:
    """Length of the RTU response ADU a device/function header at data[at:] announces: 0 when not yet known
    (too few bytes), -1 when no response we serve starts so (hunt on from the next byte)."""
    if len(data) < at + 2:
        return 0
    fc = data[at + 1]
    if fc & 0x80:
        return 5 if fc & 0x7F in _SERVED else -1
    if fc in (FunctionCode.READ_HOLDING, FunctionCode.READ_INPUT):
        if len(data) < at + 3:
            return 0
        n = data[at + 2]
        return 5 + n if n and not n & 1 and n <= 2 * MAX_READ_COUNT else -1
    return 8 if fc in (FunctionCode.WRITE_SINGLE, FunctionCode.WRITE_MULTIPLE) else -1


_SERVED = frozenset(int(fc) for fc in FunctionCode)


def answers(request: bytes, response: bytes) -> bool:
    """Whether a response PDU is the answer to this request PDU: the function (or its exception), and the byte
    count of a read, the echo of an FC 6 write (address and value), the address and count of an FC 16 write."""
    if not response:
        return False
    fc = request[0]
    if response[0] == fc | 0x80:
        return len(response) == 2
    if response[0] != fc:
        return False
    if fc in (FunctionCode.READ_HOLDING, FunctionCode.READ_INPUT):
        n = 2 * int.from_bytes(request[3:5], "big")
        return response[1] == n and len(response) == 2 + n
    return response == request[:5]


def _check_function(pdu: bytes, function_code: int) -> None:
    if not pdu:
        raise ModbusFrameError("empty PDU")
    if pdu[0] == function_code | 0x80:
        if len(pdu) != 2:
            raise ModbusFrameError(f"exception response of {len(pdu)} bytes")
        raise ModbusExceptionResponse(function_code, pdu[1])
    if pdu[0] != function_code:
        raise ModbusFrameError(f"response to function {pdu[0]}, expected {function_code}")


def parse_read_response(function_code: int, count: int, pdu: bytes) -> list[int]:
    """Registers of an FC 3/4 response that must carry exactly count registers."""
    _check_function(pdu, function_code)
    if len(pdu) < 2 or pdu[1] != 2 * count or len(pdu) != 2 + 2 * count:
        raise ModbusFrameError(f"read response of {len(pdu)} bytes for {count} registers")
    return list(struct.unpack(f">{count}H", pdu[2:]))


def parse_write_response(function_code: int, address: int, second: int, pdu: bytes) -> None:
    """Check an FC 6 echo (second = value) or FC 16 answer (second = count) against the request."""
    _check_function(pdu, function_code)
    if len(pdu) != 5 or struct.unpack(">HH", pdu[1:]) != (address, second):
        raise ModbusFrameError(f"write response {pdu.hex()} does not answer address {address}")


# --- server side: requests in, responses out ---------------------------------------------------------


@dataclass(frozen=True)
class Request:
    function_code: int
    address: int
    count: int
    values: tuple[int, ...] = ()  # for writes


def parse_request(pdu: bytes) -> Request:
    """A request PDU; ModbusFrameError if malformed, ModbusExceptionResponse for what the device answers 01/03."""
    if not pdu:
        raise ModbusFrameError("empty PDU")
    fc = pdu[0]
    if fc in (FunctionCode.READ_HOLDING, FunctionCode.READ_INPUT):
        if len(pdu) != 5:
            raise ModbusFrameError(f"read request of {len(pdu)} bytes")
        address, count = struct.unpack(">HH", pdu[1:])
        if not 1 <= count <= MAX_READ_COUNT:
            raise ModbusExceptionResponse(fc, ExceptionCode.ILLEGAL_DATA_VALUE)
        return Request(fc, address, count)
    if fc == FunctionCode.WRITE_SINGLE:
        if len(pdu) != 5:
            raise ModbusFrameError(f"write-single request of {len(pdu)} bytes")
        address, value = struct.unpack(">HH", pdu[1:])
        return Request(fc, address, 1, (value,))
    if fc == FunctionCode.WRITE_MULTIPLE:
        if len(pdu) < 6:
            raise ModbusFrameError(f"write-multiple request of {len(pdu)} bytes")
        address, count, nbytes = struct.unpack(">HHB", pdu[1:6])
        if not 1 <= count <= MAX_WRITE_COUNT or nbytes != 2 * count:
            raise ModbusExceptionResponse(fc, ExceptionCode.ILLEGAL_DATA_VALUE)
        if len(pdu) != 6 + nbytes:
            raise ModbusFrameError(f"write-multiple request of {len(pdu)} bytes for {count} registers")
        return Request(fc, address, count, struct.unpack(f">{count}H", pdu[6:]))
    raise ModbusExceptionResponse(fc & 0x7F, ExceptionCode.ILLEGAL_FUNCTION)


def read_response(function_code: int, registers: Sequence[int]) -> bytes:
    return struct.pack(f">BB{len(registers)}H", function_code, 2 * len(registers), *registers)


def write_response(request: Request) -> bytes:
    second = request.values[0] if request.function_code == FunctionCode.WRITE_SINGLE else request.count
    return struct.pack(">BHH", request.function_code, request.address, second)


def exception_response(function_code: int, code: int) -> bytes:
    return bytes([(function_code & 0x7F) | 0x80, code])


# --- pymodbus' logging ----------------------------------------------------------------------------------------


class _PymodbusRecords(logging.Filter):
    """pymodbus' records, quiet: the first line only (it appends frame dumps), no traceback, at most WARNING."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = record.getMessage().split("\n", 1)[0], None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_pymodbus(verbose: bool = False) -> None:
    """Send pymodbus' logging (the boards' server, any pymodbus client) through the project's handlers:
    WARNING and up, one line each, no frame dumps or tracebacks; with verbose, everything down to DEBUG as
    pymodbus writes it. Call it once the project's logging is configured (the CLI, each emulator process)."""
    from pymodbus.logging import Log

    logger = Log._logger
    logger.handlers.clear()  # pymodbus_apply_logging_config() would have added a stderr handler of its own
    logger.propagate = True
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)
    for old in [f for f in logger.filters if isinstance(f, _PymodbusRecords)]:
        logger.removeFilter(old)
    if not verbose:
        logger.addFilter(_PymodbusRecords())
