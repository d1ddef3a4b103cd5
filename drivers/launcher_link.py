"""LauncherLink: the host's side of one launcher board over Modbus RTU (serial, pty), Modbus TCP, or in-process RTU.

The link is a second line of safety after the fire-control kernel: it never sends a fire unless its last
status read is younger than the board's watchdog period and shows ARMED, READY and rounds left, the link is
healthy and no earlier fire is unreconciled; it owns the sequence numbers, writes each fire as one checked
block (registers 3..9, docs/PROTOCOLS.md §4) and confirms a launch only by reading LAST_FIRE_SEQ back.

A fire write is never retried. A fire whose answer is lost, or whose readback fails, is UNCONFIRMED (the
round may be in flight): the link refuses every further fire (UNRECONCILED) until `reconcile()` has read
the board's launch record back and settled whether that sequence number launched. Reads are retried up to
`read_retries` times after a timeout. A board that times out `lost_after` times in a row is LOST: it is not
commanded again until a reconnect (with backoff) and a fresh status read show it sane.

The Modbus transaction loop is our own, over pymodbus-free framing (drivers/modbus_rtu.py): every answer is
checked against its request (device, function, byte count or write echo; over TCP the transaction id) and a
status against the board clock (an answer sampled before the request could be sent is stale); what answers
something else is discarded and counted (`late_replies`, `discarded_bytes`). pymodbus' client matches RTU
answers by function code only and logs rather than counts what it skips, and its framers drop the bytes
after a frame (FramerRTU) or wait forever on a bad MBAP protocol id (FramerSocket): they cannot do this.
Every refusal has a reason, counted in `counters.refusals`. One request is in flight at a time: after one whose
caller was cancelled, the next waits for its answer or its deadline (_StreamTransport.settled).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from hdrh.histogram import HdrHistogram

from hil.drivers import modbus_rtu
from hil.drivers.histograms import FLUSH_AT, percentile_values, record_many
from hil.drivers.modbus_rtu import ModbusExceptionResponse, ModbusFrameError
from hil.drivers.registers import (
    ARM_KEY,
    BUILD_ID_REGS,
    FIRE_BLOCK,
    FW_NAME_REGS,
    HOLDING_COUNT,
    HOLDING_LIMITS,
    IDENT_MAGIC,
    RECORD_REGS,
    REGMAP_VERSION,
    STATUS_REGS,
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
)
from hil.drivers.timesync import ClockSync
from hil.drivers.transport import LinkKind, parse_link_url
from hil.errors import LinkError
from hil.ext.fire_command import fire_request

log = logging.getLogger(__name__)

Recorder = Callable[[str, str, bytes, int, str], None]
LAUNCHER_LINK_KINDS: tuple[LinkKind, ...] = ("serial", "tcp")  # what from_url opens
SEQ_MAX = 0xFFFF
RANGE_M_MAX = 0xFFFF
FIRE_EL_MIN_CDEG, FIRE_EL_MAX_CDEG = HOLDING_LIMITS[Holding.FIRE_EL_CDEG]
TGO_S_MAX = 0xFFFF / 100
# A status is stale when the board clock advanced less than this share of the host time since the last one
# (less the slack): far below any board's drift, far above what an answer held back a timeout shows.
BOARD_RATE_MIN = 0.5
STALE_SLACK_US = 2000
_TIME_AT = 2 + 2 * Input.BOARD_TIME_US  # byte offset of BOARD_TIME_US in a read answer from input 0
# A status decoded in one call (it is read several times a second per board): input 0..11, then the three u64s.
_STATUS = struct.Struct(f">{int(Input.BOARD_TIME_US)}H3Q")
assert _STATUS.size == 2 * STATUS_REGS and Input.LAST_LAUNCH_T_US == Input.BOARD_TIME_US + U64_REGS \
    and Input.LAST_CMD_T_US == Input.LAST_LAUNCH_T_US + U64_REGS
_STATES = {int(s): s for s in State}
_REJECTS: dict[int, Reject | int] = {int(r): r for r in Reject}
_ARMED, _READY, _RELOADING, _WATCHDOG_TRIPPED, _FAULT = (int(b) for b in (
    StatusBit.ARMED, StatusBit.READY, StatusBit.RELOADING, StatusBit.WATCHDOG_TRIPPED, StatusBit.FAULT))


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
    UNRECONCILED = "UNRECONCILED"  # an earlier fire is unconfirmed: reconcile() first
    EXCEPTION = "EXCEPTION"  # the board answered the write with a Modbus exception (reported as EXCEPTION_nn)
    UNCONFIRMED = "UNCONFIRMED"  # sent, but its answer or its readback was lost: it may have launched


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
    watchdog_tripped: bool  # latched by the board until the next arm
    fault: bool
    rounds: int
    last_fire_seq: int
    launch_count: int
    last_fire_track: int
    last_reject: Reject | int  # an int for a reject this link does not know (a newer board)
    reject_count: int
    fault_code: int
    board_time_us: int
    last_launch_board_us: int
    last_cmd_board_us: int
    host_ns: int  # host time the response arrived

    @classmethod
    def from_registers(cls, regs: Sequence[int], host_ns: int) -> LauncherStatus:
        """Input registers 0..23; ModbusFrameError if they are not a hil launcher's."""
        return cls.from_pdu(bytes(2) + struct.pack(f">{STATUS_REGS}H", *regs[:STATUS_REGS]), host_ns)

    @classmethod
    def from_pdu(cls, pdu: bytes, host_ns: int) -> LauncherStatus:
        """The answer PDU of a read of input 0..23 or more; ModbusFrameError if it is not a hil launcher's."""
        (magic, version, _, state_value, bits, rounds, last_fire_seq, launch_count, last_fire_track, reject_value,
         reject_count, fault_code, board_time_us, last_launch_us, last_cmd_us) = _STATUS.unpack_from(pdu, 2)
        if magic != IDENT_MAGIC or version != REGMAP_VERSION:
            raise ModbusFrameError(f"not a hil launcher of register map {REGMAP_VERSION} (magic {magic:#06x}, "
                                   f"register map {version})")
        state = _STATES.get(state_value)
        if state is None:
            raise ModbusFrameError(f"insane status: {state_value} is not a valid State")
        # Filled in place of the frozen __init__, which sets each field through object.__setattr__: four times
        # the cost, on every status read. The fields are the dataclass' own, all of them (a test checks).
        status = object.__new__(cls)
        status.__dict__.update(
            state=state, armed=bool(bits & _ARMED), ready=bool(bits & _READY), reloading=bool(bits & _RELOADING),
            watchdog_tripped=bool(bits & _WATCHDOG_TRIPPED), fault=bool(bits & _FAULT) or state == State.FAULT,
            rounds=rounds, last_fire_seq=last_fire_seq, launch_count=launch_count, last_fire_track=last_fire_track,
            last_reject=_REJECTS.get(reject_value, reject_value), reject_count=reject_count, fault_code=fault_code,
            board_time_us=board_time_us, last_launch_board_us=last_launch_us, last_cmd_board_us=last_cmd_us,
            host_ns=host_ns,
        )
        return status

    @property
    def reject_name(self) -> str:
        return self.last_reject.name if isinstance(self.last_reject, Reject) else f"REJECT_{self.last_reject}"


@dataclass(frozen=True)
class FireRecord:
    """The board's record of fire commands (input 24..30), read with a status by reconciliation."""

    last_cmd_seq: int  # FIRE_SEQ of the last well-formed fire command, accepted or not
    bad_check_count: int  # fire commands refused for their check word or a partial block
    watchdog_trips: int
    last_aim: tuple[int, int, int, int]  # az cdeg, el cdeg, range m, tgo cs of the last accepted fire

    @classmethod
    def from_registers(cls, regs: Sequence[int]) -> FireRecord:
        at = Input.LAST_FIRE_AZ_CDEG
        return cls(regs[Input.LAST_CMD_SEQ], regs[Input.BAD_CHECK_COUNT], regs[Input.WATCHDOG_TRIPS],
                   (regs[at], regs[at + 1], regs[at + 2], regs[at + 3]))


@dataclass(frozen=True)
class FireResult:
    accepted: bool  # the board launched (LAST_FIRE_SEQ read back equals seq)
    seq: int  # 0 when nothing was sent
    reason: str  # "" when accepted; a Refusal or a board Reject name
    board_accept_us: int = 0  # LAST_LAUNCH_T_US of an accepted fire (t5, board clock)
    written_ns: int = 0  # host time the write went out (t4)
    round_trip_ns: int = 0  # write request to write response
    sent: bool = False
    status: LauncherStatus | None = None  # the readback
    unconfirmed: bool = False  # sent, outcome unknown: the round may be in flight until reconcile() says


class _SentFire(NamedTuple):
    """A fire command written, its answer still to come."""

    seq: int
    track_id: int
    written_ns: int  # host time the write went out (t4)
    sent_ns: int  # the request's start, for the link's round-trip figures
    request: bytes


def _take_free_lock(lock: asyncio.Lock) -> bool:
    """Take lock at once if it is free, without a pass of the event loop (True); else leave it as it is (False).

    Lock.acquire() of a free lock returns without suspending: its coroutine, stepped once, finishes. If it would
    wait (a waiter was woken and has not run yet), it is closed, which takes its waiter back out of the queue."""
    if lock.locked():
        return False
    step = lock.acquire()
    try:
        step.send(None)
    except StopIteration:
        return True
    step.close()
    return False


@dataclass(frozen=True)
class Reconciliation:
    """What reconcile() settled about an unconfirmed fire (seq 0: there was none; the board's state only)."""

    seq: int
    launched: bool
    board_launch_us: int  # LAST_LAUNCH_T_US when it launched, else 0
    board_restarted: bool  # the board clock ran backwards meanwhile: its record of the fire is gone
    status: LauncherStatus
    record: FireRecord


@dataclass
class LinkCounters:
    requests: int = 0
    timeouts: int = 0
    read_retries: int = 0
    exceptions: int = 0  # Modbus exception responses
    bad_responses: int = 0  # our transaction's answer, but not an answer to it, or not a hil launcher's
    late_replies: int = 0  # whole frames that answer no request in flight (late, duplicate, wrong TCP tid)
    discarded_bytes: int = 0  # bytes that made no frame (garbage, a bad CRC, a broken MBAP header)
    stale_statuses: int = 0  # of the late replies: status answers sampled before their request went out
    lost_events: int = 0
    reconnects: int = 0
    launches: int = 0
    unconfirmed: int = 0  # fires sent whose outcome the link did not learn at once
    reconciled_launched: int = 0
    reconciled_not_launched: int = 0
    watchdog_trips_seen: int = 0  # statuses that newly showed WATCHDOG_TRIPPED
    board_restarts: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    round_trip_us: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 60_000_000, 3))  # see round_trips()
    _pending_us: list[int] = field(default_factory=list, repr=False)  # not yet in round_trip_us

    def add_round_trip(self, us: int) -> None:
        """One exchange's round trip, folded into the histogram in bulk (hdrh's record_value is slow Python)."""
        self._pending_us.append(us)
        if len(self._pending_us) >= FLUSH_AT:
            self.round_trips()

    def round_trips(self) -> HdrHistogram:
        """round_trip_us with every round trip so far in it."""
        if self._pending_us:
            record_many(self.round_trip_us, self._pending_us)
            self._pending_us.clear()
        return self.round_trip_us

    def summary(self) -> dict[str, Any]:
        h = self.round_trips()
        values = percentile_values(h, [50, 90, 99]) if h.get_total_count() else {}
        rtt = {f"p{p}": v for p, v in values.items()}
        plain = {k: v for k, v in vars(self).items() if isinstance(v, int)}
        return {**plain, "refusals": dict(self.refusals),
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


# --- transports: one Modbus transaction loop over a byte stream ---------------------------------------------


class _Transport:
    """One request at a time over a byte stream that may hold anything: the answer is hunted for in what
    arrives and checked against the request (device, function, byte count or echo; over TCP the transaction
    id; `fresh` for what only the link can judge). A whole frame that answers something else (a late answer,
    a duplicate) is discarded and counted as a late reply; bytes that make no frame are discarded and
    counted. Raises _Timeout, _Broken, ModbusExceptionResponse, ModbusFrameError."""

    kind = "modbus_rtu"

    def __init__(self, device_id: int, record: Callable[[str, bytes], None], counters: LinkCounters) -> None:
        self.device_id, self.record, self.counters = device_id, record, counters
        self.rx = bytearray()
        self.tid = 0  # Modbus TCP transaction id of the request in flight

    async def open(self) -> None: ...

    def close(self) -> None: ...

    def send(self, request: bytes, fresh: Callable[[bytes], bool] | None) -> None:
        """Write request now, without waiting for the event loop: answer() waits for its answer."""
        raise NotImplementedError

    async def answer(self) -> bytes:
        """The answer to the request send() wrote."""
        raise NotImplementedError

    def settled(self) -> bool:
        """Whether a request may be written now: always, but on a board's line (_StreamTransport.settled)."""
        return True

    async def settle(self) -> None:
        """Wait until settled()."""

    def abandon(self) -> None:
        """Nobody will take the answer to the request send() wrote (its caller was cancelled)."""

    async def _exchange(self, request: bytes, fresh: Callable[[bytes], bool] | None) -> bytes:
        self.send(request, fresh)
        return await self.answer()

    def _stale_input(self) -> None:
        """What waits before a request is sent cannot answer it: counted and dropped."""
        self._take(b"", None)
        if self.rx:
            self.counters.discarded_bytes += len(self.rx)
            self.rx.clear()

    def _take(self, request: bytes, fresh: Callable[[bytes], bool] | None) -> bytes | None:
        """The answer to request (a PDU) if a whole one is in rx; every whole frame before it is dropped.

        An empty request answers nothing: every whole frame is a late reply."""
        rx, dev = self.rx, self.device_id
        if self.kind == "modbus_tcp":
            while len(rx) >= modbus_rtu.MBAP_BYTES + 1:
                tid, pid, length, unit = struct.unpack_from(">HHHB", rx)
                if pid or not 2 <= length <= modbus_rtu.MAX_ADU - 2:
                    del rx[0]  # not an MBAP header: hunt for the next plausible one
                    self.counters.discarded_bytes += 1
                    continue
                size = 6 + length
                if len(rx) < size:
                    return None
                frame = bytes(rx[:size])
                del rx[:size]
                self.record("rx", frame)
                pdu = frame[modbus_rtu.MBAP_BYTES:]
                if request and tid == self.tid and unit == dev and modbus_rtu.answers(request, pdu) \
                        and (fresh is None or fresh(pdu)):
                    return pdu
                if tid == self.tid and request:
                    self.counters.bad_responses += 1  # our transaction, but not an answer to it
                else:
                    self.counters.late_replies += 1
            return None
        start = 0
        while len(rx) - start >= 4:
            size = modbus_rtu.rtu_response_size(rx, start) if rx[start] == dev else -1
            if size > 0 and len(rx) - start >= size:
                frame = bytes(rx[start:start + size])
                if modbus_rtu.crc16(frame[:-2]) == frame[-2] | frame[-1] << 8:
                    if start:
                        self.counters.discarded_bytes += start
                    del rx[:start + size]
                    start = 0
                    self.record("rx", frame)
                    pdu = frame[1:-2]
                    if request and modbus_rtu.answers(request, pdu) and (fresh is None or fresh(pdu)):
                        return pdu
                    self.counters.late_replies += 1
                    continue
            # no whole frame starts here (yet): look further on, a garbled byte may hide the answer behind it
            start += 1
        return None


class _VirtualTransport(_Transport):
    """Real RTU ADUs (with CRC) exchanged with an in-process LauncherModel: nothing waits.

    What handle_rtu returns is a byte stream: it may hold the answer, a late answer to an earlier request, a
    duplicate, garbage or nothing (a fault injector may wrap it); it is hunted through as any stream is."""

    def __init__(self, model: Any, device_id: int, record: Callable[[str, bytes], None],
                 counters: LinkCounters) -> None:
        super().__init__(device_id, record, counters)
        self.model = model
        self._answer: bytes | None = None

    def send(self, request: bytes, fresh: Callable[[bytes], bool] | None) -> None:
        self._stale_input()
        adu = modbus_rtu.encode_adu(self.device_id, request)
        self.record("tx", adu)
        answer = self.model.handle_rtu(adu, self.device_id)
        if answer:
            self.rx += answer
        self._answer = self._take(request, fresh)

    async def answer(self) -> bytes:
        pdu, self._answer = self._answer, None
        if pdu is None:
            raise _Timeout("no answer")
        return pdu


class _StreamTransport(_Transport):
    """A serial device or pty (RTU, 8N1 at baud) or a TCP connection (Modbus TCP), read by the event loop.

    An exchange is one write and one future that the fd's reader callback resolves once the answer is whole:
    one pass of the loop between the answer's arrival and the caller resuming, nothing per exchange on the
    loop's timer heap (a deadline timer lives across exchanges and re-arms itself, see _deadline_passed)."""

    ADU_CACHE = 8  # framed requests kept: a status read is the same bytes each time, and RTU frames cost a CRC

    def __init__(self, kind: str, target: str | tuple[str, int], device_id: int, timeout_s: float, baud: int,
                 record: Callable[[str, bytes], None], counters: LinkCounters) -> None:
        super().__init__(device_id, record, counters)
        self.kind, self.target, self.timeout_s, self.baud = kind, target, timeout_s, baud
        self.fd = -1
        self._handle: Any = None  # the serial.Serial or socket.socket that owns fd
        self._waiter: asyncio.Future[bytes] | None = None
        self._request = b""
        self._fresh: Callable[[bytes], bool] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broken: str | None = None
        self._deadline = 0.0  # loop time by which the exchange in flight must be answered
        self._timer: asyncio.TimerHandle | None = None
        self._adus: dict[bytes, bytes] = {}  # RTU request PDU -> its ADU
        self._unsent = b""  # of the request in flight, what the fd's full buffer held back
        # One request in flight at a time. On an RTU line a request written while the board still owes an answer,
        # or right behind other bytes (closer than t3.5), reaches it as one frame with the one before, and it drops
        # both; a Modbus TCP server may serve one request at a time too (pymodbus' keeps only the last one it read,
        # so a request pipelined behind another loses that one). So after an exchange that did not end in its
        # answer (abandoned: its caller was cancelled) the next request waits for that answer or its deadline; on
        # a serial line, after bytes that answered nothing, for t3.5 of silence.
        self._serial_line = kind == "modbus_rtu"
        self._silence_s = modbus_rtu.t35_s(baud)
        self._abandoned = False  # a request written whose answer nobody took; it is due by _deadline
        self._quiet_at = 0.0  # loop time from which the line has been silent long enough (0: it has been)

    async def open(self) -> None:
        self.close()
        loop = asyncio.get_running_loop()
        try:
            if isinstance(self.target, tuple):
                sock = socket.socket(socket.AF_INET6 if ":" in self.target[0] else socket.AF_INET,
                                     socket.SOCK_STREAM)
                self._handle = sock
                sock.setblocking(False)
                await asyncio.wait_for(loop.sock_connect(sock, self.target), self.timeout_s + 1.0)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one request, one segment, at once
                self.fd = sock.fileno()
            else:
                import serial

                port = serial.Serial(self.target, self.baud, bytesize=8, parity="N", stopbits=1, timeout=0)
                self._handle = port
                port.reset_input_buffer()  # a fresh pty can hold stale bytes
                self.fd = port.fileno()
                os.set_blocking(self.fd, False)
        except (TimeoutError, OSError, ValueError) as e:  # pyserial's SerialException is an OSError
            self.close()
            raise _Broken(f"cannot open {self.target}: {e or 'timeout'}") from None
        self.rx.clear()
        self._broken = None
        self._abandoned, self._quiet_at = False, 0.0
        self._loop = loop
        loop.add_reader(self.fd, self._readable)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.fd >= 0 and self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.fd)
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()
        self._handle, self.fd, self._loop = None, -1, None

    def _readable(self) -> None:
        try:
            chunk = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError as e:
            chunk, self._broken = b"", str(e)
        if not chunk:
            self._broken = self._broken or "closed by the other end"
            if self._loop is not None:
                self._loop.remove_reader(self.fd)
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_exception(_Broken(self._broken))
            return
        self.rx += chunk
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            pdu = self._take(self._request, self._fresh)
            if pdu is not None:
                waiter.set_result(pdu)
        elif self._abandoned and self._take(self._request, self._fresh) is not None:
            self._abandoned = False  # the answer nobody waits for: the board is listening again
            self.counters.late_replies += 1
        elif self._serial_line and self.rx and self._loop is not None:
            self._quiet_at = self._loop.time() + self._silence_s  # bytes that answer nothing: let them end

    def _deadline_passed(self) -> None:
        """The deadline timer: it fires at the deadline of the exchange that armed it; a later exchange may have
        moved the deadline on since, and then it re-arms for that one instead of timing it out."""
        self._timer = None
        waiter, loop = self._waiter, self._loop
        if waiter is None or waiter.done() or loop is None:
            return
        if loop.time() >= self._deadline:
            waiter.set_exception(_Timeout(f"no answer within {self.timeout_s} s"))
        else:
            self._timer = loop.call_at(self._deadline, self._deadline_passed)

    def _frame(self, request: bytes) -> bytes:
        if self.kind == "modbus_tcp":
            self.tid = self.tid % 0xFFFF + 1
            return modbus_rtu.encode_mbap(self.tid, self.device_id, request)
        adu = self._adus.get(request)
        if adu is None:
            if len(self._adus) >= self.ADU_CACHE:
                self._adus.clear()
            adu = self._adus[request] = modbus_rtu.encode_adu(self.device_id, request)
        return adu

    def settled(self) -> bool:
        """Whether a request may be written now: when no abandoned request's answer is still due, and on a serial
        line t3.5 has passed since bytes that answered nothing. Else the board may drop the request or the one
        before it (a fire lost, or a make-safe): see __init__."""
        if not self._abandoned and not self._quiet_at:
            return True
        loop = self._loop
        if loop is None:
            return True  # send() says it is not open
        now = loop.time()
        if self._abandoned:
            if now < self._deadline:
                return False
            self._abandoned = False
        if now < self._quiet_at:
            return False
        self._quiet_at = 0.0
        return True

    async def settle(self) -> None:
        """Wait until settled(): for an abandoned request's answer (taken here, counted as a late reply) or its
        deadline, then for the line's silence. Bounded by the response timeout and t3.5."""
        loop = self._loop
        while loop is not None and not self.settled():
            if self._abandoned:
                waiter = self._waiter = loop.create_future()
                if self._timer is None:
                    self._timer = loop.call_at(self._deadline, self._deadline_passed)
                # the answer may be in rx already: it can come between a waiter's cancellation and answer() marking
                # the request abandoned; after that _readable takes it as it comes
                pdu = self._take(self._request, self._fresh) if self.rx else None
                try:
                    if pdu is None:
                        await waiter
                except (_Timeout, _Broken):
                    pass  # nothing more is due; a broken line is told by the next send
                else:
                    self.counters.late_replies += 1  # the answer came, to nobody
                finally:
                    self._waiter = None
                self._abandoned = False
            else:
                await asyncio.sleep(max(0.0, self._quiet_at - loop.time()))

    def abandon(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():  # still due (one that came, or timed out, is not)
            waiter.cancel()
            self._abandoned = True

    def send(self, request: bytes, fresh: Callable[[bytes], bool] | None) -> None:
        loop = self._loop
        if loop is None:
            raise _Broken("not open")
        if self._broken:
            raise _Broken(self._broken)
        if self.rx:
            self._stale_input()
        adu = self._frame(request)
        try:
            sent = os.write(self.fd, adu)  # far below a pipe's or socket's buffer: all of it, nearly always
        except BlockingIOError:
            sent = 0
        except OSError as e:
            raise _Broken(str(e)) from None
        self._unsent = adu[sent:]  # what a full buffer held back: answer() writes it
        # The rest overlaps the board's turn: the reader callback cannot run before the caller awaits.
        self.record("tx", adu)
        self._request, self._fresh = request, fresh
        self._waiter = loop.create_future()
        self._deadline = loop.time() + self.timeout_s
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._deadline_passed)

    async def answer(self) -> bytes:
        waiter = self._waiter
        assert waiter is not None, "answer() without send()"
        try:
            while self._unsent:
                await asyncio.sleep(0)
                try:
                    self._unsent = self._unsent[os.write(self.fd, self._unsent):]
                except BlockingIOError:
                    continue
                except OSError as e:
                    raise _Broken(str(e)) from None
                if self.rx and not waiter.done():  # what came in while a full buffer held the request back
                    pdu = self._take(self._request, self._fresh)
                    if pdu is not None:
                        return pdu
            return await waiter
        finally:
            self._waiter = None
            if not waiter.done() or waiter.cancelled():  # cancelled while it waited: the answer may still come
                self._abandoned = True


# --- the link ----------------------------------------------------------------------------------------------


class LauncherLink:
    """One launcher board as the host drives it; see the module docstring for the safety rules."""

    def __init__(self, transport: _Transport | None = None, *, device_id: int = 1, name: str = "launcher",
                 clock_ns: Callable[[], int] = time.monotonic_ns, recorder: Recorder | None = None,
                 lost_after: int = 3, backoff_s: tuple[float, float] = (0.1, 5.0), read_retries: int = 1) -> None:
        self.device_id, self.name = device_id, name
        self.clock_ns, self.recorder = clock_ns, recorder
        self.lost_after, self.read_retries = lost_after, read_retries
        self.backoff_min_ns, self.backoff_max_ns = int(backoff_s[0] * 1e9), int(backoff_s[1] * 1e9)
        self.clock_sync = ClockSync()
        self.counters = LinkCounters()
        self.transport = transport or _VirtualTransport(None, device_id, self._record, self.counters)
        self.transport.counters = self.counters
        self.status: LauncherStatus | None = None
        self.record: FireRecord | None = None  # the board's fire record, as the last reconciliation read it
        self.watchdog_ms = WATCHDOG_MS_DEFAULT
        self.connected = False
        self.lost = False
        self.unconfirmed_seq = 0  # a fire whose outcome is unknown: no fire until reconcile() settles it
        self.unconfirmed_track = 0
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
        """Modbus TCP at tcp://HOST:PORT, or Modbus RTU on a serial device path (/dev/..., rtu:PATH; 8N1 at baud):
        the launcher kinds of hil.drivers.transport's link URL grammar. Any other URL is one LinkError line."""
        address = parse_link_url(url, accept=LAUNCHER_LINK_KINDS, what=name)
        target: str | tuple[str, int]
        if address.kind == "tcp":
            kind, target = "modbus_tcp", (address.host, address.port)
        else:
            kind, target = "modbus_rtu", address.path
        link = cls(device_id=device_id, name=name, clock_ns=clock_ns, recorder=recorder, **kw)
        link.transport = _StreamTransport(kind, target, device_id, timeout_s, baud, link._record, link.counters)
        return link

    @classmethod
    def virtual(cls, model: Any, device_id: int = 1, name: str = "launcher",
                clock_ns: Callable[[], int] = time.monotonic_ns, recorder: Recorder | None = None,
                **kw: Any) -> LauncherLink:
        """In-process link to a LauncherModel (anything with handle_rtu), in real RTU bytes, for virtual time."""
        link = cls(device_id=device_id, name=name, clock_ns=clock_ns, recorder=recorder, **kw)
        link.transport = _VirtualTransport(model, device_id, link._record, link.counters)
        return link

    def __repr__(self) -> str:
        return f"LauncherLink({self.name!r}, {self.transport.kind}, {'lost' if self.lost else 'ok'})"

    def _record(self, direction: str, adu: bytes) -> None:
        if self.recorder is not None:
            self.recorder(self.name, direction, adu, self.clock_ns(), self.transport.kind)

    @property
    def watchdog_tripped(self) -> bool:
        """The board's latched WATCHDOG_TRIPPED bit, as the last status read showed it."""
        return self.status is not None and self.status.watchdog_tripped

    # --- exchanges --------------------------------------------------------------------------------------

    async def _exchange(self, request: bytes, fresh: Callable[[bytes], bool] | None = None) -> bytes:
        """One request: counted, timed, and turned into LinkError; timeouts in a row make the board LOST.

        Returns the answer PDU (it answers request); a Modbus exception raises LauncherModbusError."""
        if not self.transport.settled():
            await self.transport.settle()
        return await self._answer(request, self._send(request, fresh))

    def _send(self, request: bytes, fresh: Callable[[bytes], bool] | None = None) -> int:
        """_exchange's first half: the request written (counted); the host time just before (for the round trip)."""
        self.counters.requests += 1
        h0 = self.clock_ns()
        try:
            self.transport.send(request, fresh)
        except _Broken as e:
            self._mark_lost(str(e))
            raise LinkError(f"{self.name}: {e}") from None
        return h0

    async def _answer(self, request: bytes, h0: int) -> bytes:
        """_exchange's second half: the answer to the request _send wrote at h0."""
        try:
            pdu = await self.transport.answer()
        except _Broken as e:
            self._mark_lost(str(e))
            raise LinkError(f"{self.name}: {e}") from None
        except _Timeout:
            self.counters.timeouts += 1
            self._timeouts_in_a_row += 1
            if self._timeouts_in_a_row >= self.lost_after:
                self._mark_lost(f"{self._timeouts_in_a_row} timeouts in a row")
            raise _Timeout(f"{self.name}: no answer") from None
        self._timeouts_in_a_row = 0
        self.counters.add_round_trip(max(1, (self.clock_ns() - h0) // 1000))
        if pdu[0] & 0x80:
            self.counters.exceptions += 1
            answer = ModbusExceptionResponse(request[0], pdu[1])
            raise LauncherModbusError(f"{self.name}: {answer}", answer.code)
        return pdu

    async def _read(self, function_code: int, address: int, count: int,
                    fresh: Callable[[bytes], bool] | None = None) -> list[int]:
        """A read's registers (see _read_pdu)."""
        pdu = await self._read_pdu(function_code, address, count, fresh)
        return list(struct.unpack_from(f">{count}H", pdu, 2))

    async def _read_pdu(self, function_code: int, address: int, count: int,
                        fresh: Callable[[bytes], bool] | None = None) -> bytes:
        """A read's answer PDU, retried up to read_retries times after a timeout (a read changes nothing on the
        board)."""
        request = modbus_rtu.read_request(function_code, address, count)
        for attempt in range(self.read_retries + 1):
            try:
                return await self._exchange(request, fresh)
            except _Timeout:
                if attempt == self.read_retries or self.lost:
                    raise
                self.counters.read_retries += 1
        raise AssertionError("unreachable")

    async def _write(self, address: int, values: Sequence[int]) -> None:
        """One write, never retried: FC 6 for one register, FC 16 for more."""
        if len(values) == 1:
            await self._exchange(modbus_rtu.write_single_request(address, values[0]))
        else:
            await self._exchange(modbus_rtu.write_multiple_request(address, values))

    def _mark_lost(self, why: str) -> None:
        if not self.lost:
            log.warning("%s: LOST (%s): no commands until it reconnects", self.name, why)
            self.counters.lost_events += 1
        self.lost = True
        self._next_reconnect_ns = self.clock_ns() + self._backoff_ns

    async def _usable(self) -> None:
        """Raise unless the link may talk to the board now; a LOST board gets a reconnect when backoff allows.

        Callers skip it when the link is connected and not lost (then it does nothing)."""
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
        self.lost = False  # for the one read; the caller marks it lost again if this fails
        try:
            await self._read_status()
        finally:
            self.lost = True

    def _fresh(self, h0: int) -> Callable[[bytes], bool]:
        """Whether a status answer was sampled after its request could have been sent (see BOARD_RATE_MIN).

        Only a board clock that ran backwards (a restart) or advanced with the host's passes."""
        previous = self.status
        if previous is None:
            return lambda pdu: True
        floor_us = BOARD_RATE_MIN * (h0 - previous.host_ns) / 1000 - STALE_SLACK_US

        def fresh(pdu: bytes) -> bool:
            advance = int.from_bytes(pdu[_TIME_AT:_TIME_AT + 8], "big") - previous.board_time_us
            if advance < 0 or advance >= floor_us:
                return True
            self.counters.stale_statuses += 1
            return False

        return fresh

    async def _read_status(self, count: int = STATUS_REGS) -> LauncherStatus:
        """Input 0..count-1 (a status, or with RECORD_REGS the fire record too); the link's status from it."""
        h0 = self.clock_ns()
        pdu = await self._read_pdu(FunctionCode.READ_INPUT, 0, count, self._fresh(h0))
        h1 = self.clock_ns()
        try:
            status = LauncherStatus.from_pdu(pdu, h1)
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
        if status.watchdog_tripped and (previous is None or not previous.watchdog_tripped):
            log.warning("%s: the board's watchdog tripped: SAFE until re-armed", self.name)
            self.counters.watchdog_trips_seen += 1
        self.clock_sync.add_sample(h0, status.board_time_us, status.board_time_us, h1)
        self.status = status
        if count >= RECORD_REGS:
            self.record = FireRecord.from_registers(struct.unpack_from(f">{count}H", pdu, 2))
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
            holding = await self._read(FunctionCode.READ_HOLDING, 0, HOLDING_COUNT)
            self.watchdog_ms = holding[Holding.WATCHDOG_MS]
            self._heartbeat = holding[Holding.HEARTBEAT]
            status = await self._read_status(RECORD_REGS)
            self._seq = status.last_fire_seq  # carry on numbering from what the board last accepted
            return status

    def close(self) -> None:
        self.connected = False
        self.transport.close()

    async def identify(self) -> Identity:
        async with self._lock:
            await self._usable()
            regs = await self._read(FunctionCode.READ_INPUT, Input.FW_NAME, FW_NAME_REGS + BUILD_ID_REGS)
            head = await self._read(FunctionCode.READ_INPUT, 0, 3)
        if head[Input.IDENT_MAGIC] != IDENT_MAGIC:
            raise LinkError(f"{self.name}: not a hil launcher (magic {head[0]:#06x})")
        version = f"{head[Input.FW_VERSION] >> 8}.{head[Input.FW_VERSION] & 0xFF}"
        return Identity(unpack_ascii(regs[:FW_NAME_REGS]), version, unpack_ascii(regs[FW_NAME_REGS:]))

    async def read_status(self) -> LauncherStatus:
        async with self._lock:
            if self.lost or not self.connected:
                await self._usable()
            return await self._read_status()

    async def heartbeat(self) -> None:
        """Feed the board's watchdog (a counter: a recording shows each one, and a late echo never passes for
        the next one's)."""
        async with self._lock:
            await self._usable()
            self._heartbeat = (self._heartbeat + 1) & 0xFFFF
            await self._write(Holding.HEARTBEAT, [self._heartbeat])

    async def arm(self) -> LauncherStatus:
        async with self._lock:
            await self._usable()
            await self._write(Holding.ARM_KEY, [ARM_KEY])
            status = await self._read_status()
        if not status.armed:
            raise LinkError(f"{self.name}: did not arm (state {status.state.name}, last reject "
                            f"{status.reject_name})")
        return status

    async def make_safe(self) -> LauncherStatus:
        async with self._lock:
            await self._usable()
            await self._write(Holding.ARM_KEY, [0])
            return await self._read_status()

    async def configure(self, watchdog_ms: int, reload_ms: int, rounds: int) -> LauncherStatus:
        """Set the watchdog, reload time and rounds (rounds only take in SAFE: LinkError otherwise)."""
        for reg, value in ((Holding.WATCHDOG_MS, watchdog_ms), (Holding.RELOAD_MS, reload_ms),
                           (Holding.ROUNDS_LOADED, rounds)):
            if not in_limits(reg, value):
                raise ValueError(f"{self.name}: {reg.name} = {value} is outside its range")
        async with self._lock:
            await self._usable()
            await self._write(Holding.WATCHDOG_MS, [watchdog_ms])
            self.watchdog_ms = watchdog_ms
            await self._write(Holding.RELOAD_MS, [reload_ms, rounds])
            status = await self._read_status()
        if status.rounds != rounds:
            raise LinkError(f"{self.name}: rounds not loaded ({status.reject_name}): the launcher must be SAFE")
        return status

    def fire_refusal(self, now_ns: int | None = None) -> Refusal | None:
        """Why a fire may not be sent now, or None (the link's own check, after the fire-control kernel's)."""
        now = self.clock_ns() if now_ns is None else now_ns
        s = self.status
        if not self.connected:
            return Refusal.NOT_CONNECTED
        if self.lost:
            return Refusal.LOST
        if self.unconfirmed_seq:
            return Refusal.UNRECONCILED
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

    @staticmethod
    def _seq_after(last: int, avoid: int) -> int:
        """The fire sequence number after last (1..65535: 0 is never a fire), never avoid (the board's last)."""
        seq = last % SEQ_MAX + 1
        if seq == avoid:
            seq = seq % SEQ_MAX + 1
        return seq

    async def fire(self, track_id: int, azimuth_rad: float, elevation_rad: float, range_m: float = 0.0,
                   tgo_s: float = 0.0) -> FireResult:
        """Command one launch for track_id at the aim given: azimuth clockwise from north and elevation (rad),
        slant range to the intercept point (m, 0..65535) and time to go (s, 0..655.35).

        Never raises for link trouble: the result says whether the board launched, was refused and why, or
        whether the outcome is unknown (`unconfirmed`: reconcile() settles it; until then no further fire).
        The track number goes on the wire modulo 65536.
        """
        async with self._lock:
            if not self.transport.settled():
                await self.transport.settle()
            return await self._fire_outcome(self._send_fire(track_id, azimuth_rad, elevation_rad, range_m, tgo_s))

    def fire_now(self, track_id: int, azimuth_rad: float, elevation_rad: float, range_m: float = 0.0,
                 tgo_s: float = 0.0) -> asyncio.Task[FireResult] | None:
        """fire(), its command written before this returns when no exchange holds the link: the caller's decision
        and the write in one call, with no pass of the event loop between them (one costs tens of µs of the fire
        path). The task returned gives the result (the answer, the read-back: as fire()'s); None, with nothing
        sent, when an exchange holds the link (a status read under way): then call fire(), which waits for it."""
        if not _take_free_lock(self._lock):
            return None
        if not self.transport.settled():  # a serial line still owes an answer, or is not yet silent
            self._lock.release()
            return None
        try:
            sent = self._send_fire(track_id, azimuth_rad, elevation_rad, range_m, tgo_s)
        except BaseException:
            self._lock.release()
            raise
        task = asyncio.ensure_future(self._fire_outcome(sent))
        task.add_done_callback(functools.partial(self._fire_now_ended, sent))
        return task

    def _fire_now_ended(self, sent: FireResult | _SentFire, task: asyncio.Task[FireResult]) -> None:
        """However fire_now's task ended, the link is free again; cancelled before its coroutine ever ran, a fire it
        wrote is unconfirmed (its answer was never taken), as one cancelled while it waited is (_fire_outcome)."""
        if task.cancelled() and isinstance(sent, _SentFire) and self.unconfirmed_seq != sent.seq:
            self._unconfirmed(sent.seq, sent.track_id, sent.written_ns, 0)
            self.transport.abandon()  # its answer may still come: the next request waits for it
        self._lock.release()

    def _send_fire(self, track_id: int, azimuth_rad: float, elevation_rad: float, range_m: float,
                   tgo_s: float) -> FireResult | _SentFire:
        """fire()'s checks and its write, under the link's lock: a refusal (nothing sent), or what was sent."""
        refusal = self.fire_refusal()
        if refusal is not None:
            return self._refuse(refusal)
        assert self.status is not None
        seq = self._seq_after(self._seq, self.status.last_fire_seq)
        # the aim's registers, the block and its request in one compiled call (hil.ext.fire_command)
        request = fire_request(track_id, azimuth_rad, elevation_rad, range_m, tgo_s, seq, FIRE_BLOCK,
                               FIRE_EL_MIN_CDEG, FIRE_EL_MAX_CDEG, RANGE_M_MAX)
        if request is None:
            return self._refuse(Refusal.BAD_AIM)
        self._seq = seq
        written_ns = self.clock_ns()
        try:
            h0 = self._send(request)  # never retried: a lost answer is settled by reading back
        except LinkError:
            return self._unconfirmed(seq, track_id, written_ns, 0)
        return _SentFire(seq, track_id, written_ns, h0, request)

    async def _fire_outcome(self, sent: FireResult | _SentFire) -> FireResult:
        """What became of a fire _send_fire wrote: its answer, then the read-back that alone says if it launched."""
        if isinstance(sent, FireResult):
            return sent
        seq, track_id, written_ns, h0, request = sent
        exception: LauncherModbusError | None = None
        round_trip_ns = 0
        try:
            try:
                await self._answer(request, h0)
            except LauncherModbusError as e:
                # the board's refusal, or its acceptance corrupted on the way into what reads as one (Modbus TCP
                # carries no checksum): only the read-back below tells them apart
                exception = e
            except LinkError:
                return self._unconfirmed(seq, track_id, written_ns, 0)
            round_trip_ns = self.clock_ns() - written_ns
            # Only LAST_FIRE_SEQ says whether it launched, whatever became of the write's answer.
            try:
                status = await self._read_status(RECORD_REGS)
            except LinkError:
                return self._unconfirmed(seq, track_id, written_ns, round_trip_ns)
        except asyncio.CancelledError:
            # sent, and no longer waited for (the run ends): the round may be in flight; only a read-back settles it
            self._unconfirmed(seq, track_id, written_ns, round_trip_ns)
            raise
        if status.last_fire_seq == seq:
            self.counters.launches += 1
            if exception is not None:
                log.warning("%s: fire seq %d answered with exception %02d, yet the board launched it",
                            self.name, seq, exception.code)
            log.info("%s: launched seq %d for track %d at board %d us", self.name, seq, track_id,
                     status.last_launch_board_us)
            return FireResult(True, seq, "", status.last_launch_board_us, written_ns, round_trip_ns, True, status)
        if exception is not None:
            return self._refuse(f"{Refusal.EXCEPTION}_{exception.code:02d}", seq, written_ns=written_ns,
                                round_trip_ns=round_trip_ns, sent=True, status=status)
        return self._refuse(status.reject_name, seq, written_ns=written_ns, round_trip_ns=round_trip_ns,
                            sent=True, status=status)

    def _unconfirmed(self, seq: int, track_id: int, written_ns: int, round_trip_ns: int) -> FireResult:
        self.unconfirmed_seq, self.unconfirmed_track = seq, track_id
        self.counters.unconfirmed += 1
        log.warning("%s: fire seq %d for track %d unconfirmed: no fire until reconciled", self.name, seq, track_id)
        return self._refuse(Refusal.UNCONFIRMED, seq, written_ns=written_ns, round_trip_ns=round_trip_ns,
                            sent=True, unconfirmed=True)

    async def reconcile(self) -> Reconciliation:
        """Read the board's launch record (LAST_FIRE_SEQ, LAUNCH_COUNT, LAST_LAUNCH_T_US, LAST_CMD_SEQ) and
        settle the unconfirmed fire, if any: it launched exactly when LAST_FIRE_SEQ is its seq (the link never
        sends another fire meanwhile, and never reuses the board's last seq). LinkError if the board cannot be
        read (still unreconciled: call again)."""
        async with self._lock:
            await self._usable()
            before = self.status
            status = await self._read_status(RECORD_REGS)
            assert self.record is not None
            seq = self.unconfirmed_seq
            restarted = before is not None and status.board_time_us < before.board_time_us
            launched = bool(seq) and status.last_fire_seq == seq
            if seq:
                if launched:
                    self.counters.launches += 1
                    self.counters.reconciled_launched += 1
                else:
                    self.counters.reconciled_not_launched += 1
                log.warning("%s: unconfirmed fire seq %d for track %d %s%s", self.name, seq, self.unconfirmed_track,
                            "LAUNCHED" if launched else "did not launch",
                            " (the board restarted meanwhile: its record is gone)" if restarted else "")
                self.unconfirmed_seq = self.unconfirmed_track = 0
            return Reconciliation(seq, launched, status.last_launch_board_us if launched else 0, restarted, status,
                                  self.record)

    async def read_record(self) -> FireRecord:
        """The board's fire record and counters (input 24..30), with a status."""
        async with self._lock:
            await self._usable()
            await self._read_status(RECORD_REGS)
        assert self.record is not None
        return self.record

    def summary(self) -> dict[str, Any]:
        board = None if self.record is None else {"bad_check_count": self.record.bad_check_count,
                                                  "watchdog_trips": self.record.watchdog_trips}
        return {"name": self.name, "transport": self.transport.kind, "lost": self.lost,
                "unconfirmed_seq": self.unconfirmed_seq, **self.counters.summary(), "board": board,
                "clock_sync": self.clock_sync.summary()}
