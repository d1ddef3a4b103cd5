"""LauncherLink: the host's side of one launcher board over Modbus RTU/TCP (pymodbus async) or in-process RTU.

The link is a second line of safety after the fire-control kernel: it never writes FIRE_SEQ unless its
last status read is younger than the board's watchdog period and shows ARMED, READY and rounds left, and
the link is healthy; it owns the sequence numbers and confirms a launch only by reading LAST_FIRE_SEQ
back. pymodbus never retries (a retry hides a fault as latency). A board that times out `lost_after`
times in a row is LOST: it is not commanded again until a reconnect (with backoff) and a fresh status
read show it sane. Every refusal has a reason, counted in `counters.refusals`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

from hdrh.histogram import HdrHistogram

from hil.drivers import modbus_rtu
from hil.drivers.modbus_rtu import ModbusExceptionResponse, ModbusFrameError
from hil.drivers.registers import (
    ARM_KEY,
    BUILD_ID_REGS,
    FW_NAME_REGS,
    IDENT_MAGIC,
    REGMAP_VERSION,
    U64_REGS,
    WATCHDOG_MS_DEFAULT,
    FunctionCode,
    Holding,
    Input,
    Reject,
    State,
    StatusBit,
    in_limits,
    unpack_ascii,
    unpack_u64,
)
from hil.drivers.timesync import ClockSync
from hil.errors import LinkError

log = logging.getLogger(__name__)

Recorder = Callable[[str, str, bytes, int, str], None]
T = TypeVar("T")
STATUS_REGS = Input.LAST_CMD_T_US + U64_REGS  # one read of input 0..23 is a whole status
SEQ_MAX = 0xFFFF


class Refusal(StrEnum):
    """Why the link did not command a fire (board rejects are reported by their Reject name)."""

    NOT_CONNECTED = "NOT_CONNECTED"
    LOST = "LOST"
    NO_STATUS = "NO_STATUS"
    STALE_STATUS = "STALE_STATUS"
    FAULT = "FAULT"
    NOT_ARMED = "NOT_ARMED"
    NO_ROUNDS = "NO_ROUNDS"
    NOT_READY = "NOT_READY"
    BAD_AIM = "BAD_AIM"
    TIMEOUT = "TIMEOUT"  # the write went unanswered and the readback shows no launch
    EXCEPTION = "EXCEPTION"  # the board answered the write with a Modbus exception
    UNCONFIRMED = "UNCONFIRMED"  # sent, but the readback failed: a later status read settles it


class Identity(NamedTuple):
    name: str
    version: str
    build: str

    def __str__(self) -> str:
        return f"{self.name};{self.version};{self.build}"


@dataclass(frozen=True)
class LauncherStatus:
    state: State
    armed: bool
    ready: bool
    reloading: bool
    watchdog_tripped: bool
    fault: bool
    rounds: int
    last_fire_seq: int
    launch_count: int
    last_fire_track: int
    last_reject: Reject
    reject_count: int
    fault_code: int
    board_time_us: int
    last_launch_board_us: int
    last_cmd_board_us: int
    host_ns: int  # host time the response arrived

    @classmethod
    def from_registers(cls, regs: Sequence[int], host_ns: int) -> LauncherStatus:
        """Input registers 0..23; ModbusFrameError if they are not a hil launcher's."""
        if regs[Input.IDENT_MAGIC] != IDENT_MAGIC or regs[Input.REGMAP_VERSION] != REGMAP_VERSION:
            raise ModbusFrameError(f"not a hil launcher (magic {regs[0]:#06x}, register map {regs[1]})")
        try:
            state, reject = State(regs[Input.STATE]), Reject(regs[Input.LAST_REJECT])
        except ValueError as e:
            raise ModbusFrameError(f"insane status: {e}") from None
        bits = StatusBit(regs[Input.STATUS] & 0x1F)

        def u64(at: int) -> int:
            return unpack_u64(regs[at:at + U64_REGS])

        return cls(
            state=state, armed=StatusBit.ARMED in bits, ready=StatusBit.READY in bits,
            reloading=StatusBit.RELOADING in bits, watchdog_tripped=StatusBit.WATCHDOG_TRIPPED in bits,
            fault=StatusBit.FAULT in bits or state == State.FAULT, rounds=regs[Input.ROUNDS_REMAINING],
            last_fire_seq=regs[Input.LAST_FIRE_SEQ], launch_count=regs[Input.LAUNCH_COUNT],
            last_fire_track=regs[Input.LAST_FIRE_TRACK], last_reject=reject, reject_count=regs[Input.REJECT_COUNT],
            fault_code=regs[Input.FAULT_CODE], board_time_us=u64(Input.BOARD_TIME_US),
            last_launch_board_us=u64(Input.LAST_LAUNCH_T_US), last_cmd_board_us=u64(Input.LAST_CMD_T_US),
            host_ns=host_ns,
        )


@dataclass(frozen=True)
class FireResult:
    accepted: bool
    seq: int  # 0 when nothing was sent
    reason: str  # "" when accepted; a Refusal or a board Reject name
    board_accept_us: int = 0  # LAST_LAUNCH_T_US of an accepted fire (t5, board clock)
    written_ns: int = 0  # host time the write went out (t4)
    round_trip_ns: int = 0  # write request to write response
    sent: bool = False
    status: LauncherStatus | None = None  # the readback


@dataclass
class LinkCounters:
    requests: int = 0
    timeouts: int = 0
    exceptions: int = 0  # Modbus exception responses
    bad_responses: int = 0  # answers that do not answer the request (CRC is pymodbus' or ours)
    lost_events: int = 0
    reconnects: int = 0
    launches: int = 0
    late_confirmations: int = 0
    board_restarts: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    round_trip_us: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 60_000_000, 3))

    def summary(self) -> dict[str, Any]:
        h = self.round_trip_us
        rtt = {f"p{p}": h.get_value_at_percentile(p) for p in (50, 90, 99)} if h.get_total_count() else {}
        return {"requests": self.requests, "timeouts": self.timeouts, "exceptions": self.exceptions,
                "bad_responses": self.bad_responses, "lost_events": self.lost_events, "reconnects": self.reconnects,
                "launches": self.launches, "late_confirmations": self.late_confirmations,
                "board_restarts": self.board_restarts, "refusals": dict(self.refusals),
                "round_trip_us": {**rtt, "max": h.get_max_value(), "count": h.get_total_count()}}


class _Timeout(LinkError):
    """No answer within the timeout."""


class _Broken(LinkError):
    """The transport itself failed (port gone, connection refused): the board is lost at once."""


class LauncherModbusError(LinkError):
    """The board answered with a Modbus exception."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# --- transports: three Modbus operations, raising _Timeout / _Broken / ModbusExceptionResponse / frame errors --


class _Transport:
    kind = "modbus_rtu"

    async def open(self) -> None: ...

    def close(self) -> None: ...

    async def read(self, function_code: int, address: int, count: int) -> list[int]:
        raise NotImplementedError

    async def write_single(self, address: int, value: int) -> None:
        raise NotImplementedError

    async def write_multiple(self, address: int, values: Sequence[int]) -> None:
        raise NotImplementedError


class _VirtualTransport(_Transport):
    """Real RTU ADUs (with CRC) exchanged with an in-process LauncherModel: nothing waits."""

    def __init__(self, model: Any, device_id: int, record: Callable[[str, bytes], None]) -> None:
        self.model, self.device_id, self.record = model, device_id, record

    async def _exchange(self, pdu: bytes) -> bytes:
        adu = modbus_rtu.encode_adu(self.device_id, pdu)
        self.record("tx", adu)
        answer = self.model.handle_rtu(adu, self.device_id)
        if answer is None:
            raise _Timeout("no answer")
        self.record("rx", answer)
        dev, rpdu = modbus_rtu.decode_adu(answer)
        if dev != self.device_id:
            raise ModbusFrameError(f"answer from device {dev}")
        return rpdu

    async def read(self, function_code: int, address: int, count: int) -> list[int]:
        pdu = await self._exchange(modbus_rtu.read_request(function_code, address, count))
        return modbus_rtu.parse_read_response(function_code, count, pdu)

    async def write_single(self, address: int, value: int) -> None:
        pdu = await self._exchange(modbus_rtu.write_single_request(address, value))
        modbus_rtu.parse_write_response(FunctionCode.WRITE_SINGLE, address, value, pdu)

    async def write_multiple(self, address: int, values: Sequence[int]) -> None:
        pdu = await self._exchange(modbus_rtu.write_multiple_request(address, values))
        modbus_rtu.parse_write_response(FunctionCode.WRITE_MULTIPLE, address, len(values), pdu)


class _PymodbusTransport(_Transport):
    """A pymodbus async client (RTU on a serial path, or TCP), one request at a time, no retries."""

    def __init__(self, kind: str, target: str | tuple[str, int], device_id: int, timeout_s: float, baud: int,
                 record: Callable[[str, bytes], None], recording: Callable[[], bool] = lambda: True) -> None:
        self.kind, self.target, self.device_id = kind, target, device_id
        self.timeout_s, self.baud, self.record, self.recording = timeout_s, baud, record, recording
        self.client: Any = None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if sending:  # received bytes come in fragments here; the whole answer is recorded from its PDU
            self.record("tx", bytes(data))
        return data

    def _trace_pdu(self, sending: bool, pdu: Any) -> Any:
        if not sending and self.client is not None:
            self.record("rx", self.client.ctx.framer.buildFrame(pdu))
        return pdu

    async def open(self) -> None:
        from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
        from pymodbus.framer import FramerType

        self.close()
        common: dict[str, Any] = {"timeout": self.timeout_s, "retries": 0, "reconnect_delay": 0}
        if self.recording():  # rebuilding each answer's frame for the recording costs 7–14 µs an exchange
            common.update(trace_packet=self._trace_packet, trace_pdu=self._trace_pdu)
        if isinstance(self.target, tuple):
            self.client = AsyncModbusTcpClient(self.target[0], port=self.target[1], **common)
        else:
            self.client = AsyncModbusSerialClient(self.target, framer=FramerType.RTU, baudrate=self.baud,
                                                  bytesize=8, parity="N", stopbits=1, **common)
        try:
            ok = await self.client.connect()
        except Exception as e:  # pymodbus and pyserial raise what the OS gives them
            raise _Broken(f"cannot open {self.target}: {e}") from None
        if not ok:
            raise _Broken(f"cannot open {self.target}")

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    async def _call(self, call: Callable[[], Awaitable[Any]], function_code: int) -> Any:
        from pymodbus.exceptions import ConnectionException, ModbusIOException

        if self.client is None:
            raise _Broken("not open")
        try:
            response = await call()
        except ConnectionException as e:
            raise _Broken(str(e)) from None
        except ModbusIOException as e:
            raise _Timeout(str(e)) from None
        except OSError as e:
            raise _Broken(str(e)) from None
        if response.isError():
            raise ModbusExceptionResponse(function_code, int(response.exception_code))
        if response.function_code != function_code:
            # after a timeout on RTU a late answer can arrive in the next request's place
            raise ModbusFrameError(f"answer to function {response.function_code}, expected {function_code}")
        return response

    async def read(self, function_code: int, address: int, count: int) -> list[int]:
        c = self.client
        op = c.read_holding_registers if function_code == FunctionCode.READ_HOLDING else c.read_input_registers
        response = await self._call(lambda: op(address, count=count, device_id=self.device_id), function_code)
        if len(response.registers) != count:
            raise ModbusFrameError(f"{len(response.registers)} registers for {count}")
        return list(response.registers)

    async def write_single(self, address: int, value: int) -> None:
        response = await self._call(lambda: self.client.write_register(address, value, device_id=self.device_id),
                                    FunctionCode.WRITE_SINGLE)
        if response.address != address or list(response.registers) != [value]:
            raise ModbusFrameError(f"write echo {response.address}={list(response.registers)}")

    async def write_multiple(self, address: int, values: Sequence[int]) -> None:
        response = await self._call(
            lambda: self.client.write_registers(address, list(values), device_id=self.device_id),
            FunctionCode.WRITE_MULTIPLE)
        if response.address != address or response.count != len(values):
            raise ModbusFrameError(f"write answer {response.address}/{response.count}")


# --- the link ----------------------------------------------------------------------------------------------


class LauncherLink:
    """One launcher board as the host drives it; see the module docstring for the safety rules."""

    def __init__(self, transport: _Transport, *, device_id: int = 1, name: str = "launcher",
                 clock_ns: Callable[[], int] = time.monotonic_ns, recorder: Recorder | None = None,
                 lost_after: int = 3, backoff_s: tuple[float, float] = (0.1, 5.0)) -> None:
        self.transport, self.device_id, self.name = transport, device_id, name
        self.clock_ns, self.recorder = clock_ns, recorder
        self.lost_after = lost_after
        self.backoff_min_ns, self.backoff_max_ns = int(backoff_s[0] * 1e9), int(backoff_s[1] * 1e9)
        self.clock_sync = ClockSync()
        self.counters = LinkCounters()
        self.status: LauncherStatus | None = None
        self.watchdog_ms = WATCHDOG_MS_DEFAULT
        self.connected = False
        self.lost = False
        self.unconfirmed_seq = 0  # a fire whose readback failed
        self._seq = 0
        self._heartbeat = 0
        self._timeouts_in_a_row = 0
        self._backoff_ns = self.backoff_min_ns
        self._next_reconnect_ns = 0
        self._lock = asyncio.Lock()  # one exchange at a time, and a fire's write + readback together

    # --- construction ------------------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, device_id: int = 1, name: str = "launcher",
                 clock_ns: Callable[[], int] = time.monotonic_ns, recorder: Recorder | None = None,
                 timeout_s: float = 0.1, baud: int = 115200, **kw: Any) -> LauncherLink:
        """tcp://HOST:PORT, or rtu:PATH / a bare serial path (8N1 at baud)."""
        link: LauncherLink
        target: str | tuple[str, int]
        if url.startswith("tcp://"):
            host, _, port = url[len("tcp://"):].rpartition(":")
            if not host or not port.isdigit():
                raise LinkError(f"{name}: {url!r} is not tcp://HOST:PORT")
            kind, target = "modbus_tcp", (host.strip("[]"), int(port))
        elif url.startswith("rtu:") or url.startswith("/"):
            path = url[len("rtu:"):] if url.startswith("rtu:") else url
            kind, target = "modbus_rtu", path.removeprefix("//")
        else:
            raise LinkError(f"{name}: {url!r} is neither tcp://HOST:PORT nor rtu:PATH")
        link = cls(_Transport(), device_id=device_id, name=name, clock_ns=clock_ns, recorder=recorder, **kw)
        link.transport = _PymodbusTransport(kind, target, device_id, timeout_s, baud, link._record,
                                            lambda: link.recorder is not None)
        return link

    @classmethod
    def virtual(cls, model: Any, device_id: int = 1, name: str = "launcher",
                clock_ns: Callable[[], int] = time.monotonic_ns, recorder: Recorder | None = None,
                **kw: Any) -> LauncherLink:
        """In-process link to a LauncherModel, in real RTU bytes, for runs in virtual time."""
        link = cls(_Transport(), device_id=device_id, name=name, clock_ns=clock_ns, recorder=recorder, **kw)
        link.transport = _VirtualTransport(model, device_id, link._record)
        return link

    def __repr__(self) -> str:
        return f"LauncherLink({self.name!r}, {self.transport.kind}, {'lost' if self.lost else 'ok'})"

    def _record(self, direction: str, adu: bytes) -> None:
        if self.recorder is not None:
            self.recorder(self.name, direction, adu, self.clock_ns(), self.transport.kind)

    # --- exchanges --------------------------------------------------------------------------------------

    async def _exchange(self, call: Callable[[], Awaitable[T]]) -> T:
        """One request: counted, timed, and turned into LinkError; timeouts in a row make the board LOST."""
        self.counters.requests += 1
        h0 = self.clock_ns()
        try:
            result = await call()
        except _Broken as e:
            self._mark_lost(str(e))
            raise LinkError(f"{self.name}: {e}") from None
        except _Timeout:
            self.counters.timeouts += 1
            self._timeouts_in_a_row += 1
            if self._timeouts_in_a_row >= self.lost_after:
                self._mark_lost(f"{self._timeouts_in_a_row} timeouts in a row")
            raise LinkError(f"{self.name}: no answer") from None
        except ModbusExceptionResponse as e:
            self.counters.exceptions += 1
            self._timeouts_in_a_row = 0
            raise LauncherModbusError(f"{self.name}: {e}", e.code) from None
        except ModbusFrameError as e:
            self.counters.bad_responses += 1
            raise LinkError(f"{self.name}: bad answer: {e}") from None
        self._timeouts_in_a_row = 0
        self.counters.round_trip_us.record_value(max(1, (self.clock_ns() - h0) // 1000))
        return result

    def _mark_lost(self, why: str) -> None:
        if not self.lost:
            log.warning("%s: LOST (%s): no commands until it reconnects", self.name, why)
            self.counters.lost_events += 1
        self.lost = True
        self._next_reconnect_ns = self.clock_ns() + self._backoff_ns

    async def _usable(self) -> None:
        """Raise unless the link may talk to the board now; a LOST board gets a reconnect when backoff allows."""
        if not self.connected:
            raise LinkError(f"{self.name}: not connected")
        if not self.lost:
            return
        now = self.clock_ns()
        if now < self._next_reconnect_ns:
            raise LinkError(f"{self.name}: lost; next reconnect in {(self._next_reconnect_ns - now) / 1e9:.2f} s")
        try:
            await self._reopen()
        except LinkError as e:
            self._backoff_ns = min(2 * self._backoff_ns, self.backoff_max_ns)
            self._next_reconnect_ns = self.clock_ns() + self._backoff_ns
            raise LinkError(f"{self.name}: lost; reconnect failed ({e}); next in {self._backoff_ns / 1e9:.2f} s") \
                from None
        self.lost = False
        self._timeouts_in_a_row = 0
        self._backoff_ns = self.backoff_min_ns
        self.counters.reconnects += 1
        log.warning("%s: reconnected; %s", self.name, self.status)

    async def _reopen(self) -> None:
        try:
            await self.transport.open()
        except _Broken as e:
            raise LinkError(str(e)) from None
        # sane = it answers a whole status as a hil launcher (the read checks magic and map version)
        await self._read_status()

    async def _read_status(self) -> LauncherStatus:
        h0 = self.clock_ns()
        regs = await self._exchange(lambda: self.transport.read(FunctionCode.READ_INPUT, 0, STATUS_REGS))
        h1 = self.clock_ns()
        try:
            status = LauncherStatus.from_registers(regs, h1)
        except ModbusFrameError as e:
            self.counters.bad_responses += 1
            raise LinkError(f"{self.name}: {e}") from None
        previous = self.status
        if previous is not None and status.board_time_us < previous.board_time_us:
            # the board clock ran backwards: it restarted (SAFE, counters zero), and its clock is a new one
            log.warning("%s: the board restarted (clock %d -> %d us)", self.name, previous.board_time_us,
                        status.board_time_us)
            self.counters.board_restarts += 1
            self.clock_sync.reset()
        self.clock_sync.add_sample(h0, status.board_time_us, status.board_time_us, h1)
        if self.unconfirmed_seq:
            if status.last_fire_seq == self.unconfirmed_seq:
                log.warning("%s: fire seq %d did launch (confirmed late)", self.name, self.unconfirmed_seq)
                self.counters.late_confirmations += 1
            self.unconfirmed_seq = 0
        self.status = status
        return status

    # --- public operations -------------------------------------------------------------------------------

    async def connect(self) -> LauncherStatus:
        """Open the transport and read the board's settings and status; LinkError if it is not a launcher."""
        async with self._lock:
            try:
                await self.transport.open()
            except _Broken as e:
                raise LinkError(f"{self.name}: {e}") from None
            self.connected, self.lost = True, False
            holding = await self._exchange(lambda: self.transport.read(FunctionCode.READ_HOLDING, 0, 9))
            self.watchdog_ms = holding[Holding.WATCHDOG_MS]
            self._heartbeat = holding[Holding.HEARTBEAT]
            status = await self._read_status()
            self._seq = status.last_fire_seq  # carry on numbering from what the board last accepted
            return status

    def close(self) -> None:
        self.connected = False
        self.transport.close()

    async def identify(self) -> Identity:
        async with self._lock:
            await self._usable()
            regs = await self._exchange(lambda: self.transport.read(
                FunctionCode.READ_INPUT, Input.FW_NAME, FW_NAME_REGS + BUILD_ID_REGS))
            head = await self._exchange(lambda: self.transport.read(FunctionCode.READ_INPUT, 0, 3))
        if head[Input.IDENT_MAGIC] != IDENT_MAGIC:
            raise LinkError(f"{self.name}: not a hil launcher (magic {head[0]:#06x})")
        version = f"{head[Input.FW_VERSION] >> 8}.{head[Input.FW_VERSION] & 0xFF}"
        return Identity(unpack_ascii(regs[:FW_NAME_REGS]), version, unpack_ascii(regs[FW_NAME_REGS:]))

    async def read_status(self) -> LauncherStatus:
        async with self._lock:
            await self._usable()
            return await self._read_status()

    async def heartbeat(self) -> None:
        """Feed the board's watchdog (a counter, so a recording shows each one)."""
        async with self._lock:
            await self._usable()
            self._heartbeat = (self._heartbeat + 1) & 0xFFFF
            await self._exchange(lambda: self.transport.write_single(Holding.HEARTBEAT, self._heartbeat))

    async def arm(self) -> LauncherStatus:
        async with self._lock:
            await self._usable()
            await self._exchange(lambda: self.transport.write_single(Holding.ARM_KEY, ARM_KEY))
            status = await self._read_status()
        if not status.armed:
            raise LinkError(f"{self.name}: did not arm (state {status.state.name}, last reject "
                            f"{status.last_reject.name})")
        return status

    async def make_safe(self) -> LauncherStatus:
        async with self._lock:
            await self._usable()
            await self._exchange(lambda: self.transport.write_single(Holding.ARM_KEY, 0))
            return await self._read_status()

    async def configure(self, watchdog_ms: int, reload_ms: int, rounds: int) -> LauncherStatus:
        """Set the watchdog, reload time and rounds (rounds only take in SAFE: LinkError otherwise)."""
        for reg, value in ((Holding.WATCHDOG_MS, watchdog_ms), (Holding.RELOAD_MS, reload_ms),
                           (Holding.ROUNDS_LOADED, rounds)):
            if not in_limits(reg, value):
                raise ValueError(f"{self.name}: {reg.name} = {value} is outside its range")
        async with self._lock:
            await self._usable()
            await self._exchange(lambda: self.transport.write_single(Holding.WATCHDOG_MS, watchdog_ms))
            self.watchdog_ms = watchdog_ms
            await self._exchange(lambda: self.transport.write_multiple(Holding.RELOAD_MS, [reload_ms, rounds]))
            status = await self._read_status()
        if status.rounds != rounds:
            raise LinkError(f"{self.name}: rounds not loaded ({status.last_reject.name}): the launcher must be SAFE")
        return status

    def fire_refusal(self, now_ns: int | None = None) -> Refusal | None:
        """Why a fire may not be sent now, or None (the link's own check, after the fire-control kernel's)."""
        now = self.clock_ns() if now_ns is None else now_ns
        s = self.status
        if not self.connected:
            return Refusal.NOT_CONNECTED
        if self.lost:
            return Refusal.LOST
        if s is None:
            return Refusal.NO_STATUS
        if now - s.host_ns >= self.watchdog_ms * 1_000_000:
            return Refusal.STALE_STATUS
        if s.fault:
            return Refusal.FAULT
        if not s.armed:
            return Refusal.NOT_ARMED
        if s.rounds <= 0:
            return Refusal.NO_ROUNDS
        if not s.ready:
            return Refusal.NOT_READY
        return None

    def _refuse(self, reason: str, seq: int = 0, **kw: Any) -> FireResult:
        self.counters.refusals[str(reason)] += 1
        log.info("%s: fire refused: %s", self.name, reason)
        return FireResult(accepted=False, seq=seq, reason=reason, **kw)

    def _next_seq(self, avoid: int) -> int:
        seq = self._seq % SEQ_MAX + 1  # 1..65535: 0 is never a fire
        if seq == avoid:
            seq = seq % SEQ_MAX + 1
        self._seq = seq
        return seq

    async def fire(self, track_id: int, azimuth_rad: float, elevation_rad: float) -> FireResult:
        """Command one launch at the aim given (radians, azimuth clockwise from north) for track_id.

        Never raises for link trouble: the result says whether the board launched, and if not, why.
        The track number goes on the wire modulo 65536.
        """
        az_cdeg = round(math.degrees(azimuth_rad % (2 * math.pi)) * 100) % 36000
        el_cdeg = round(math.degrees(elevation_rad) * 100) if math.isfinite(elevation_rad) else -1
        async with self._lock:
            refusal = self.fire_refusal()
            if refusal is None and not (math.isfinite(azimuth_rad) and in_limits(Holding.FIRE_EL_CDEG, el_cdeg)):
                refusal = Refusal.BAD_AIM
            if refusal is not None:
                return self._refuse(refusal)
            assert self.status is not None
            seq = self._next_seq(self.status.last_fire_seq)
            values = [track_id & 0xFFFF, az_cdeg, el_cdeg, seq]
            written_ns = self.clock_ns()
            failure: str | None = None
            try:
                await self._exchange(lambda: self.transport.write_multiple(Holding.FIRE_TRACK, values))
            except LauncherModbusError as e:
                failure = f"{Refusal.EXCEPTION}_{e.code:02d}"
            except LinkError:
                failure = Refusal.TIMEOUT
            round_trip_ns = self.clock_ns() - written_ns
            # Only LAST_FIRE_SEQ says whether it launched, whatever became of the write's answer.
            try:
                status = await self._read_status()
            except LinkError:
                self.unconfirmed_seq = seq
                return self._refuse(Refusal.UNCONFIRMED, seq, written_ns=written_ns, sent=True)
            if status.last_fire_seq == seq:
                self.counters.launches += 1
                log.info("%s: launched seq %d for track %d at board %d us", self.name, seq, track_id,
                         status.last_launch_board_us)
                return FireResult(True, seq, "", status.last_launch_board_us, written_ns, round_trip_ns, True, status)
            reason = failure or status.last_reject.name
            return self._refuse(reason, seq, written_ns=written_ns, round_trip_ns=round_trip_ns, sent=True,
                                status=status)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "transport": self.transport.kind, "lost": self.lost, **self.counters.summary(),
                "clock_sync": self.clock_sync.summary()}
