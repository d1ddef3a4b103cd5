"""The libmodbus baseline for the launcher link's round trips, and where LauncherLink's extra time goes.

hil/native/modbus_rtt.c is a small libmodbus client (and, with --serve, a bare libmodbus server); it is
compiled with gcc on first use into a cache folder (~/.cache/hil). `measure_round_trips()` starts one
launcher emulator (for RTU behind one null-modem pty pair) and times, on that same cable and emulator
process:

- the status read, FC4 of input registers 0..23: libmodbus vs `LauncherLink.read_status()`;
- the command write, FC16 of the fire block 3..9 (register map 2): libmodbus writes the block back as it
  read it, with FIRE_SEQ 0 and a good check word, which the board takes as a fire command and refuses
  (ZERO_SEQ): never a launch, in any state. LauncherLink's figure is the write round trip of a real
  `fire()`, the same seven registers with a sequence number; the board launches (the emulator is armed with
  reload 0 and 65535 rounds: it is software), so the link's write also pays the board's launch (its launch
  event line on stdout), which the refused write does not.

The machine is shared and noisy, so the clients take turns in short blocks (the first exchange of each
block, a cold one, is dropped) and a noisy spell hits them alike. Ratios are LauncherLink's median over
libmodbus'; the goal is within 1.5x. With `breakdown=True` the same blocks also climb
a ladder of clients, each adding one layer, so the steps between medians say where the time goes: a libmodbus
server on its own cable of the same kind (the transport floor), libmodbus against the emulator, raw
frames from Python with blocking syscalls, raw frames through asyncio, the pymodbus async client (its
trace hooks timestamped; LauncherLink used it until its own transaction loop replaced it), the same with
LauncherLink's clock-sync update run (untimed) before each exchange, and LauncherLink (its transport's
exchange and its clock-sync update timed).

The board side (emulator, cable) gets a CPU of its own when there are two or more, as a board is its own
hardware (see measure_round_trips; `--shared-cpus` measures without).

`python -m hil.measure.modbus_baseline [--transport rtu|tcp|both] [-n 500] [--breakdown] [--shared-cpus]` prints the
JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import itertools
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import termios
import time
import tty
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.drivers import modbus_rtu
from hil.drivers.histograms import record_many
from hil.drivers.launcher_link import LAUNCHER_LINK_KINDS, LauncherLink
from hil.drivers.registers import (
    FIRE_BLOCK,
    IDENT_MAGIC,
    STATUS_REGS,
    U64_REGS,
    FunctionCode,
    Input,
    c_defines,
    fire_block,
    unpack_u64,
)
from hil.drivers.timesync import ClockSync
from hil.drivers.transport import parse_link_url
from hil.emulators.launcher import LaunchEvents
from hil.errors import HilError, LinkError
from hil.measure.latency import histogram_summary, new_histogram
from hil.measure.realtime import split_cpus
from hil.procutil import Child

SOURCE = Path(__file__).resolve().parents[1] / "native" / "modbus_rtt.c"
HEADER = Path("/usr/include/modbus/modbus.h")
PACKAGE = "libmodbus-dev"
CFLAGS = ("-O2", "-Wall", "-Wextra")
# the register map modbus_rtt.c is built with (-D options from registers.c_defines(): no second copy in C)
C_DEFINES = ("HIL_IDENT_MAGIC", "HIL_REGMAP_VERSION", "HIL_HR_COUNT", "HIL_IR_COUNT", "HIL_IR_STATUS_REGS",
             "HIL_FIRE_BLOCK", "HIL_FIRE_BLOCK_REGS", "HIL_HR_FIRE_SEQ", "HIL_HR_FIRE_CHECK", "HIL_IR_IDENT_MAGIC",
             "HIL_IR_REGMAP_VERSION")
GOAL_RATIO = 1.5
# The write every client but LauncherLink times: the fire block 3..9 with a good check but FIRE_SEQ 0, which
# the board takes as a fire command and refuses (ZERO_SEQ): the shape and path of a fire, never a launch.
NO_FIRE_BLOCK = fire_block(0, 0, 0, 0, 0, 0)
EMULATOR_ARGS = ["--reload-ms", "0", "--rounds", "65535", "--watchdog-ms", "10000"]
HEARTBEAT_EVERY = 50  # exchanges between heartbeats: far inside the 10 s watchdog at any speed seen here
TIMEOUT_S = 1.0
MBAP_BYTES = 7


class BaselineUnavailable(HilError):
    """The C baseline cannot be built here (no gcc or no libmodbus-dev)."""


# --- the C client ------------------------------------------------------------------------------------------


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hil"


def build_client(cache_dir: Path | None = None) -> Path:
    """Compile modbus_rtt.c (once per source version) and return the executable's path."""
    source = SOURCE.read_bytes()
    defines = c_defines()
    flags = [*CFLAGS, *(f"-D{name}={defines[name]}" for name in C_DEFINES)]
    key = hashlib.sha256(source + " ".join(flags).encode()).hexdigest()[:16]
    folder = cache_dir or _cache_dir()
    exe = folder / f"modbus_rtt-{key}"
    if exe.exists():
        return exe
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BaselineUnavailable("gcc not found: apt-get install gcc " + PACKAGE)
    if not HEADER.exists():
        raise BaselineUnavailable(f"{HEADER} not found: apt-get install {PACKAGE}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable home (a CI user, a container): a per-user temporary folder will do
        folder = Path(tempfile.gettempdir()) / f"hil-{os.getuid()}"
        folder.mkdir(parents=True, exist_ok=True)
        exe = folder / exe.name
        if exe.exists():
            return exe
    # build beside the target and rename: two test processes building at once never see half a file
    fd, tmp = tempfile.mkstemp(prefix="modbus_rtt-", dir=folder)
    os.close(fd)
    try:
        result = subprocess.run([gcc, *flags, "-o", tmp, str(SOURCE), "-lmodbus"], capture_output=True,
                                text=True, timeout=120)
        if result.returncode != 0:
            raise BaselineUnavailable(f"gcc could not build {SOURCE.name} against libmodbus ({PACKAGE}): "
                                      f"{result.stderr.strip()[-1500:]}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, exe)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return exe


def _target_args(target: str) -> list[str]:
    """modbus_rtt's arguments for a launcher link's URL (tcp://HOST:PORT, or a serial path: /dev/..., rtu:PATH)."""
    address = parse_link_url(target, accept=LAUNCHER_LINK_KINDS)
    if address.kind == "tcp":
        return ["--tcp", str(address).removeprefix("tcp://")]
    return ["--rtu", address.path]


@dataclass(frozen=True)
class ClientRun:
    """What one modbus_rtt run saw: the last status read, the values it wrote, and every round trip."""

    library: str
    status_regs: list[int]
    write_values: list[int]
    status_ns: list[int]
    write_ns: list[int]


def run_client(target: str, n: int = 500, ops: Sequence[str] = ("status", "write"), device_id: int = 1,
               baud: int = 115200, exe: Path | None = None, timeout_s: float = 60.0) -> ClientRun:
    """Run the libmodbus client against a launcher at target (see _target_args) for n exchanges of each op."""
    if n < 1 or not ops or not set(ops) <= {"status", "write"}:
        raise ValueError(f"n >= 1 and ops from status, write: got n={n}, ops={ops}")
    argv = [str(exe or build_client()), *_target_args(target), "--id", str(device_id), "--baud", str(baud),
            "-n", str(n), "--ops", ",".join(ops), "--timeout-ms", str(int(TIMEOUT_S * 1000))]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise LinkError(f"modbus_rtt against {target} did not finish in {timeout_s} s") from None
    if result.returncode != 0:
        raise LinkError(f"modbus_rtt against {target} failed ({result.returncode}): {result.stderr.strip()}")
    out = json.loads(result.stdout)
    return ClientRun(out["library"], out["status_regs"], out["write_values"], out["status_ns"], out["write_ns"])


def summarize(samples_ns: Sequence[int]) -> dict[str, Any]:
    """count, p50, p90, p99, p99_9, max in µs, as every other latency figure of hil bench."""
    hist = new_histogram()
    record_many(hist, samples_ns)
    return histogram_summary(hist)


# --- a bench: one emulator (and cable) for the whole run ---------------------------------------------------


@dataclass
class _Bench:
    transport: str
    target: str  # LauncherLink URL of the emulator
    children: list[Child] = field(default_factory=list)
    events: LaunchEvents | None = None  # the launcher emulator's launch lines
    launches: int = 0  # launch lines read so far

    def drain(self) -> None:
        """Read the launch lines the board printed: a pipe nobody reads fills after a few hundred launches, and
        then every launch costs the board more than the one before (it keeps them, then logs each it drops)."""
        if self.events is not None:
            self.launches += len(self.events.poll())

    def close(self) -> None:
        for child in reversed(self.children):
            child.stop()


def _start(transport: str, emulator: list[str] | None = None) -> _Bench:
    """A launcher emulator (default) or a bare libmodbus server (emulator = its argv), RTU over a fresh
    null-modem pty pair or TCP on loopback."""
    children: list[Child] = []
    try:
        if transport == "rtu":
            cable = Child.python("hil.plant.nullmodem", [], name="cable")
            children.append(cable)
            where, target = ["--rtu", cable.info["a"]], cable.info["b"]
        elif transport == "tcp":
            where, target = ["--tcp", "127.0.0.1:0"], ""
        else:
            raise ValueError(f"transport is rtu or tcp, not {transport!r}")
        if emulator is None:
            board = Child.python("hil.emulators.launcher", [*where, *EMULATOR_ARGS], name="launcher")
        else:
            board = Child([*emulator, *where], name="libmodbus server")
        children.append(board)
        if transport == "tcp":
            target = "tcp://" + board.info["tcp"]
        events = LaunchEvents(board.proc.stdout.fileno()) if emulator is None and board.proc.stdout else None
        return _Bench(transport, target, children, events)
    except BaseException:
        for child in reversed(children):
            child.stop()
        raise


# --- the rungs: each times k exchanges of each op, alternating status and write as a host loop does ---------

Samples = dict[str, list[int]]  # op -> round trips, ns
OPS = ("status", "write")
# each op's request PDU and its answer's PDU length: FC4 of 0..23; FC16 of the fire block 3..9 with FIRE_SEQ 0
REQUESTS = {
    "status": (modbus_rtu.read_request(FunctionCode.READ_INPUT, 0, STATUS_REGS), 2 + 2 * STATUS_REGS),
    "write": (modbus_rtu.write_multiple_request(FIRE_BLOCK, NO_FIRE_BLOCK), 5),
}


def _libmodbus(target: str, k: int, exe: Path) -> Samples:
    run = run_client(target, k + 1, exe=exe)
    if run.status_regs[Input.IDENT_MAGIC] != IDENT_MAGIC:
        raise LinkError(f"{target} is not a hil launcher: {run.status_regs[:2]}")
    return {"status": run.status_ns[1:], "write": run.write_ns[1:]}  # the first is a cold one: dropped


class _RawPort:
    """Prebuilt Modbus frames over a raw fd (pty or TCP socket): the least a Python client can do."""

    def __init__(self, target: str, device_id: int = 1) -> None:
        self.device_id, self.tid = device_id, 0
        self.sock: socket.socket | None = None
        address = parse_link_url(target, accept=LAUNCHER_LINK_KINDS)
        if address.kind == "tcp":
            self.sock = socket.create_connection((address.host, address.port), timeout=TIMEOUT_S)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as libmodbus and asyncio do
            self.fd = self.sock.fileno()
            self.framing = "tcp"
        else:
            self.fd = os.open(address.path, os.O_RDWR | os.O_NOCTTY)
            tty.setraw(self.fd)
            termios.tcflush(self.fd, termios.TCIOFLUSH)  # stale bytes of a fresh pty
            self.framing = "rtu"
        os.set_blocking(self.fd, False)

    def frame(self, pdu: bytes) -> bytes:
        if self.framing == "rtu":
            return modbus_rtu.encode_adu(self.device_id, pdu)
        self.tid = self.tid % 0xFFFF + 1
        header = self.tid.to_bytes(2, "big") + b"\0\0" + (len(pdu) + 1).to_bytes(2, "big")
        return header + bytes([self.device_id]) + pdu

    def answer_length(self, pdu_length: int) -> int:
        return pdu_length + (3 if self.framing == "rtu" else MBAP_BYTES)

    def check(self, answer: bytes, pdu: bytes) -> None:
        """The answer answers this request (CRC or transaction id, function code, IDENT_MAGIC)."""
        if self.framing == "rtu":
            _, rpdu = modbus_rtu.decode_adu(answer)
        else:
            if int.from_bytes(answer[:2], "big") != self.tid:
                raise LinkError(f"answer to transaction {int.from_bytes(answer[:2], 'big')}, sent {self.tid}")
            rpdu = answer[MBAP_BYTES:]
        if rpdu[0] != pdu[0]:
            raise LinkError(f"answer {rpdu.hex()} to function {pdu[0]}")
        if pdu[0] == FunctionCode.READ_INPUT and int.from_bytes(rpdu[2:4], "big") != IDENT_MAGIC:
            raise LinkError(f"not a hil launcher: {rpdu[:6].hex()}")

    def exchange_blocking(self, request: bytes, length: int) -> bytes:
        os.write(self.fd, request)
        answer = b""
        while len(answer) < length:
            if not select.select([self.fd], [], [], TIMEOUT_S)[0]:
                raise LinkError(f"no answer within {TIMEOUT_S} s")
            chunk = os.read(self.fd, 4096)
            if not chunk:
                raise LinkError("connection closed")
            answer += chunk
        return answer

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        else:
            os.close(self.fd)


def _python_blocking(target: str, k: int) -> Samples:
    port = _RawPort(target)
    out: Samples = {op: [] for op in OPS}
    try:
        for _ in range(k + 1):
            for op, (pdu, answer_pdu) in REQUESTS.items():
                request, length = port.frame(pdu), port.answer_length(answer_pdu)
                t0 = time.monotonic_ns()
                answer = port.exchange_blocking(request, length)
                out[op].append(time.monotonic_ns() - t0)
                port.check(answer, pdu)
    finally:
        port.close()
    return {op: v[1:] for op, v in out.items()}


async def _python_asyncio(target: str, k: int) -> Samples:
    """Raw frames from a coroutine: os.write at once, the answer gathered by a reader callback."""
    loop = asyncio.get_running_loop()
    port = _RawPort(target)
    out: Samples = {op: [] for op in OPS}
    buf = bytearray()
    want = 0
    fut: asyncio.Future[bytes] | None = None

    def readable() -> None:
        chunk = os.read(port.fd, 4096)
        buf.extend(chunk)
        if fut is not None and not fut.done() and (len(buf) >= want or not chunk):
            fut.set_result(bytes(buf))

    loop.add_reader(port.fd, readable)
    try:
        for _ in range(k + 1):
            for op, (pdu, answer_pdu) in REQUESTS.items():
                request = port.frame(pdu)
                t0 = time.monotonic_ns()
                buf.clear()
                want, fut = port.answer_length(answer_pdu), loop.create_future()
                os.write(port.fd, request)
                answer = await asyncio.wait_for(fut, TIMEOUT_S)
                out[op].append(time.monotonic_ns() - t0)
                port.check(answer, pdu)
    finally:
        loop.remove_reader(port.fd)
        port.close()
    return {op: v[1:] for op, v in out.items()}


PYMODBUS_PARTS = ("build_request", "send_to_answer", "decode_answer", "resume_caller")


async def _pymodbus_client(target: str, k: int, inside: dict[str, Samples], clock_sync: bool = False) -> Samples:
    """The pymodbus async client as LauncherLink configures it, its own trace hooks timestamped.

    With clock_sync, a ClockSync is fed the last status read (as LauncherLink does after each one)
    before every exchange, outside the timed part: what that does to the exchange that follows it.

    Per exchange, into inside[op]: build_request (call -> frame handed to the transport), send_to_answer
    (-> the last answer fragment is received: the deferred write, wire, server, wire), decode_answer
    (-> the answer PDU is decoded), resume_caller (-> the awaiting call resumes), and "fragments" (reads
    an answer took).
    """
    from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
    from pymodbus.framer import FramerType

    tx = pdu_at = 0
    rx: list[int] = []

    def trace_packet(sending: bool, data: bytes) -> bytes:
        nonlocal tx
        if sending:
            tx = time.monotonic_ns()
        else:
            rx.append(time.monotonic_ns())
        return data

    def trace_pdu(sending: bool, pdu: Any) -> Any:
        nonlocal pdu_at
        if not sending:
            pdu_at = time.monotonic_ns()
        return pdu

    common: dict[str, Any] = {"timeout": TIMEOUT_S, "retries": 0, "reconnect_delay": 0,
                              "trace_packet": trace_packet, "trace_pdu": trace_pdu}
    client: Any
    address = parse_link_url(target, accept=LAUNCHER_LINK_KINDS)
    if address.kind == "tcp":
        client = AsyncModbusTcpClient(address.host, port=address.port, **common)
    else:
        client = AsyncModbusSerialClient(address.path, framer=FramerType.RTU, baudrate=115200,
                                         bytesize=8, parity="N", stopbits=1, **common)
    if not await client.connect():
        raise LinkError(f"pymodbus cannot open {target}")
    calls = {
        "status": lambda: client.read_input_registers(0, count=STATUS_REGS, device_id=1),
        "write": lambda: client.write_registers(FIRE_BLOCK, NO_FIRE_BLOCK, device_id=1),
    }
    out: Samples = {op: [] for op in OPS}
    sync = ClockSync()
    sample: tuple[int, int, int] | None = None  # host send, board time, host receive of the last status read
    try:
        for i in range(k + 1):
            for op, call in calls.items():
                if clock_sync and sample is not None:
                    sync.add_sample(sample[0], sample[1], sample[1], sample[2])
                rx.clear()
                t0 = time.monotonic_ns()
                response = await call()
                t1 = time.monotonic_ns()
                if response.isError():
                    raise LinkError(f"pymodbus {op}: {response}")
                if op == "status":
                    regs = response.registers
                    if regs[Input.IDENT_MAGIC] != IDENT_MAGIC:
                        raise LinkError(f"not a hil launcher: {regs[:2]}")
                    board_us = unpack_u64(regs[Input.BOARD_TIME_US:Input.BOARD_TIME_US + U64_REGS])
                    sample = (t0, board_us, t1)
                if i == 0:
                    continue
                out[op].append(t1 - t0)
                parts = (tx - t0, rx[-1] - tx, pdu_at - rx[-1], t1 - pdu_at)
                for name, value in zip(PYMODBUS_PARTS, parts, strict=True):
                    inside[op].setdefault(name, []).append(value)
                inside[op].setdefault("fragments", []).append(len(rx))
    finally:
        client.close()
    return out


Calls = list[tuple[str, str, int]]  # (part, method, ns) in the order the calls ended


def _time_method(obj: Any, name: str, part: str, calls: Calls) -> None:
    """Wrap obj.name on this one instance so that each call is logged with its duration (an awaitable it
    returns is timed until it completes)."""
    original = getattr(obj, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.monotonic_ns()
        result = original(*args, **kwargs)
        if not inspect.isawaitable(result):
            calls.append((part, name, time.monotonic_ns() - t0))
            return result

        async def finish() -> Any:
            try:
                return await result
            finally:
                calls.append((part, name, time.monotonic_ns() - t0))
        return finish()

    setattr(obj, name, timed)


LINK_PARTS = ("transport_call", "clock_sync")


def _parts(calls: Calls, total_ns: int) -> dict[str, int]:
    """transport_call: the transaction loop's exchange (frame, write, wait, hunt and check the answer)."""
    parts = {p: sum(ns for part, _, ns in calls if part == p) for p in LINK_PARTS}
    parts["rest"] = total_ns - parts["transport_call"] - parts["clock_sync"]
    return parts


async def _launcher_link(target: str, k: int, inside: dict[str, Samples] | None) -> Samples:
    """LauncherLink as the host drives it: timed status reads alternating with fires (their write round trip).

    With inside given, parts of the link are timed too, by wrapping them on this one link: its transport's
    exchange (transport_call) and the clock-sync update of a status read; rest is the link's own code around
    them (lock, checks, status decoding, counters).
    """
    link = LauncherLink.from_url(target, name="baseline", timeout_s=TIMEOUT_S)
    calls: Calls = []
    if inside is not None:
        # an exchange is the transport's send (frame, write) and answer (wait, hunt and check): both are its call
        _time_method(link.transport, "send", "transport_call", calls)
        _time_method(link.transport, "answer", "transport_call", calls)
        _time_method(link.clock_sync, "add_sample", "clock_sync", calls)
    out: Samples = {op: [] for op in OPS}
    try:
        await link.connect()
        await link.arm()  # arm() raises unless the board armed
        for i in range(k + 1):
            if i % HEARTBEAT_EVERY == 0:  # the board's watchdog, outside the timed part
                await link.heartbeat()
            calls.clear()
            t0 = time.monotonic_ns()
            await link.read_status()
            total = time.monotonic_ns() - t0
            status_calls = list(calls)
            calls.clear()
            result = await link.fire(1, 0.5, 0.1, 5000.0, 10.0)
            if not result.accepted:
                raise LinkError(f"fire not accepted: {result.reason}")
            if i == 0:
                continue
            out["status"].append(total)
            out["write"].append(result.round_trip_ns)
            if inside is not None:
                # the fire's write is its first exchange (a send, an answer); what follows belongs to its readback
                for op, op_calls, op_total in (("status", status_calls, total),
                                               ("write", calls[:2], result.round_trip_ns)):
                    for part, ns in _parts(op_calls, op_total).items():
                        inside[op].setdefault(part, []).append(ns)
    finally:
        link.close()
    return out


# --- the run -------------------------------------------------------------------------------------------------


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of process pid onto cpus."""
    try:
        threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        threads = [pid]
    for tid in threads:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(tid, cpus)


def measure_round_trips(transport: str = "rtu", n: int = 500, *, blocks: int = 10,
                        breakdown: bool = False, split: bool = True) -> dict[str, Any]:
    """libmodbus vs LauncherLink (its own transaction loop) on one cable and one emulator; see the module docstring.

    n exchanges of each op per client, in `blocks` alternating blocks. With split (and two CPUs or more) the
    board side (emulator, cable, bare server) runs on one CPU and every client on the others, as a board is
    its own hardware: on one shared CPU Linux tends to run a client and the board it just woke in turns, and
    a client then also waits for the board's own work after its reply (its loop, its launch line), which
    costs the Python clients more than the C one (libmodbus' figure is the same either way). Returns
    {"transport", "n", "libmodbus", "pymodbus", "loadavg", "cpus", "status": {"libmodbus", "launcher_link",
    "ratio"}, "write": {...}, "goal_ratio", "within_goal", "board_launches"} and, with breakdown, "breakdown"
    (see _breakdown); figures in µs; cpus is {"board", "clients"} or None (shared).
    """
    import pymodbus

    if transport not in ("rtu", "tcp"):
        raise ValueError(f"transport is rtu or tcp, not {transport!r}")
    if blocks < 1 or n < blocks:
        raise ValueError(f"need n >= blocks >= 1 (n={n}, blocks={blocks})")
    exe = build_client()
    library = subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout.strip()
    sizes = [n // blocks + (1 if i < n % blocks else 0) for i in range(blocks)]
    pym_inside: dict[str, Samples] = {op: {} for op in OPS}
    link_inside: dict[str, Samples] = {op: {} for op in OPS}
    placement = split_cpus() if split else None
    affinity = os.sched_getaffinity(0) if placement else None
    bench = _start(transport)
    floor: _Bench | None = None
    loop = asyncio.new_event_loop()
    try:
        if breakdown:
            floor = _start(transport, emulator=[str(exe), "--serve"])
        if placement is not None:
            for child in bench.children + (floor.children if floor else []):
                _pin(child.proc.pid, placement[0])
            os.sched_setaffinity(0, placement[1])  # and the C client, started from here
        samples = _climb(bench, floor, exe, loop, sizes, breakdown, pym_inside, link_inside)
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        loop.close()
        bench.close()
        if floor is not None:
            floor.close()
    out: dict[str, Any] = {"transport": transport, "n": n, "blocks": blocks, "libmodbus": library,
                           "pymodbus": pymodbus.__version__, "loadavg": [round(x, 2) for x in os.getloadavg()],
                           "cpus": None if placement is None else {"board": sorted(placement[0]),
                                                                   "clients": sorted(placement[1])},
                           "goal_ratio": GOAL_RATIO}
    for op in OPS:
        c, py = summarize(samples["libmodbus"][op]), summarize(samples["launcher_link"][op])
        out[op] = {"libmodbus": c, "launcher_link": py, "ratio": round(py["p50"] / c["p50"], 2)}
    out["within_goal"] = all(out[op]["ratio"] <= GOAL_RATIO for op in OPS)
    out["board_launches"] = bench.launches  # the link's fires, one more a block (its cold one): none of the others'
    if breakdown:
        out["breakdown"] = _breakdown(samples, pym_inside, link_inside)
    return out


def _climb(bench: _Bench, floor: _Bench | None, exe: Path, loop: asyncio.AbstractEventLoop,
           sizes: list[int], breakdown: bool, pym_inside: dict[str, Samples],
           link_inside: dict[str, Samples]) -> dict[str, Samples]:
    """Every rung's samples: the rungs take turns, one block each, a different one first in each block."""
    rungs: dict[str, Any] = {"libmodbus": lambda k: _libmodbus(bench.target, k, exe)}
    if breakdown:
        assert floor is not None
        rungs = {
            "transport_floor": lambda k: _libmodbus(floor.target, k, exe),
            **rungs,
            "python_blocking": lambda k: _python_blocking(bench.target, k),
            "python_asyncio": lambda k: loop.run_until_complete(_python_asyncio(bench.target, k)),
            "pymodbus_client": lambda k: loop.run_until_complete(_pymodbus_client(bench.target, k, pym_inside)),
            "pymodbus_client_clock_sync": lambda k: loop.run_until_complete(
                _pymodbus_client(bench.target, k, {op: {} for op in OPS}, clock_sync=True)),
        }
    rungs["launcher_link"] = lambda k: loop.run_until_complete(
        _launcher_link(bench.target, k, link_inside if breakdown else None))
    samples: dict[str, Samples] = {name: {op: [] for op in OPS} for name in rungs}
    names = list(rungs)
    for b, k in enumerate(sizes):
        for name in names[b % len(names):] + names[:b % len(names)]:
            for op, values in rungs[name](k).items():
                samples[name][op] += values
            bench.drain()
    return samples


def _median_us(samples_ns: Sequence[int]) -> float:
    return float(summarize(samples_ns)["p50"])


def _breakdown(samples: dict[str, Samples], pym_inside: dict[str, Samples],
               link_inside: dict[str, Samples]) -> dict[str, Any]:
    """Each rung's median, the step from the rung below it, and the timed parts inside pymodbus and the link.

    A step is a difference of medians, not a median of differences: it is the layer's typical cost
    only while the machine's noise is the same for both rungs, which the interleaved blocks are for.
    """
    medians = {name: {op: _median_us(s[op]) for op in OPS} for name, s in samples.items()}
    steps = {f"{b} - {a}": {op: round(medians[b][op] - medians[a][op], 1) for op in OPS}
             for a, b in itertools.pairwise(medians)}
    pym = {op: {name: (round(sum(v) / len(v), 2) if name == "fragments" else _median_us(v))
                for name, v in parts.items()} for op, parts in pym_inside.items()}
    link = {op: {name: _median_us(v) for name, v in parts.items()} for op, parts in link_inside.items() if parts}
    return {"median_us": medians, "steps_us": steps, "pymodbus_inside_median_us": pym,
            "launcher_link_inside_median_us": link}


# --- command line: python -m hil.measure.modbus_baseline --------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m hil.measure.modbus_baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=("rtu", "tcp", "both"), default="both")
    parser.add_argument("-n", type=int, default=500, help="exchanges of each request per client")
    parser.add_argument("--blocks", type=int, default=10, help="alternating blocks the exchanges are split into")
    parser.add_argument("--breakdown", action="store_true", help="also climb the ladder of clients")
    parser.add_argument("--shared-cpus", action="store_true",
                        help="let boards and clients share every CPU (default: the boards get one of their own)")
    args = parser.parse_args(argv)
    try:
        results = [measure_round_trips(t, args.n, blocks=args.blocks, breakdown=args.breakdown,
                                       split=not args.shared_cpus)
                   for t in (("rtu", "tcp") if args.transport == "both" else (args.transport,))]
    except (HilError, ValueError) as e:
        print(f"modbus baseline: {e}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
