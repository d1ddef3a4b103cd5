"""The launcher board in Python: the SAFE/ARM/fire state machine over the register map, served as a Modbus slave.

LauncherModel is the board's behaviour (docs/PROTOCOLS.md §4) over a microsecond clock you give it, so it
runs in virtual time in-process and in real time behind the pymodbus server here. Time-driven changes (the
watchdog, the end of a reload) are worked out when a request is served, which is the only moment a client
can see them.

`python -m hil.emulators.launcher --rtu PATH | --tcp HOST:PORT [--device-id 1] [--rounds 4]
[--reload-ms 2000] [--watchdog-ms 500]` is the mock-rig launcher process: it serves Modbus RTU on a serial
device or pty (8N1, --baud 115200) or Modbus TCP (port 0: the OS picks one), announces where as one JSON
line ({"rtu": PATH} or {"tcp": "HOST:PORT"}, plus "device_id" and "pid"), and exits cleanly on SIGTERM
or when its parent dies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hil.drivers import modbus_rtu
from hil.drivers.registers import (
    ARM_KEY,
    BUILD_ID_REGS,
    FW_NAME_REGS,
    HOLDING_COUNT,
    IDENT_MAGIC,
    INPUT_COUNT,
    REGMAP_VERSION,
    RELOAD_MS_DEFAULT,
    ROUNDS_DEFAULT,
    WATCHDOG_MS_DEFAULT,
    ExceptionCode,
    FunctionCode,
    Holding,
    Reject,
    State,
    StatusBit,
    fw_version,
    in_limits,
    pack_ascii,
    pack_u64,
)

log = logging.getLogger(__name__)

FIRMWARE_NAME = "hil-launcher-py"
FIRMWARE_VERSION = (1, 0)


@dataclass(frozen=True)
class Launch:
    """One accepted fire, as the board saw it."""

    seq: int
    track: int
    azimuth_cdeg: int
    elevation_cdeg: int
    t_us: int


class MonotonicMicros:
    """Microseconds since this board powered on, as a board's micros() counts."""

    def __init__(self) -> None:
        self.boot_ns = time.monotonic_ns()

    def __call__(self) -> int:
        return (time.monotonic_ns() - self.boot_ns) // 1000


class LauncherModel:
    """The launcher's registers and safety state machine; every method takes effect at clock_us()."""

    def __init__(self, clock_us: Callable[[], int] | None = None, *, rounds: int = ROUNDS_DEFAULT,
                 reload_ms: int = RELOAD_MS_DEFAULT, watchdog_ms: int = WATCHDOG_MS_DEFAULT,
                 name: str = FIRMWARE_NAME, version: tuple[int, int] = FIRMWARE_VERSION, build: str = "dev") -> None:
        for reg, value in ((Holding.RELOAD_MS, reload_ms), (Holding.WATCHDOG_MS, watchdog_ms),
                           (Holding.ROUNDS_LOADED, rounds)):
            if not in_limits(reg, value):
                raise ValueError(f"{reg.name} = {value} is outside its range")
        self.clock_us = clock_us or MonotonicMicros()
        self.holding = [0] * HOLDING_COUNT
        self.holding[Holding.WATCHDOG_MS] = watchdog_ms
        self.holding[Holding.RELOAD_MS] = reload_ms
        self.holding[Holding.ROUNDS_LOADED] = rounds
        self._ident = [IDENT_MAGIC, REGMAP_VERSION, fw_version(*version)]
        self._name_regs = pack_ascii(name, FW_NAME_REGS)
        self._build_regs = pack_ascii(build[:2 * BUILD_ID_REGS], BUILD_ID_REGS)
        self.state = State.SAFE
        self.rounds = rounds
        self.last_fire_seq = 0
        self.launch_count = 0
        self.last_fire_track = 0
        self.last_reject = Reject.NONE
        self.reject_count = 0
        self.fault_code = 0
        self.watchdog_tripped = False
        self.last_feed_us = 0
        self.reload_until_us = 0
        self.last_launch_us = 0
        self.last_cmd_us = 0
        self.launches: list[Launch] = []
        self.responding = True  # False: the board ignores every request (a pulled cable, a hung board)

    # --- time-driven state -------------------------------------------------------------------------------

    def tick(self, now_us: int | None = None) -> int:
        """Bring the state up to now (the watchdog); returns now."""
        now = self.clock_us() if now_us is None else now_us
        if self.state == State.ARMED and now - self.last_feed_us > self.holding[Holding.WATCHDOG_MS] * 1000:
            self.state = State.SAFE
            self.watchdog_tripped = True
            log.info("watchdog tripped at %d us: SAFE", now)
        return now

    def reloading(self, now_us: int) -> bool:
        return now_us < self.reload_until_us

    def status_bits(self, now_us: int) -> int:
        bits = StatusBit(0)
        armed = self.state == State.ARMED
        reloading = self.reloading(now_us)
        if armed:
            bits |= StatusBit.ARMED
        if armed and not reloading and self.rounds > 0:
            bits |= StatusBit.READY
        if reloading:
            bits |= StatusBit.RELOADING
        if self.watchdog_tripped:
            bits |= StatusBit.WATCHDOG_TRIPPED
        if self.state == State.FAULT:
            bits |= StatusBit.FAULT
        return int(bits)

    def inject_fault(self, code: int) -> None:
        """Put the board in FAULT (as its own self-test would): it safes and refuses to arm."""
        self.tick()
        self.state = State.FAULT
        self.fault_code = code & 0xFFFF or 1

    def clear_fault(self) -> None:
        self.state = State.SAFE
        self.fault_code = 0

    # --- register access -----------------------------------------------------------------------------------

    def input_registers(self, now_us: int) -> list[int]:
        regs = [
            *self._ident,
            int(self.state),
            self.status_bits(now_us),
            self.rounds,
            self.last_fire_seq,
            self.launch_count & 0xFFFF,
            self.last_fire_track,
            int(self.last_reject),
            self.reject_count & 0xFFFF,
            self.fault_code,
            *pack_u64(now_us),
            *pack_u64(self.last_launch_us),
            *pack_u64(self.last_cmd_us),
            *self._name_regs,
            *self._build_regs,
        ]
        assert len(regs) == INPUT_COUNT
        return regs

    def read(self, function_code: int, address: int, count: int) -> list[int] | ExceptionCode:
        """Registers for an FC 3 or 4 read, or the exception the board answers."""
        if function_code not in (FunctionCode.READ_HOLDING, FunctionCode.READ_INPUT):
            return ExceptionCode.ILLEGAL_FUNCTION
        if not 1 <= count <= modbus_rtu.MAX_READ_COUNT:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        size = HOLDING_COUNT if function_code == FunctionCode.READ_HOLDING else INPUT_COUNT
        if address + count > size:
            return ExceptionCode.ILLEGAL_DATA_ADDRESS
        now = self.tick()
        regs = self.holding if function_code == FunctionCode.READ_HOLDING else self.input_registers(now)
        return list(regs[address:address + count])

    def write(self, address: int, values: Sequence[int]) -> ExceptionCode | None:
        """An FC 6/16 write: checked whole first (02, 03: nothing changes), then applied in address order."""
        if not 1 <= len(values) <= modbus_rtu.MAX_WRITE_COUNT:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        if address + len(values) > HOLDING_COUNT:
            return ExceptionCode.ILLEGAL_DATA_ADDRESS
        if not all(in_limits(address + i, v) for i, v in enumerate(values)):
            return ExceptionCode.ILLEGAL_DATA_VALUE
        now = self.tick()
        for i, value in enumerate(values):
            self._write_one(Holding(address + i), value, now)
        return None

    def _reject(self, reason: Reject) -> None:
        self.last_reject = reason
        self.reject_count += 1
        log.info("rejected: %s", reason.name)

    def _write_one(self, reg: Holding, value: int, now: int) -> None:
        if reg == Holding.ARM_KEY:
            self._arm_key(value, now)
        elif reg == Holding.ROUNDS_LOADED:
            if self.state != State.SAFE:
                self._reject(Reject.NOT_SAFE)
                return
            self.rounds = value
        elif reg == Holding.FIRE_SEQ:
            self.holding[reg] = value
            self._fire(value, now)
            return
        elif reg == Holding.HEARTBEAT:
            self.last_feed_us = now
        self.holding[reg] = value

    def _arm_key(self, value: int, now: int) -> None:
        if value == ARM_KEY:
            if self.state == State.FAULT:
                self._reject(Reject.FAULT)
            elif self.state == State.SAFE:
                self.state = State.ARMED
                self.watchdog_tripped = False
                self.last_feed_us = now  # arming starts the watchdog period afresh
                log.info("ARMED at %d us", now)
            return
        if value != 0:
            self._reject(Reject.BAD_KEY)
        if self.state == State.ARMED:
            self.state = State.SAFE
            log.info("SAFE at %d us", now)

    def _fire(self, seq: int, now: int) -> None:
        self.last_cmd_us = now
        if seq == 0:
            reason = Reject.ZERO_SEQ
        elif seq == self.last_fire_seq:
            reason = Reject.DUPLICATE_SEQ
        elif self.state == State.FAULT:
            reason = Reject.FAULT
        elif self.state != State.ARMED:
            reason = Reject.NOT_ARMED
        elif self.reloading(now):
            reason = Reject.RELOADING
        elif self.rounds <= 0:
            reason = Reject.NO_ROUNDS
        else:
            track = self.holding[Holding.FIRE_TRACK]
            self.rounds -= 1
            self.last_fire_seq = seq
            self.last_fire_track = track
            self.last_launch_us = now
            self.launch_count += 1
            self.reload_until_us = now + self.holding[Holding.RELOAD_MS] * 1000
            self.launches.append(Launch(seq, track, self.holding[Holding.FIRE_AZ_CDEG],
                                        self.holding[Holding.FIRE_EL_CDEG], now))
            log.info("LAUNCH seq %d track %d at %d us", seq, track, now)
            return
        self._reject(reason)

    # --- whole Modbus requests --------------------------------------------------------------------------------

    def handle_pdu(self, pdu: bytes) -> bytes:
        """The response PDU to a request PDU (always one: a malformed request answers 03)."""
        try:
            request = modbus_rtu.parse_request(pdu)
        except modbus_rtu.ModbusExceptionResponse as e:
            return modbus_rtu.exception_response(e.function_code, e.code)
        except modbus_rtu.ModbusFrameError:
            return modbus_rtu.exception_response(pdu[0] if pdu else 0, ExceptionCode.ILLEGAL_DATA_VALUE)
        if request.function_code in (FunctionCode.READ_HOLDING, FunctionCode.READ_INPUT):
            result = self.read(request.function_code, request.address, request.count)
            if isinstance(result, ExceptionCode):
                return modbus_rtu.exception_response(request.function_code, result)
            return modbus_rtu.read_response(request.function_code, result)
        error = self.write(request.address, request.values)
        if error is not None:
            return modbus_rtu.exception_response(request.function_code, error)
        return modbus_rtu.write_response(request)

    def handle_rtu(self, adu: bytes, device_id: int) -> bytes | None:
        """The response ADU to a request ADU, or None where a slave on a bus stays silent (bad CRC, other id)."""
        if not self.responding:
            return None
        try:
            dev, pdu = modbus_rtu.decode_adu(adu)
        except modbus_rtu.ModbusFrameError as e:
            log.info("ignored a bad RTU frame: %s", e)
            return None
        if dev != device_id:
            return None
        return modbus_rtu.encode_adu(device_id, self.handle_pdu(pdu))


# --- the pymodbus server -------------------------------------------------------------------------------------


def _model_context(model: LauncherModel, device_id: int) -> Any:
    """A pymodbus server context whose reads and writes go to the model."""
    from pymodbus.constants import ExcCodes
    from pymodbus.datastore import ModbusServerContext
    from pymodbus.exceptions import NoSuchIdException

    class ModelContext(ModbusServerContext):
        # pymodbus 3.16 hands a context that is not made of SimDevices straight its get/set calls
        def __init__(self) -> None:  # no super(): its block datastores are what we replace
            self.old_simulator = True
            self.simdevices = []

        def _check(self, dev: int) -> None:
            if dev != device_id or not model.responding:
                raise NoSuchIdException(f"device {dev}")

        async def async_getValues(self, device_id: int, func_code: int, address: int,
                                  count: int = 1) -> list[int] | ExcCodes:
            self._check(device_id)
            # FC 6 and 16 read back what they wrote, as holding registers
            fc = FunctionCode.READ_HOLDING if func_code in (6, 16) else func_code
            result = model.read(fc, address, count)
            return ExcCodes(int(result)) if isinstance(result, ExceptionCode) else result

        async def async_setValues(self, device_id: int, func_code: int, address: int,
                                  values: Any) -> ExcCodes | None:
            self._check(device_id)
            if func_code not in (6, 16):
                return ExcCodes.ILLEGAL_FUNCTION
            error = model.write(address, [int(v) for v in values])
            return None if error is None else ExcCodes(int(error))

        def device_ids(self) -> list[int]:
            return [device_id]

    return ModelContext()


def _rtu_frame_size(data: bytes) -> int:
    """Length of the first whole RTU frame at the start of data (its CRC checks), or 0."""
    for size in range(4, min(len(data), modbus_rtu.MAX_ADU) + 1):
        if modbus_rtu.crc16(data[:size - 2]) == int.from_bytes(data[size - 2:size], "little"):
            return size
    return 0


def _only_our_functions(server: Any) -> None:
    """Serve 3, 4, 6, 16 and answer every other function 01, as the firmware does.

    pymodbus would otherwise serve diagnostics, identity and coils, and on RTU it cannot tell how long a
    request of a function it does not know is: such a frame is taken to end where a CRC first checks.
    """
    from pymodbus.constants import ExcCodes
    from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU

    class IllegalFunction(ModbusPDU):
        @classmethod
        def calculateRtuFrameSize(cls, data: bytes) -> int:
            return _rtu_frame_size(data)

        def decode(self, data: bytes) -> None:
            pass

        async def datastore_update(self, context: Any, device_id: int) -> ModbusPDU:
            return ExceptionResponse(self.function_code, ExcCodes.ILLEGAL_FUNCTION)

    served = {fc: DecodePDU.pdu_table[fc] for fc in (3, 4, 6, 16)}
    unknown: dict[int, tuple[type[ModbusPDU], type[ModbusPDU]]] = {}
    for fc in range(1, 0x80):
        if fc not in served:
            cls = type(f"IllegalFunction{fc}", (IllegalFunction,), {"function_code": fc})
            unknown[fc] = (cls, cls)

    class OurFunctions(DecodePDU):
        def lookupPduClass(self, data: bytes) -> type[ModbusPDU] | None:
            fc = data[1]
            if fc in served:
                return served[fc][0]
            # an unknown function is a request only once a whole frame has arrived; until then hunt on
            return unknown[fc][0] if fc in unknown and _rtu_frame_size(data) else None

    decoder = OurFunctions(True)
    decoder.pdu_table = {**served, **unknown}
    server.decoder = decoder


async def serve(model: LauncherModel, device_id: int, rtu: str | None = None, tcp: tuple[str, int] | None = None,
                baud: int = 115200, announce: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Serve the model until cancelled, over RTU on a serial path or TCP; announce where once listening."""
    from pymodbus.server import ModbusSerialServer, ModbusTcpServer

    context = _model_context(model, device_id)
    server: Any
    if rtu is not None:
        server = ModbusSerialServer(context, port=rtu, baudrate=baud, bytesize=8, parity="N", stopbits=1,
                                    ignore_missing_devices=True)
    elif tcp is not None:
        server = ModbusTcpServer(context, address=tcp, ignore_missing_devices=True)
    else:
        raise ValueError("serve over rtu or tcp")
    _only_our_functions(server)
    await server.serve_forever(background=True)
    info: dict[str, Any] = {"device_id": device_id, "pid": os.getpid()}
    if rtu is not None:
        info["rtu"] = rtu
    else:
        host, port = server.transport.sockets[0].getsockname()[:2]
        info["tcp"] = f"{host}:{port}"
    if announce:
        announce(info)
    try:
        await server.serving
    finally:
        await server.shutdown()


def main(argv: list[str] | None = None, description: str | None = None) -> int:
    from hil.procutil import die_with_parent

    parser = argparse.ArgumentParser(prog="python -m hil.emulators.launcher",
                                     description=description or (__doc__ or "").splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--rtu", metavar="PATH", help="serve Modbus RTU on this serial device or pty")
    where.add_argument("--tcp", metavar="HOST:PORT", help="serve Modbus TCP here (port 0: the OS picks)")
    parser.add_argument("--baud", type=int, default=115200, help="serial speed (8N1)")
    parser.add_argument("--device-id", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=ROUNDS_DEFAULT)
    parser.add_argument("--reload-ms", type=int, default=RELOAD_MS_DEFAULT)
    parser.add_argument("--watchdog-ms", type=int, default=WATCHDOG_MS_DEFAULT)
    parser.add_argument("--build", default="dev", help="build id reported in BUILD_ID (8 characters)")
    parser.add_argument("--name", default=FIRMWARE_NAME, help="firmware name reported in FW_NAME (16 characters)")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, format="%(name)s: %(message)s")
    try:
        model = LauncherModel(rounds=args.rounds, reload_ms=args.reload_ms, watchdog_ms=args.watchdog_ms,
                              name=args.name, build=args.build)
    except ValueError as e:
        parser.error(str(e))
    if not 1 <= args.device_id <= 247:
        parser.error("--device-id must be 1..247")
    tcp = None
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        tcp = (host or "127.0.0.1", int(port))
    die_with_parent()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        await serve(model, args.device_id, rtu=args.rtu, tcp=tcp, baud=args.baud,
                    announce=lambda info: print(json.dumps(info), flush=True))

    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
