"""Link fault injection: the --fault grammar, the seeded injector, and the links it sits in (virtual and real time)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.clock import VirtualClock
from hil.drivers import modbus_rtu
from hil.drivers.faults import (
    FaultInjector,
    FaultyModbusBoard,
    FaultyTransport,
    LinkFault,
    board_events,
    check_links,
    parse_faults,
)
from hil.drivers.registers import FunctionCode
from hil.drivers.transport import BytePipe
from hil.emulators.launcher import LauncherModel
from hil.emulators.wire import open_raw_pty
from hil.errors import ConfigError, LinkError
from hil.plant.faultproxy import ProxyProcess
from hil.scenario import Scenario
from tests.helpers import RAID

S = 1_000_000_000  # ns in a second


def faults(*texts: str) -> list[LinkFault]:
    return [LinkFault.parse(t) for t in texts]


def assert_balanced(counts: dict) -> None:
    """Every byte in is out, lost to drop or cut, copied by duplicate, or still held: nothing unaccounted for."""
    for d in ("up", "down"):
        c = counts[d]
        assert c["bytes_out"] == (c["bytes_in"] - c["drop"]["bytes"] - c["cut"]["bytes"] + c["duplicate"]["bytes"]
                                  - c["queued_bytes"]), (d, c)


# --- grammar -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "want"), [
    ("launcher-north:drop=0.01@8", ("launcher-north", "drop", 0.01, "both", 8.0, None)),
    ("radar-west:delay=2.0@10+5", ("radar-west", "delay", 2.0, "both", 10.0, 5.0)),
    ("launcher-south:cut@20+3", ("launcher-south", "cut", None, "both", 20.0, 3.0)),
    ("radar-east:stall@15+2/up", ("radar-east", "stall", None, "up", 15.0, 2.0)),
    ("radar-east:stall/up@15+2", ("radar-east", "stall", None, "up", 15.0, 2.0)),
    ("radar_1:corrupt=1e-3/down@0", ("radar_1", "corrupt", 0.001, "down", 0.0, None)),
    ("l.1:duplicate=1@0.5+0.25", ("l.1", "duplicate", 1.0, "both", 0.5, 0.25)),
    ("launcher-north:silent@20", ("launcher-north", "silent", None, "both", 20.0, None)),
])
def test_the_grammar_reads_every_kind(text: str, want: tuple) -> None:
    f = LinkFault.parse(text)
    assert (f.link, f.kind, f.arg, f.direction, f.start_s, f.duration_s) == want
    assert LinkFault.parse(str(f)) == f  # the canonical text reads back as the same fault


@pytest.mark.parametrize(("text", "says"), [
    ("launcher-north:drop@8", "drop needs a value"),
    ("launcher-north:drop=1.5@8", "drop must be a number from 0 to 1"),
    ("launcher-north:cut=1@8", "cut takes no value"),
    ("launcher-north:explode@8", "kind 'explode' is not one of"),
    ("launcher-north:delay=-1@8", "delay must be a number"),
    ("launcher-north:delay=0@8", "delay must be more than 0 s"),
    ("launcher-north:stall@8+0", "duration must be more than 0 s"),
    ("launcher-north:stall@nan", "start must be a number"),
    ("launcher-north:stall/sideways@8", "direction 'sideways'"),
    ("launcher-north:silent/up@8", "acts on the board"),
    ("launcher-north:resume@8+2", "resume takes no duration"),
    ("launcher-north@8", "must be LINK:KIND"),
    ("", "must be LINK:KIND"),
])
def test_a_bad_fault_is_one_line_naming_it(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        LinkFault.parse(text)
    assert says in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("--fault: ")


def test_scenario_faults_name_their_index_and_links_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"raid.toml: faults\[1\]: kind 'x'"):
        parse_faults(["a:cut@1", "a:x@2"], "raid.toml")
    with pytest.raises(ConfigError, match="no link named 'radar-nowhere'"):
        check_links(faults("radar-nowhere:cut@1"), ["radar-west", "launcher-north"])
    assert board_events(faults("l:silent@20+5", "r:cut@1", "l:silent@2", "l:resume@3")) == [
        (2.0, "l", "silent"), (3.0, "l", "resume"), (20.0, "l", "silent"), (25.0, "l", "resume")]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60) | st.from_regex(r"[a-z\-]{1,8}:[a-z]{0,9}(=[-+.e0-9a-z]{0,6})?(/[a-z]{0,5})?"
                                           r"@[-+.e0-9a-z]{0,6}(\+[-.e0-9a-z]{0,6})?(/[a-z]{0,5})?", fullmatch=True))
def test_no_string_gives_a_traceback(text: str) -> None:
    try:
        f = LinkFault.parse(text)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    assert LinkFault.parse(str(f)) == f


# --- the injector core ---------------------------------------------------------------------------------


def drive(injector: FaultInjector, steps: int = 400, step_ns: int = 5_000_000) -> list[tuple[int, str, bytes]]:
    """A fixed traffic pattern both ways through an injector; what came out, when."""
    got = []
    rng = np.random.default_rng(99)
    for k in range(steps):
        now = k * step_ns
        injector.feed(now, "up", rng.integers(0, 256, 40 + k % 17, dtype=np.uint8).tobytes())
        if k % 3 == 0:
            injector.feed(now, "down", bytes([k % 256]) * 12)
        for d in ("up", "down"):
            if data := injector.take(now, d):
                got.append((now, d, data))
    return got


ALL_KINDS = ("l:drop=0.02@0.2+1", "l:corrupt=0.01/up@0.5", "l:delay=0.05@1+0.3", "l:stall@1.5+0.2/down",
             "l:duplicate=0.1@0", "l:cut@0.7+0.1")


def test_the_injector_repeats_bit_for_bit_for_a_seed() -> None:
    a, b, c = (FaultInjector("l", faults(*ALL_KINDS), seed) for seed in (7, 7, 8))
    out_a, out_b, out_c = drive(a), drive(b), drive(c)
    assert out_a == out_b and a.summary() == b.summary()
    assert out_a != out_c  # another seed is another draw
    for kind in ("drop", "corrupt", "delay", "stall", "duplicate", "cut"):
        assert sum(a.counts[d][kind]["chunks"] for d in ("up", "down")) > 0, kind
    assert_balanced(a.summary())


def test_a_link_name_draws_its_own_stream_and_no_fault_costs_nothing() -> None:
    one, other = FaultInjector("l", faults("l:drop=0.05@0"), 1), FaultInjector("m", faults("m:drop=0.05@0"), 1)
    assert drive(one) != drive(other)
    clean = FaultInjector("l", faults("other:drop=0.5@0"), 1)  # a fault on another link is not this link's
    sent = drive(clean)
    assert all(len(data) for _, _, data in sent)
    assert clean.summary()["up"]["bytes_out"] == clean.counts["up"]["bytes_in"]


class PipeRig:
    """A virtual clock, a BytePipe and the injector on its host end: the radar link's shape in virtual time."""

    def __init__(self, *texts: str, seed: int = 3) -> None:
        self.clock = VirtualClock()
        host, self.board = BytePipe.pair()
        self.injector = FaultInjector("r", faults(*texts), seed)
        self.host = FaultyTransport(host, self.injector, self.clock.now_ns)

    def at(self, t_s: float) -> PipeRig:
        self.clock.advance_to(round(t_s * S))
        return self


def test_drop_loses_bytes_in_its_window_and_direction_only() -> None:
    rig = PipeRig("r:drop=0.1/up@1+1")
    sent = bytes(range(256)) * 40
    rig.at(0.5).board.write(sent)
    assert rig.host.read_available() == sent  # before the window
    rig.at(1.5).board.write(sent)
    got = rig.host.read_available()
    lost = rig.injector.counts["up"]["drop"]["bytes"]
    assert len(got) == len(sent) - lost and 0.05 * len(sent) < lost < 0.15 * len(sent)
    rig.host.write(sent)  # host -> board is not this fault's direction
    assert rig.board.read_available() == sent
    rig.at(2.0).board.write(sent)
    assert rig.host.read_available() == sent  # the window is over
    assert_balanced(rig.injector.summary())


def test_corrupt_flips_one_bit_in_each_byte_it_counts() -> None:
    rig = PipeRig("r:corrupt=0.02/down@0")
    sent = bytes(10_000)
    rig.at(0.1).host.write(sent)
    got = rig.board.read_available()
    assert len(got) == len(sent)
    flipped = [b for b in got if b]
    assert len(flipped) == rig.injector.counts["down"]["corrupt"]["bytes"] > 100
    assert all(bin(b).count("1") == 1 for b in flipped)


def test_delay_holds_every_chunk_and_keeps_the_order() -> None:
    rig = PipeRig("r:delay=0.3/up@1+0.5")
    for k, t in enumerate((1.0, 1.1, 1.4, 1.6)):
        rig.at(t).board.write(bytes([k]) * 3)
        rig.host.read_available()
    received = {}
    for t in np.arange(1.6, 2.2, 0.05):
        if data := rig.at(float(t)).host.read_available():
            received[round(float(t), 2)] = data
    # chunks at 1.0, 1.1, 1.4 are due at 1.3, 1.4, 1.7; the one at 1.6 (after the window) may not overtake them
    assert received == {1.7: b"\x02\x02\x02\x03\x03\x03"}
    assert rig.injector.counts["up"]["delay"] == {"chunks": 3, "bytes": 9}


def test_stall_holds_everything_then_lets_it_all_pass() -> None:
    rig = PipeRig("r:stall@2+1")
    rig.at(1.9).board.write(b"a")  # sent before the stall, not yet read when it starts: held too
    for t in (2.0, 2.5, 2.99):
        rig.at(t).board.write(b"b")
        assert rig.host.read_available() == b""
    assert rig.at(3.0).host.read_available() == b"abbb"
    # up bytes enter the injector when the host polls: "a" and the first "b" went in as one chunk at 2.0
    assert rig.injector.counts["up"]["stall"] == {"chunks": 3, "bytes": 4}


def test_duplicate_sends_a_chunk_twice() -> None:
    rig = PipeRig("r:duplicate=1/down@0")
    rig.at(0).host.write(b"fire")
    assert rig.board.read_available() == b"firefire"
    assert rig.injector.counts["down"]["duplicate"] == {"chunks": 1, "bytes": 4}


def test_cut_loses_what_is_sent_and_what_is_held() -> None:
    rig = PipeRig("r:delay=0.5/up@0+1", "r:cut@0.2+0.5")
    rig.at(0.0).board.write(b"held")  # due at 0.5, inside the cut
    assert rig.host.read_available() == b""
    rig.at(0.3).board.write(b"cut")
    assert rig.host.read_available() == b""
    assert rig.at(0.6).host.read_available() == b""
    rig.at(0.8).board.write(b"late")  # delayed to 1.3, after the cut
    assert rig.at(1.3).host.read_available() == b"late"
    assert rig.injector.counts["up"]["cut"] == {"chunks": 2, "bytes": 7}
    assert_balanced(rig.injector.summary())


# --- virtual time: the launcher model behind a faulty line -------------------------------------------------


def status_request() -> bytes:
    return modbus_rtu.encode_adu(1, modbus_rtu.read_request(FunctionCode.READ_INPUT, 0, 3))


def test_a_held_request_comes_back_as_a_late_reply_before_the_next_one() -> None:
    clock = VirtualClock()
    board = FaultyModbusBoard(LauncherModel(clock_us=lambda: clock.now_ns() // 1000),
                              FaultInjector("l", faults("l:delay=0.25/down@1+0.2"), 1), clock.now_ns)
    one = board.handle_rtu(status_request(), 1)
    assert one is not None and modbus_rtu.decode_adu(one)[0] == 1  # before the window: one whole reply
    clock.advance_to(1 * S)
    assert board.handle_rtu(status_request(), 1) is None  # held: the host times out
    clock.advance_to(round(1.3 * S))
    late_and_fresh = board.handle_rtu(status_request(), 1)
    assert late_and_fresh == one + one  # the late reply, then this request's (the register values are constant)
    assert board.responding is True  # everything else is the board's own


def test_dropped_and_duplicated_replies() -> None:
    clock = VirtualClock()
    model = LauncherModel(clock_us=lambda: clock.now_ns() // 1000)
    reply = model.handle_rtu(status_request(), 1)
    assert reply is not None
    lossy = FaultyModbusBoard(model, FaultInjector("l", faults("l:drop=1/up@0"), 1), clock.now_ns)
    assert lossy.handle_rtu(status_request(), 1) is None
    twice = FaultyModbusBoard(model, FaultInjector("l", faults("l:duplicate=1/up@0"), 1), clock.now_ns)
    assert twice.handle_rtu(status_request(), 1) == reply + reply
    cut = FaultyModbusBoard(model, FaultInjector("l", faults("l:cut/down@0"), 1), clock.now_ns)
    assert cut.handle_rtu(status_request(), 1) is None
    assert cut.injector.counts["down"]["cut"]["chunks"] == 1


# --- virtual time through bring_up: the host's own code on faulty links -------------------------------------


def small_scenario() -> Scenario:
    sc = Scenario.load(RAID)
    return dataclasses.replace(sc, radars=sc.radars[:1], launchers=sc.launchers[:1])


def virtual_run(texts: tuple[str, ...], seed: int = 5, seconds: float = 6.0) -> tuple[Any, ...]:
    """One radar and one launcher in virtual time, stepped like the runtime; the boards, link and radar bytes."""
    from hil.plant.boards import bring_up
    from hil.plant.radars import config_from_spec
    from hil.rig import Rig

    sc = small_scenario()
    clock = VirtualClock()
    boards = bring_up(sc, Rig.load(), clock, True, None, seed, faults=tuple(faults(*texts)))
    boards.start_faults(clock.now_ns())
    radar, launcher = boards.radars[0], boards.launchers[0]
    radar.send_config(config_from_spec(sc.radars[0], seed=seed))
    truth = sc.truth()
    received = bytearray()
    inner_read = radar.transport.read_available

    def read_and_keep() -> bytes:
        data = inner_read()
        received.extend(data)
        return data

    radar.transport.read_available = read_and_keep
    plots = 0
    errors = 0

    async def steps() -> None:
        nonlocal plots, errors
        try:
            await launcher.connect()
        except LinkError:
            errors += 1
        for k in range(round(seconds / 0.005)):
            now = (k + 1) * 5_000_000
            clock.advance_to(now)
            boards.step_virtual(now)
            if k % 20 == 0:
                snap = truth.at(now / 1e9)
                radar.send_stimulus(snap.index, snap.mode3a, snap.state)
                try:
                    await launcher.read_status()
                except LinkError:
                    errors += 1
            plots += radar.poll().plots.n

    asyncio.run(steps())
    boards.close()
    return boards, radar, launcher, bytes(received), plots, errors


def test_a_clean_virtual_run_has_no_injector() -> None:
    boards, radar, _, _, plots, errors = virtual_run(())
    assert plots > 0 and errors == 0
    assert boards.fault_counts() == {} and type(radar.transport).__name__ == "BytePipe"


def test_virtual_radar_faults_against_what_the_link_saw_and_bit_for_bit_repeats() -> None:
    texts = ("radar-west:corrupt=0.002/up@1+4", "launcher-north:drop=0.05@2+2")
    boards, radar, launcher, received, plots, errors = virtual_run(texts)
    counts = boards.fault_counts()
    up = counts["radar-west"]["up"]
    assert radar.counters["bytes_rx"] == up["bytes_out"] == len(received)  # the link got what the injector let go
    rejected = sum(radar.counters.summary()["rejected"].values())
    assert 0 < rejected <= up["corrupt"]["bytes"]  # a flipped byte spoils at most the one frame it is in
    assert plots > 0
    lost = counts["launcher-north"]["down"]["drop"]["chunks"] + counts["launcher-north"]["up"]["drop"]["chunks"]
    failed = launcher.counters.timeouts + launcher.counters.bad_responses
    assert lost > 0 and errors > 0 and failed > 0  # the host noticed the launcher faults...
    assert failed <= lost  # ...and only those: no failed exchange without a faulted chunk behind it
    again = virtual_run(texts)
    assert again[0].fault_counts() == counts and again[3] == received and again[4] == plots


# --- real time: the proxy process ------------------------------------------------------------------------


@pytest.fixture
def board_pty() -> Iterator[tuple[int, str]]:
    fd, path = open_raw_pty()
    yield fd, path
    os.close(fd)


def read_for(read: Callable[[], bytes], n: int, timeout_s: float = 5.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        try:
            got += read()
        except (BlockingIOError, TimeoutError):
            time.sleep(0.002)
    return got


def start_proxy(tmp_path: Path, board: str, *texts: str, offset_s: float | None = None) -> ProxyProcess:
    """A proxy whose schedule starts now (once it is up), or offset_s from its launch."""
    proxy = ProxyProcess("l", board, faults(*texts), 11, str(tmp_path),
                         start_ns=time.monotonic_ns() + round((offset_s or 0.0) * S))
    if offset_s is None:
        proxy.align(time.monotonic_ns())
    return proxy


def test_proxy_on_a_pty_drops_corrupts_duplicates_and_counts(tmp_path: Path, board_pty: tuple[int, str]) -> None:
    fd, path = board_pty
    proxy = start_proxy(tmp_path, path, "l:drop=0.1/up@0", "l:corrupt=0.05/down@0", "l:duplicate=1/down@0")
    try:
        host = serial.Serial(proxy.url, timeout=0)
        os.write(fd, bytes(range(256)) * 8)
        up = read_for(lambda: host.read(65536), 2048 - 100, timeout_s=2.0)
        host.write(bytes(1000))
        down = read_for(lambda: os.read(fd, 65536), 2000)
        time.sleep(0.7)  # the next stats write
        counts = proxy.counts()
        assert len(up) == 2048 - counts["up"]["drop"]["bytes"] and counts["up"]["drop"]["bytes"] > 50
        assert len(down) >= 2000 and counts["down"]["duplicate"]["bytes"] == len(down) // 2
        flipped = sum(1 for b in down if b)
        assert flipped == 2 * counts["down"]["corrupt"]["bytes"] > 0  # each corrupted chunk went twice
        host.close()
    finally:
        proxy.stop()
    assert not proxy.child.alive()
    assert_balanced(proxy.counts())


def test_proxy_on_a_pty_delays_stalls_and_cuts_on_schedule(tmp_path: Path, board_pty: tuple[int, str]) -> None:
    fd, path = board_pty
    proxy = start_proxy(tmp_path, path, "l:delay=0.3/up@0+1", "l:stall/down@0+0.8", "l:cut/down@1.5+0.5",
                        offset_s=3600)  # nothing until aligned
    try:
        host = serial.Serial(proxy.url, timeout=0)
        os.write(fd, b"early")
        assert read_for(lambda: host.read(100), 5) == b"early"
        proxy.align(t0 := time.monotonic_ns())
        time.sleep(0.1)
        os.write(fd, b"late")
        got = read_for(lambda: host.read(100), 4)
        assert got == b"late" and time.monotonic_ns() - t0 >= 0.3 * S  # a lower bound only: never early
        host.write(b"held")
        assert read_for(lambda: os.read(fd, 100), 4) == b"held" and time.monotonic_ns() - t0 >= 0.8 * S
        while time.monotonic_ns() < t0 + 1.6 * S:
            time.sleep(0.01)
        host.write(b"lost")
        time.sleep(0.6)
        host.write(b"again")
        assert read_for(lambda: os.read(fd, 100), 5) == b"again"
        time.sleep(0.6)
        counts = proxy.counts()
        assert counts["up"]["delay"] == {"chunks": 1, "bytes": 4}
        assert counts["down"]["stall"] == {"chunks": 1, "bytes": 4}
        assert counts["down"]["cut"] == {"chunks": 1, "bytes": 4}
        host.close()
    finally:
        proxy.stop()


class TcpBoard:
    """A TCP board on 127.0.0.1: records what each connection sent it and answers every chunk with `reply`."""

    def __init__(self, reply: bytes = b"ok") -> None:
        self.reply = reply
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.received: list[bytes] = []
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.server.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                self.received.append(data)
                conn.sendall(self.reply)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        self.server.close()


def tcp_host(url: str) -> socket.socket:
    host, _, port = url.removeprefix("tcp://").rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=2)
    sock.settimeout(0.05)
    return sock


def hung_up(sock: socket.socket, timeout_s: float = 2.0) -> bool:
    """True once the far end has closed the connection (EOF or reset)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True
    return False


def test_proxy_on_tcp_corrupts_delays_and_duplicates(tmp_path: Path) -> None:
    board = TcpBoard(reply=bytes(64))
    proxy = start_proxy(tmp_path, board.url, "l:corrupt=0.1/up@0", "l:duplicate=1/down@0", "l:delay=0.2/down@0")
    try:
        sock = tcp_host(proxy.url)
        t0 = time.monotonic_ns()
        sock.sendall(b"request")
        reply = read_for(lambda: sock.recv(65536), 64)
        assert time.monotonic_ns() - t0 >= 0.2 * S  # the request was held (a lower bound only)
        time.sleep(0.7)
        reply += read_for(lambda: sock.recv(65536), 64 * len(board.received) - len(reply), timeout_s=0.5)
        assert b"".join(board.received) == b"requestrequest"  # duplicated on its way down
        counts = proxy.counts()
        assert sum(1 for b in reply if b) == counts["up"]["corrupt"]["bytes"] > 0
        assert counts["down"]["duplicate"]["chunks"] == 1 and counts["tcp"]["connections"] == 1
        sock.close()
    finally:
        proxy.stop()
        board.close()


def test_proxy_on_tcp_cut_closes_the_connection_refuses_then_reconnects(tmp_path: Path) -> None:
    board = TcpBoard()
    proxy = start_proxy(tmp_path, board.url, "l:cut@0.5+1")
    try:
        sock = tcp_host(proxy.url)
        sock.sendall(b"x")
        assert read_for(lambda: sock.recv(10), 2) == b"ok"
        time.sleep(0.7)  # inside the cut
        assert hung_up(sock)  # the connection was closed under the host
        refused = tcp_host(proxy.url)
        assert hung_up(refused)  # closed at once: no board behind it
        time.sleep(1.0)  # after the cut
        again = tcp_host(proxy.url)
        again.sendall(b"z")
        assert read_for(lambda: again.recv(10), 2) == b"ok"
        time.sleep(0.7)
        tcp = proxy.counts()["tcp"]
        assert tcp["closed_by_cut"] == 1 and tcp["refused_in_cut"] == 1 and tcp["connections"] == 2
        assert board.received == [b"x", b"z"]
        for s in (sock, refused, again):
            s.close()
    finally:
        proxy.stop()
        board.close()


def test_real_time_radar_behind_the_proxy_decodes_what_got_through(tmp_path: Path) -> None:
    """The mock radar process, a proxy flipping bits, the host's RadarLink: rejects against the injector's count."""
    from hil.clock import RealClock
    from hil.plant.boards import bring_up
    from hil.plant.radars import config_from_spec
    from hil.rig import Rig

    sc = small_scenario()
    sc = dataclasses.replace(sc, launchers=())
    clock = RealClock()
    boards = bring_up(sc, Rig.load(), clock, False, None, 3, faults=tuple(faults("radar-west:corrupt=0.001/up@0")))
    try:
        assert set(boards.proxies) == {"radar-west"}
        boards.start_faults(clock.now_ns())
        radar = boards.radars[0]
        radar.send_config(config_from_spec(sc.radars[0], seed=3))
        truth = sc.truth()
        plots = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (plots < 20 or radar.counters["crc"] == 0):
            snap = truth.at(0.0)
            radar.send_stimulus(snap.index, snap.mode3a, snap.state)
            for _ in range(20):
                plots += radar.poll().plots.n
                time.sleep(0.005)
        # the board stops (SIGSTOP): what it sent drains to the host, then the counts stand still
        boards.processes["radar-west"].proc.send_signal(signal.SIGSTOP)
        time.sleep(0.3)
        radar.poll()
        time.sleep(0.6)
        counts = boards.fault_counts()["radar-west"]["up"]
        rejected = sum(radar.counters.summary()["rejected"].values())
        assert plots >= 20 and 0 < rejected <= counts["corrupt"]["bytes"]
        assert radar.counters["bytes_rx"] == counts["bytes_out"]  # what the proxy let go is what the host read
    finally:
        boards.close()
    assert all(not p.child.alive() for p in boards.proxies.values())


@pytest.mark.parametrize("transport", ["rtu", "tcp"])
def test_real_time_launcher_behind_the_proxy(tmp_path: Path, transport: str) -> None:
    """bring_up puts the proxy between LauncherLink and the mock launcher (null modem or TCP); the host's code
    is unchanged and every request it sent crossed the proxy."""
    from hil.clock import RealClock
    from hil.plant.boards import bring_up
    from hil.rig import Rig

    rig_file = tmp_path / "rig.toml"
    rig_file.write_text(f'name = "mock-{transport}"\n[defaults]\nradar_board = "mock"\nlauncher_board = "mock"\n'
                        f'launcher_transport = "{transport}"\ntimeout_ms = 500\n')
    sc = dataclasses.replace(small_scenario(), radars=())
    clock = RealClock()
    boards = bring_up(sc, Rig.load(rig_file), clock, False, None, 3,
                      faults=tuple(faults("launcher-north:delay=0.02/down@0")))
    try:
        link = boards.launchers[0]
        assert set(boards.proxies) == {"launcher-north"}
        assert boards.describe[0]["where"] == boards.proxies["launcher-north"].url

        async def talk() -> None:
            await link.connect()
            await link.identify()
            for _ in range(5):
                await link.read_status()

        asyncio.run(asyncio.wait_for(talk(), 20))
        time.sleep(0.7)
        down = boards.fault_counts()["launcher-north"]["down"]
        assert link.counters.timeouts == 0
        assert down["delay"]["chunks"] >= link.counters.requests > 0
        assert down["bytes_out"] == down["bytes_in"]
        link.close()
    finally:
        boards.close()
