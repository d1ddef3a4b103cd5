"""The launcher board in Python: the SAFE/ARM/fire state machine over the register map, served as a Modbus slave.

LauncherModel is the board's behaviour (docs/PROTOCOLS.md §4) over a microsecond clock you give it, so it
runs in virtual time in-process and in real time behind the pymodbus server here. Time-driven changes (the
watchdog, the end of a reload) are worked out when a request is served, which is the only moment a client
can see them.

`python -m hil.emulators.launcher --rtu PATH | --tcp HOST:PORT [--device-id 1] [--rounds 4]
[--reload-ms 2000] [--watchdog-ms 500]` is the mock-rig launcher process: it serves Modbus RTU on a serial
device or pty (8N1, --baud 115200) or Modbus TCP (port 0: the OS picks one), announces where as one JSON
line ({"rtu": PATH} or {"tcp": "HOST:PORT"}, plus "device_id" and "pid"), then prints one JSON line per
launch ({"launch": Launch.to_json()}, flushed at once: the plant learns launches from the board, never from
the host) and one per change of its safety state ({"state": StateChange.to_json()}: armed, made SAFE, its
watchdog tripped, a fault; the process looks at its watchdog every WATCHDOG_LOOK_S, so a trip is told when it
happens, not at the next request), and exits cleanly on SIGTERM or when its parent dies. Its stdout never blocks
the board: lines wait in memory (up to MAX_PENDING_EVENT_BYTES) while nobody reads them. `LaunchEvents` reads them
back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
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
    FIRE_BLOCK,
    FIRE_BLOCK_REGS,
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
    fire_check,
    fw_version,
    in_limits,
    pack_ascii,
    pack_u64,
)

log = logging.getLogger(__name__)

FIRMWARE_NAME = "hil-launcher-py"
FIRMWARE_VERSION = (1, 0)
MAX_PENDING_EVENT_BYTES = 1 << 20  # launch lines kept while stdout is not read; beyond, dropped and logged
WATCHDOG_LOOK_S = 0.02  # the emulator process looks at its watchdog this often, requests or not


@dataclass(frozen=True)
class Launch:
    """One accepted fire, as the board saw it: the aim exactly as the fire command carried it on the wire."""

    seq: int
    track: int  # the track number as written (modulo 65536)
    azimuth_cdeg: int
    elevation_cdeg: int
    range_m: int  # slant range to the intercept point
    tgo_cs: int  # time to go to the intercept point, 1/100 s
    t_us: int  # board clock when the fire was accepted (LAST_LAUNCH_T_US)

    @property
    def azimuth_rad(self) -> float:
        return math.radians(self.azimuth_cdeg / 100)

    @property
    def elevation_rad(self) -> float:
        return math.radians(self.elevation_cdeg / 100)

    @property
    def tgo_s(self) -> float:
        return self.tgo_cs / 100

    def to_json(self) -> dict[str, Any]:
        """The launch event as the emulator process prints it (SI units; the raw register values beside)."""
        return {"seq": self.seq, "track": self.track, "azimuth_rad": self.azimuth_rad,
                "elevation_rad": self.elevation_rad, "range_m": self.range_m, "tgo_s": self.tgo_s,
                "t_us": self.t_us, "azimuth_cdeg": self.azimuth_cdeg, "elevation_cdeg": self.elevation_cdeg,
                "tgo_cs": self.tgo_cs}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Launch:
        return cls(int(d["seq"]), int(d["track"]), int(d["azimuth_cdeg"]), int(d["elevation_cdeg"]),
                   int(d["range_m"]), int(d["tgo_cs"]), int(d["t_us"]))


@dataclass(frozen=True)
class StateChange:
    """The board's safety state changed: to state (ARMED, SAFE, FAULT) at board time t_us, for a cause ("arm key",
    "disarm", "watchdog", "fault", "fault cleared")."""

    state: str
    t_us: int
    cause: str

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "t_us": self.t_us, "cause": self.cause}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StateChange:
        return cls(str(d["state"]), int(d["t_us"]), str(d["cause"]))


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
                 name: str = FIRMWARE_NAME, version: tuple[int, int] = FIRMWARE_VERSION, build: str = "dev",
                 on_launch: Callable[[Launch], None] | None = None,
                 on_state: Callable[[StateChange], None] | None = None) -> None:
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
        self.last_cmd_seq = 0
        self.bad_check_count = 0
        self.watchdog_trips = 0
        self.last_aim = (0, 0, 0, 0)  # az cdeg, el cdeg, range m, tgo cs of the last accepted fire
        self.launches: list[Launch] = []
        self.on_launch = on_launch  # called with each Launch as it happens (the plant's feed)
        self.on_state = on_state  # called with each change of the safety state
        self.responding = True  # False: the board ignores every request (a pulled cable, a hung board)

    # --- time-driven state -------------------------------------------------------------------------------

    def tick(self, now_us: int | None = None) -> int:
        """Bring the state up to now (the watchdog); returns now."""
        now = self.clock_us() if now_us is None else now_us
        if self.state == State.ARMED and now - self.last_feed_us > self.holding[Holding.WATCHDOG_MS] * 1000:
            # it tripped when the period ran out, whenever that is seen
            self._to(State.SAFE, self.last_feed_us + self.holding[Holding.WATCHDOG_MS] * 1000, "watchdog")
            self.watchdog_tripped = True
            self.watchdog_trips += 1
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
        now = self.tick()
        self._to(State.FAULT, now, "fault")
        self.fault_code = code & 0xFFFF or 1

    def clear_fault(self) -> None:
        self._to(State.SAFE, self.clock_us(), "fault cleared")
        self.fault_code = 0

    def _to(self, state: State, t_us: int, cause: str) -> None:
        """The safety state becomes state (told to on_state when it changes)."""
        if state != self.state:
            self.state = state
            if self.on_state is not None:
                self.on_state(StateChange(state.name, t_us, cause))

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
            self.last_cmd_seq,
            self.bad_check_count & 0xFFFF,
            self.watchdog_trips & 0xFFFF,
            *self.last_aim,
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
        """An FC 6/16 write: checked whole first (02, 03: nothing changes), then applied in address order.

        A write touching FIRE_SEQ or FIRE_CHECK is a fire command: it must be the whole block with a good
        check, else it is refused (PARTIAL_FIRE, BAD_CHECK), counted, and changes no register.
        """
        if not 1 <= len(values) <= modbus_rtu.MAX_WRITE_COUNT:
            return ExceptionCode.ILLEGAL_DATA_VALUE
        if address + len(values) > HOLDING_COUNT:
            return ExceptionCode.ILLEGAL_DATA_ADDRESS
        end = address + len(values)
        if address <= Holding.FIRE_CHECK and end > Holding.FIRE_SEQ:
            # the integrity checks come before the range checks: a corrupted fire is counted, whatever it hit
            if address != FIRE_BLOCK or len(values) != FIRE_BLOCK_REGS:
                self._refuse_command(Reject.PARTIAL_FIRE)
                return None  # answered as written, as every refused fire is
            if fire_check(values[:-1]) != values[-1]:
                self._refuse_command(Reject.BAD_CHECK)
                return None
        if not all(in_limits(address + i, v) for i, v in enumerate(values)):
            return ExceptionCode.ILLEGAL_DATA_VALUE
        now = self.tick()
        for i, value in enumerate(values):
            self._write_one(Holding(address + i), value, now)
        return None

    def _refuse_command(self, reason: Reject) -> None:
        self.last_cmd_us = self.tick()
        self.bad_check_count += 1
        self._reject(reason)

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
        elif reg == Holding.FIRE_CHECK:  # the last register of a fire block: the block is whole and checked
            self.holding[reg] = value
            self._fire(self.holding[Holding.FIRE_SEQ], now)
            return
        elif reg == Holding.HEARTBEAT:
            self.last_feed_us = now
        self.holding[reg] = value

    def _arm_key(self, value: int, now: int) -> None:
        if value == ARM_KEY:
            if self.state == State.FAULT:
                self._reject(Reject.FAULT)
            elif self.state == State.SAFE:
                self._to(State.ARMED, now, "arm key")
                self.watchdog_tripped = False
                self.last_feed_us = now  # arming starts the watchdog period afresh
                log.info("ARMED at %d us", now)
            return
        if value != 0:
            self._reject(Reject.BAD_KEY)
        if self.state == State.ARMED:
            self._to(State.SAFE, now, "disarm")
            log.info("SAFE at %d us", now)

    def _fire(self, seq: int, now: int) -> None:
        self.last_cmd_us = now
        self.last_cmd_seq = seq
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
            h = self.holding
            track = h[Holding.FIRE_TRACK]
            self.rounds -= 1
            self.last_fire_seq = seq
            self.last_fire_track = track
            self.last_launch_us = now
            self.launch_count += 1
            self.reload_until_us = now + h[Holding.RELOAD_MS] * 1000
            launch = Launch(seq, track, h[Holding.FIRE_AZ_CDEG], h[Holding.FIRE_EL_CDEG], h[Holding.FIRE_RANGE_M],
                            h[Holding.FIRE_TGO_CS], now)
            self.last_aim = (launch.azimuth_cdeg, launch.elevation_cdeg, launch.range_m, launch.tgo_cs)
            self.launches.append(launch)
            log.info("LAUNCH seq %d track %d at %d us", seq, track, now)
            if self.on_launch is not None:
                self.on_launch(launch)
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


# --- launch events on stdout ----------------------------------------------------------------------------------


class _LaunchPrinter:
    """Prints each launch and each state change as one JSON line on fd, never blocking the board: what the pipe will
    not take yet waits in memory and goes out when the reader catches up."""

    def __init__(self, fd: int) -> None:
        self.fd, self.pending, self.dropped = fd, bytearray(), 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.waiting = False
        if not os.isatty(fd):  # a terminal's blocking mode is shared with the shell: leave it be
            os.set_blocking(fd, False)

    def __call__(self, event: Launch | StateChange) -> None:
        kind = "launch" if isinstance(event, Launch) else "state"
        line = (json.dumps({kind: event.to_json()}) + "\n").encode()
        if len(self.pending) + len(line) > MAX_PENDING_EVENT_BYTES:
            self.dropped += 1
            log.warning("%s event %s dropped: nobody reads stdout (%d dropped)", kind, event, self.dropped)
            return
        self.pending += line
        self.flush()

    def flush(self) -> None:
        try:
            while self.pending:
                del self.pending[:os.write(self.fd, self.pending)]
        except BlockingIOError:
            pass
        except OSError as e:  # the reader is gone: the events have nowhere to go, the board carries on
            log.warning("launch events: %s", e)
            self.pending.clear()
        if self.loop is None:
            return
        if self.pending and not self.waiting:
            self.loop.add_writer(self.fd, self.flush)
            self.waiting = True
        elif not self.pending and self.waiting:
            self.loop.remove_writer(self.fd)
            self.waiting = False


class LaunchEvents:
    """The launch and state lines of a launcher process's stdout (after its announcement), read without blocking.

    `LaunchEvents(child.proc.stdout.fileno()).poll()` returns the launches printed since the last poll; the state
    changes read gather in `states`.
    """

    def __init__(self, fd: int) -> None:
        self.fd, self.buffer, self.ignored = fd, b"", 0
        self.states: list[StateChange] = []  # the state lines read so far, in order
        os.set_blocking(fd, False)

    def poll(self) -> list[Launch]:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        out = []
        for line in lines:
            try:
                event = json.loads(line)
                if "state" in event:
                    self.states.append(StateChange.from_json(event["state"]))
                else:
                    out.append(Launch.from_json(event["launch"]))
            except (ValueError, KeyError, TypeError):
                self.ignored += 1
        return out


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
    modbus_rtu.quiet_pymodbus(verbose=args.log_level.upper() == "DEBUG")
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

    def announce(info: dict[str, Any]) -> None:
        print(json.dumps(info), flush=True)
        printer = _LaunchPrinter(sys.stdout.fileno())  # from here on stdout carries launch lines only
        loop = printer.loop = asyncio.get_running_loop()

        def later(launch: Launch) -> None:
            # the board answers the fire first and prints its launch line after: a real board's launch discrete
            # does not hold up its Modbus reply either (on TCP it added 26-33 us to a fire's round trip)
            loop.call_soon(printer, launch)

        model.on_launch = later
        model.on_state = printer  # a state line is never on a reply's path: out at once

    async def run() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)

        async def look_at_the_watchdog() -> None:  # as a board's own timer would: a trip is seen when it happens
            while True:
                model.tick()
                await asyncio.sleep(WATCHDOG_LOOK_S)

        watchdog = asyncio.ensure_future(look_at_the_watchdog())
        try:
            await serve(model, args.device_id, rtu=args.rtu, tcp=tcp, baud=args.baud, announce=announce)
        finally:
            watchdog.cancel()

    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
