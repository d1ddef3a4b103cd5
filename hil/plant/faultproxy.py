"""A fault-injecting proxy in real time between the host and one board (pty or TCP), faults per hil.drivers.faults.

    python -m hil.plant.faultproxy --link radar-east --board /dev/pts/7 --fault radar-east:stall@15+2/up --seed 1
    python -m hil.plant.faultproxy --link launcher-north --board tcp://127.0.0.1:5020 --fault launcher-north:cut@20+3

It opens the board's end (a serial device or pty path, or tcp://HOST:PORT) and offers the host the same kind of
link: a new pty, or a TCP port on 127.0.0.1 (each host connection gets its own connection to the board). It
announces one JSON line: {"url": what the host opens, "pty" | "tcp": ..., "pid": ...}.

Timing: fault times count from --start-ns (CLOCK_MONOTONIC ns; default: when the proxy starts). On SIGUSR1 the
proxy reads a new start from --start-file (an integer, CLOCK_MONOTONIC ns; an empty or missing file: now), so a
run aligns the schedule with its own start once bring-up is over. A TCP link is closed when a cut starts and
new connections are refused (closed at once) until it ends; a pty link loses the bytes.

Counts: written to --stats (JSON, replaced atomically) every half second and at exit, and printed as one JSON
line {"counts": ...} on stdout at SIGTERM: {"up": {...}, "down": {...}, "tcp": {...}} (FaultInjector.summary()).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hil.drivers.faults import FaultInjector, LinkFault
from hil.emulators.wire import open_raw_pty
from hil.errors import HilError
from hil.procutil import die_with_parent

STATS_PERIOD_S = 0.5
MAX_HELD = 1 << 20  # bytes buffered for a pty nobody reads before the oldest are dropped (and counted)


class FdWriter:
    """Non-blocking writes to a pty or serial fd: what the OS does not take now waits for the fd to be writable."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self.loop, self.fd = loop, fd
        self.pending = bytearray()
        self.overflow_bytes = 0
        self._waiting = False

    def write(self, data: bytes) -> None:
        self.pending += data
        if len(self.pending) > MAX_HELD:
            excess = len(self.pending) - MAX_HELD
            del self.pending[:excess]
            self.overflow_bytes += excess
        self._drain()

    def _drain(self) -> None:
        while self.pending:
            try:
                n = os.write(self.fd, bytes(self.pending))
            except BlockingIOError:
                n = 0
            except OSError:
                self.pending.clear()  # the far end hung up: nothing to deliver to
                return
            if n <= 0:
                if not self._waiting:
                    self._waiting = True
                    self.loop.add_writer(self.fd, self._writable)
                return
            del self.pending[:n]

    def _writable(self) -> None:
        self.loop.remove_writer(self.fd)
        self._waiting = False
        self._drain()


class Relay:
    """The injector in the middle of a live link: bytes in from either end, delivered when the injector says."""

    def __init__(self, loop: asyncio.AbstractEventLoop, injector: FaultInjector) -> None:
        self.loop, self.injector = loop, injector
        self.deliver: dict[str, Callable[[bytes], None] | None] = {"up": None, "down": None}
        self._timers: dict[str, asyncio.TimerHandle | None] = {"up": None, "down": None}

    def received(self, direction: str, data: bytes) -> None:
        self.injector.feed(time.monotonic_ns(), direction, data)
        self.pump(direction)

    def pump(self, direction: str) -> None:
        """Deliver what is due and wake again when the next held chunk is."""
        timer = self._timers[direction]
        if timer is not None:
            timer.cancel()
            self._timers[direction] = None
        now = time.monotonic_ns()
        data = self.injector.take(now, direction)
        sink = self.deliver[direction]
        if data and sink is not None:
            sink(data)
        due = self.injector.next_ns(direction)
        if due is not None:
            self._timers[direction] = self.loop.call_later(max(0, due - now) / 1e9, self.pump, direction)


class FaultProxy:
    """One board link through a Relay: pty board -> pty offered, tcp board -> TCP port offered."""

    def __init__(self, board: str, injector: FaultInjector, baud: int = 115200) -> None:
        self.board, self.injector, self.baud = board, injector, baud
        self.tcp_counts = {"connections": 0, "closed_by_cut": 0, "refused_in_cut": 0, "board_connect_failures": 0}
        self._closers: list[Callable[[], None]] = []
        self._cut_timers: list[asyncio.TimerHandle] = []
        self._writers: list[FdWriter] = []

    # --- start ------------------------------------------------------------------------------------------

    async def start(self) -> dict[str, Any]:
        self.loop = asyncio.get_running_loop()
        self.relay = Relay(self.loop, self.injector)
        if self.board.startswith("tcp://"):
            return await self._start_tcp()
        return self._start_pty()

    def _start_pty(self) -> dict[str, Any]:
        import serial

        try:
            port = serial.serial_for_url(self.board, baudrate=self.baud, timeout=0)
        except (serial.SerialException, OSError, ValueError) as e:
            raise HilError(f"{self.board}: cannot open: {e}") from e
        self._port = port  # kept open for the proxy's life
        board_fd = port.fileno()
        os.set_blocking(board_fd, False)
        host_fd, path = open_raw_pty()
        board_out, host_out = FdWriter(self.loop, board_fd), FdWriter(self.loop, host_fd)
        self._writers += [board_out, host_out]
        self.relay.deliver = {"up": host_out.write, "down": board_out.write}
        self.loop.add_reader(board_fd, self._read_fd, board_fd, "up")
        self.loop.add_reader(host_fd, self._read_fd, host_fd, "down")
        return {"url": path, "pty": path}

    def _read_fd(self, fd: int, direction: str) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the board went away (EOF or EIO): stop listening rather than spin
            self.loop.remove_reader(fd)
            return
        self.relay.received(direction, data)

    async def _start_tcp(self) -> dict[str, Any]:
        host, _, port = self.board[len("tcp://"):].rpartition(":")
        if not host or not port.isdigit():
            raise HilError(f"{self.board}: expected tcp://HOST:PORT")
        self._board_addr = (host.strip("[]"), int(port))
        self._server = await asyncio.start_server(self._host_connected, "127.0.0.1", 0)
        listen = self._server.sockets[0].getsockname()
        self.schedule_cuts()
        return {"url": f"tcp://127.0.0.1:{listen[1]}", "tcp": f"127.0.0.1:{listen[1]}"}

    # --- TCP --------------------------------------------------------------------------------------------

    def _in_cut(self) -> bool:
        return bool(self.injector.active("cut", "up", time.monotonic_ns())
                    or self.injector.active("cut", "down", time.monotonic_ns()))

    async def _host_connected(self, h_reader: asyncio.StreamReader, h_writer: asyncio.StreamWriter) -> None:
        if self._in_cut():
            self.tcp_counts["refused_in_cut"] += 1
            h_writer.close()
            return
        try:
            b_reader, b_writer = await asyncio.open_connection(*self._board_addr)
        except OSError:
            self.tcp_counts["board_connect_failures"] += 1
            h_writer.close()
            return
        self.close_connections()  # one host at a time: a reconnecting host replaces its old connection
        self.tcp_counts["connections"] += 1
        self.relay.deliver = {"up": h_writer.write, "down": b_writer.write}
        tasks: list[asyncio.Future[None]] = []

        def close() -> None:
            for t in tasks:
                t.cancel()
            for w in (h_writer, b_writer):
                w.close()
            self.relay.deliver = {"up": None, "down": None}

        self._closers.append(close)
        tasks += [asyncio.ensure_future(self._pipe(h_reader, "down", close)),
                  asyncio.ensure_future(self._pipe(b_reader, "up", close))]

    async def _pipe(self, reader: asyncio.StreamReader, direction: str, close: Callable[[], None]) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                self.relay.received(direction, data)
        # one end hung up: the other end's connection goes too, as it would with no proxy between them
        if close in self._closers:
            self._closers.remove(close)
            close()
            self.injector.discard("cut")

    def close_connections(self) -> None:
        closers, self._closers = self._closers, []
        for close in closers:
            close()
        if closers:
            self.injector.discard("cut")  # what was held for the old connection dies with it

    def schedule_cuts(self) -> None:
        """Close the TCP connection when each cut starts (alignment changes reschedule)."""
        for timer in self._cut_timers:
            timer.cancel()
        now = time.monotonic_ns()
        self._cut_timers = [self.loop.call_later(max(0, start - now) / 1e9, self._cut)
                            for start, _ in self.injector.cut_windows_ns()]

    def _cut(self) -> None:
        if self._closers:
            self.tcp_counts["closed_by_cut"] += 1
        self.close_connections()

    # --- alignment and counts ---------------------------------------------------------------------------

    def align(self, t0_ns: int) -> None:
        self.injector.start(t0_ns)
        if hasattr(self, "_server"):
            self.schedule_cuts()
        for direction in ("up", "down"):
            self.relay.pump(direction)

    def counts(self) -> dict[str, Any]:
        out = self.injector.summary()
        if hasattr(self, "_server"):
            out["tcp"] = dict(self.tcp_counts)
        out["overflow_bytes"] = sum(w.overflow_bytes for w in self._writers)
        return out


class ProxyProcess:
    """The host's handle on one proxy process: start it, align its schedule, read its counts, stop it."""

    def __init__(self, link: str, board_url: str, faults: list[LinkFault], seed: int, workdir: str,
                 baud: int = 115200, start_ns: int = 0) -> None:
        from hil.procutil import Child

        self.link = link
        self.start_file = os.path.join(workdir, f"{link}.start")
        self.stats_file = os.path.join(workdir, f"{link}.stats.json")
        args = ["--link", link, "--board", board_url, "--seed", str(seed), "--baud", str(baud),
                "--start-ns", str(start_ns), "--start-file", self.start_file, "--stats", self.stats_file]
        for f in faults:
            args += ["--fault", str(f)]
        self.child = Child.python("hil.plant.faultproxy", args, name=f"fault proxy {link}")
        self.url = str(self.child.info["url"])
        self._counts: dict[str, Any] = {}

    def align(self, start_ns: int) -> None:
        """Fault times count from start_ns (CLOCK_MONOTONIC ns: the run's start on a RealClock)."""
        Path(self.start_file).write_text(str(start_ns))
        if self.child.alive():
            self.child.proc.send_signal(signal.SIGUSR1)

    def counts(self) -> dict[str, Any]:
        """The latest counts the proxy wrote (its final ones once stopped)."""
        with contextlib.suppress(OSError, ValueError):
            self._counts = json.loads(Path(self.stats_file).read_text())
        return self._counts

    def stop(self) -> None:
        self.child.stop()
        self.counts()


def write_stats(path: str | None, counts: dict[str, Any]) -> None:
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(counts, f)
    os.replace(tmp, path)


def read_start(path: str | None) -> int:
    """The start written in the start file, or now when there is none."""
    with contextlib.suppress(OSError, ValueError):
        if path:
            return int(Path(path).read_text().strip())
    return time.monotonic_ns()


async def serve(args: argparse.Namespace, faults: list[LinkFault]) -> None:
    injector = FaultInjector(args.link, faults, args.seed, t0_ns=args.start_ns or time.monotonic_ns())
    proxy = FaultProxy(args.board, injector, baud=args.baud)
    info = await proxy.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, lambda: proxy.align(read_start(args.start_file)))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({**info, "pid": os.getpid()}), flush=True)
    while not stop.is_set():
        write_stats(args.stats, proxy.counts())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), STATS_PERIOD_S)
    proxy.close_connections()
    counts = proxy.counts()
    write_stats(args.stats, counts)
    print(json.dumps({"counts": counts}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.plant.faultproxy", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--link", required=True, help="the link's name, as the faults name it")
    parser.add_argument("--board", required=True, help="the board's end: a serial/pty path or tcp://HOST:PORT")
    parser.add_argument("--fault", action="append", default=[], help="a fault (repeatable), see hil.drivers.faults")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baud", type=int, default=115200, help="serial speed of the board's end")
    parser.add_argument("--start-ns", type=int, default=0, help="the run's start, CLOCK_MONOTONIC ns (0: now)")
    parser.add_argument("--start-file", help="on SIGUSR1, the new start is read from this file")
    parser.add_argument("--stats", help="write the counts here (JSON), every half second and at exit")
    args = parser.parse_args(argv)
    try:
        faults = [LinkFault.parse(text) for text in args.fault]
    except HilError as e:
        parser.error(str(e))
    die_with_parent()
    try:
        asyncio.run(serve(args, faults))
    except HilError as e:
        print(f"hil.plant.faultproxy: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
