"""RadarLink over a real pty pair against a fake board written here with our own encoders; transports too."""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import tty
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.drivers.asterix import encode_cat034, encode_cat048_block
from hil.drivers.framing import (
    Frame,
    FrameDecoder,
    FrameType,
    SensorConfig,
    decode_stimulus,
    decode_time_sync_req,
    encode_frame,
    encode_ident,
    encode_time_sync_resp,
)
from hil.drivers.plot_batch import PlotBatch
from hil.drivers.radar_link import RadarLink, RadarPoll
from hil.drivers.timesync import ClockSync
from hil.drivers.transport import BytePipe, SerialTransport, UdpTransport, open_transport
from hil.errors import LinkError
from hil.ext.reference import decode as reference_decode
from hil.geo import METRES_PER_NM

decode = pytest.importorskip("hil.ext.decode", reason="build the kernel: HIL_EXT=decode python setup.py build_ext")

BOARD_OFFSET_US = 987_654_321  # the board's clock runs this far ahead of the host's


class FakeBoard:
    """The board end of the pty: answers IDENT and TIME_SYNC, records what the host sent, emits plots."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.decoder = FrameDecoder(name="fake-board")
        self.received: list[Frame] = []
        self.seq = 0
        self.offset_us = BOARD_OFFSET_US
        self._stop = threading.Event()

    def now_us(self) -> int:
        return time.monotonic_ns() // 1000 + self.offset_us

    def send(self, ftype: int, payload: bytes, t_us: int | None = None) -> bytes:
        wire = encode_frame(ftype, self.seq, self.now_us() if t_us is None else t_us, payload)
        self.seq = (self.seq + 1) & 0xFFFF
        return wire

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def serve_once(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        rx_us = self.now_us()
        for frame in self.decoder.feed(data):
            self.received.append(frame)
            if frame.ftype == FrameType.IDENT_REQ:
                self.write(self.send(FrameType.IDENT_RESP, encode_ident("fake-radar", "1.0", "t3st")))
            elif frame.ftype == FrameType.TIME_SYNC_REQ:
                token = decode_time_sync_req(frame.payload)
                self.write(self.send(FrameType.TIME_SYNC_RESP, encode_time_sync_resp(token, rx_us, self.now_us())))

    def run(self) -> None:
        while not self._stop.is_set():
            self.serve_once()
            time.sleep(0.0005)

    def stop(self) -> None:
        self._stop.set()


@pytest.fixture
def pty_link() -> Iterator[tuple[RadarLink, FakeBoard, list]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    recorded: list = []
    link = RadarLink(open_transport(os.ttyname(slave)), 1, (100.0, -50.0, 12.0),
                     recorder=lambda *a: recorded.append(a))
    board = FakeBoard(master)
    yield link, board, recorded
    link.close()
    os.close(slave)
    os.close(master)


def poll_until(link: RadarLink, done: Callable[[list[RadarPoll]], bool], board: FakeBoard | None = None,
               timeout_s: float = 5.0) -> list[RadarPoll]:
    """Polls (copying each result) until done(results); a pty may deliver bytes a moment later."""
    out: list[RadarPoll] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if board is not None:
            board.serve_once()
        r = link.poll()
        out.append(RadarPoll(r.plots.copy(), list(r.sectors)))
        if done(out):
            return out
        time.sleep(0.001)
    raise AssertionError("timed out waiting for the link")


def n_plots(polls: list[RadarPoll]) -> int:
    return sum(p.plots.n for p in polls)


def dwell(board: FakeBoard, n: int, t_us: int, seed: int = 0) -> tuple[bytes, dict]:
    rng = np.random.default_rng(seed)
    rng_m = rng.uniform(1e3, 80_000.0, n)
    p = {"tod_s": np.full(n, (t_us / 1e6) % 86400), "range_m": rng_m,
         "azimuth_rad": rng.uniform(0, 2 * np.pi, n), "height_m": 12.0 + rng_m * np.sin(rng.uniform(0, 0.3, n)),
         "range_rate_mps": rng.uniform(-300, 300, n), "mode3a": rng.integers(-1, 4096, n),
         "plot_number": np.arange(n)}
    return board.send(FrameType.ASTERIX, encode_cat048_block(3, 4, **p), t_us), p


def test_identify_with_a_board_that_answers_and_one_that_does_not(pty_link: tuple) -> None:
    link, board, recorded = pty_link
    thread = threading.Thread(target=board.run, daemon=True)
    thread.start()
    try:
        assert link.identify(timeout=5.0) == "fake-radar;1.0;t3st"
    finally:
        board.stop()
        thread.join()
    with pytest.raises(LinkError, match="IDENT_RESP"):
        link.identify(timeout=0.05)
    assert recorded[0][:2] == ("radar1", "tx") and recorded[0][4] == "frame"
    assert any(r[1] == "rx" and r[4] == "frame" for r in recorded)


def test_plots_and_sectors_arrive_on_the_host_clock(pty_link: tuple) -> None:
    link, board, recorded = pty_link
    for _ in range(5):
        link.request_time_sync()
        answered = link.stats["sync_responses"] + 1
        poll_until(link, lambda _: link.stats["sync_responses"] >= answered, board)  # noqa: B023
    assert link.clock_sync.synced
    # the fake board's clock is host monotonic + BOARD_OFFSET_US, exactly
    assert link.clock_sync.offset_ns == pytest.approx(BOARD_OFFSET_US * 1000, abs=link.clock_sync.uncertainty_ns + 1000)

    t0_host_ns = time.monotonic_ns() - 5_000_000  # detected 5 ms ago
    t0_us = t0_host_ns // 1000 + BOARD_OFFSET_US
    wire, p = dwell(board, 20, t0_us)
    sector = board.send(FrameType.ASTERIX, encode_cat034(3, 4, 2, 10.0, math.radians(90), 4.0), t0_us + 1000)
    board.write(wire + sector)
    polls = poll_until(link, lambda ps: n_plots(ps) >= 20 and any(q.sectors for q in ps))
    plots = next(q.plots for q in polls if q.plots.n)
    assert plots.n == 20
    np.testing.assert_allclose(plots.column("range_m"), p["range_m"], atol=METRES_PER_NM / 512)
    np.testing.assert_array_equal(plots.column("mode3a"), p["mode3a"])
    np.testing.assert_array_equal(plots.column("sensor"), 1)
    np.testing.assert_array_equal(plots.column("board_t_us"), t0_us)
    # elevation from I110 and the site height 12 m
    el = np.arcsin((p["height_m"] - 12.0) / p["range_m"])
    np.testing.assert_allclose(plots.column("elevation_rad"), el, atol=8.0 / p["range_m"].min())
    # t0 mapped to the host clock: within the sync uncertainty (+ the µs tick)
    err_ns = np.abs(plots.column("t_s") * 1e9 - t0_host_ns)
    assert err_ns.max() <= link.clock_sync.uncertainty_ns + 2000
    assert (plots.column("host_rx_ns") > t0_host_ns).all()
    (t_s, az, north) = next(s for q in polls for s in q.sectors)
    assert az == pytest.approx(math.radians(90)) and not north
    assert abs(t_s * 1e9 - (t0_host_ns + 1_000_000)) <= link.clock_sync.uncertainty_ns + 2000
    asterix = [r for r in recorded if r[4] == "asterix"]
    assert [r[2] for r in asterix] == [wire_payload(wire), wire_payload(sector)]
    assert link.counters["plots_unsynced"] == 0


def wire_payload(wire: bytes) -> bytes:
    (frame,) = FrameDecoder().feed(wire)
    return frame.payload


def test_garbage_partial_frames_and_a_board_reset(pty_link: tuple) -> None:
    link, board, _ = pty_link
    link.request_time_sync()
    poll_until(link, lambda _: link.clock_sync.synced, board)
    board.seq = 20_000  # a gap (counted as loss), and close enough to 0 that a restart reads as a jump back
    first, _ = dwell(board, 5, board.now_us(), seed=1)
    second, _ = dwell(board, 7, board.now_us(), seed=2)
    corrupt = bytearray(second)
    corrupt[len(corrupt) // 2] ^= 0x55
    board.write(os.urandom(300).replace(b"\x7e", b"") + first[:10])
    assert n_plots(poll_until(link, lambda _: True)) == 0
    board.write(first[10:] + bytes(corrupt) + b"\x7e\x7d\x7e")
    polls = poll_until(link, lambda ps: n_plots(ps) >= 5 and link.counters["crc"] >= 1)
    assert n_plots(polls) == 5
    c = link.counters
    assert c["crc"] >= 1 and c["escape"] >= 1 and c["bytes_discarded"] >= 290

    # the board restarts: sequence back to 0, its clock starts again from a new origin
    board.seq, board.offset_us = 0, -(time.monotonic_ns() // 1000) + 1_000
    board.decoder = FrameDecoder(name="fake-board")
    restarted, _ = dwell(board, 3, board.now_us(), seed=3)
    board.write(restarted)
    polls = poll_until(link, lambda ps: n_plots(ps) >= 3)
    assert link.counters["board_resets"] == 1 and link.counters["seq_resets"] == 1
    # the old offset is gone: those plots carry the receive time, and a new sync request went out
    assert link.counters["plots_unsynced"] == 3
    poll_until(link, lambda _: link.clock_sync.synced, board)
    sync = link.clock_sync
    assert sync.offset_ns == pytest.approx(board.offset_us * 1000, abs=sync.uncertainty_ns + 1000)
    summary = link.counters.summary()
    assert summary["rejected"]["crc"] >= 1 and summary["board_resets"] == 1 and "crc" not in summary


def test_commands_reach_the_board(pty_link: tuple) -> None:
    link, board, recorded = pty_link
    cfg = SensorConfig(100.0, -50.0, 12.0, 4.0, 30.0, 2**-9, 2**-8, 1.0, 0.875, 2.0, 80_000.0, 0.9375,
                       seed=7, sac=3, sic=4, sectors=8, north_offset_rad=0.0)
    link.send_config(cfg)
    states = np.arange(40 * 6, dtype=np.float64).reshape(40, 6)
    link.send_stimulus(np.arange(40), np.full(40, -1), states)
    deadline = time.monotonic() + 5
    while len(board.received) < 3 and time.monotonic() < deadline:
        board.serve_once()
        time.sleep(0.001)
    kinds = [f.ftype for f in board.received]
    assert kinds == [FrameType.SENSOR_CONFIG, FrameType.STIMULUS, FrameType.STIMULUS]
    assert SensorConfig.decode(board.received[0].payload) == cfg
    chunks = [decode_stimulus(f.payload) for f in board.received[1:]]
    assert chunks[0].start and chunks[1].end
    np.testing.assert_array_equal(np.concatenate([c.states for c in chunks]), states)
    assert [f.seq for f in board.received] == [0, 1, 2]
    assert [r[1:2] + r[4:] for r in recorded] == [("tx", "frame")] * 3


def test_lost_link_is_counted_not_raised() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    link = RadarLink(open_transport(os.ttyname(slave)), 0, (0.0, 0.0, 0.0))
    os.close(master)  # the cable is pulled
    try:
        assert link.fileno() >= 0
        for _ in range(3):
            plots, sectors = link.poll()
            assert plots.n == 0 and sectors == []
        link.request_time_sync()
        assert link.counters["link_errors"] >= 3
    finally:
        link.close()
        os.close(slave)


def test_udp_datagrams_carry_raw_asterix() -> None:
    udp = open_transport("udp://127.0.0.1:0")
    assert isinstance(udp, UdpTransport)
    link = RadarLink(udp, 2, (0.0, 0.0, 0.0))
    port = udp.local_port
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        block = encode_cat048_block(1, 2, [3600.5, 3600.5], [5000.0, 6000.0], [0.1, 0.2], [np.nan, 500.0],
                                    [np.nan, 10.0], [-1, 0o1200], [1, 2])
        tx.sendto(block + encode_cat034(1, 2, 1, 3601.0, 0.0, 4.0), ("127.0.0.1", port))
        tx.sendto(b"\x30\x00\x09garbage", ("127.0.0.1", port))
        polls = poll_until(link, lambda ps: n_plots(ps) >= 2 and link.counters["truncated"] >= 1)
        plots = next(q.plots for q in polls if q.plots.n)
        np.testing.assert_array_equal(plots.column("board_t_us"), [3_600_500_000] * 2)  # I140 in µs
        assert [s[1:] for q in polls for s in q.sectors] == [(0.0, True)]
        assert link.counters["plots_unsynced"] == 2
    finally:
        tx.close()
        link.close()


def test_byte_pipe_and_loop_transports() -> None:
    host, board_end = BytePipe.pair()
    t = [0]
    link = RadarLink(host, 0, (0.0, 0.0, 0.0), clock_ns=lambda: t[0])
    link.request_time_sync()
    (req,) = FrameDecoder().feed(board_end.read_available())
    token = decode_time_sync_req(req.payload)
    t[0] = 2_000_000  # 2 ms of virtual time for the round trip
    board_end.write(encode_frame(FrameType.TIME_SYNC_RESP, 0, 0, encode_time_sync_resp(token, 5_000, 5_000)))
    link.poll()
    assert link.clock_sync.offset_ns == pytest.approx(5_000_000 - 1_000_000)
    assert link.clock_sync.uncertainty_ns == pytest.approx(1_000_000 + 1_000_000 * 5000e-6)  # + unknown drift, 1 ms
    board_end.close()
    with pytest.raises(LinkError):
        board_end.write(b"x")

    loop = open_transport("loop://")
    assert loop.fileno() == -1
    loop.write(b"abc")
    assert loop.read_available() == b"abc"
    with pytest.raises(LinkError, match="udp://HOST:PORT"):
        open_transport("udp://nohost")
    with pytest.raises(LinkError, match="cannot open"):
        open_transport("/nonexistent/tty")


def test_a_stalled_reader_never_blocks_the_writer() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    t = open_transport(os.ttyname(slave))
    assert isinstance(t, SerialTransport)
    try:
        for _ in range(40):
            t.write(b"\x55" * 4096)  # nobody reads the master side
        assert t.pending > 0 and t.tx_dropped_bytes > 0
    finally:
        t.close()
        os.close(slave)
        os.close(master)


def test_the_kernels_clock_mapping_is_the_clock_syncs_own() -> None:
    """RadarLink maps a batch's board stamps in C with the ClockSync's parameters: bit for bit what
    ClockSync.board_to_host_ns gives, before and after a drift fit, and after a reset."""
    rng = np.random.default_rng(4)
    sync = ClockSync()
    host_ns, drift, offset_ns = 10**15, 37e-6, -123_456_789_012
    stamps = rng.integers(0, 2**45, 64)
    for k in range(200):
        h0 = host_ns + k * 100_000_000
        h1 = h0 + int(rng.integers(200_000, 3_000_000))
        mid = (h0 + h1) // 2
        b = int((mid + offset_ns + drift * (mid - host_ns)) // 1000) + int(rng.integers(-300, 300))
        sync.add_sample(h0, b, b + 50, h1)
        if k in (0, 5, 60, 61, 199):
            batch = PlotBatch.empty(len(stamps))
            batch.n = len(stamps)
            batch.board_t_us[:] = stamps
            decode.map_board_times(batch, *sync.mapping())
            expected = sync.board_to_host_ns(stamps) / 1e9
            assert np.array_equal(batch.t_s.view(np.int64), expected.view(np.int64))
            one = int(stamps[0])
            assert decode.board_to_host_s(one, *sync.mapping()) == sync.board_to_host_ns(one) / 1e9
    assert sync.drift_fitted
    sync.reset()
    assert not sync.synced


@pytest.mark.parametrize("defer", [False, True])
def test_plot_times_and_what_replay_reads_from_the_recording(defer: bool) -> None:
    """Over 20 s of 5 ms polls in virtual time, a board whose clock drifts and a sync exchange every 0.5 s:
    each plot's time is its board stamp through ClockSync.board_to_host_ns, and the first ASTERIX payload of each
    poll carries the poll count, the plot times as runs and the sector times (hil.records.replay reads them).
    Deferred (as the host loop polls, recording after its fire commands), the same records come at
    record_received(), none before."""
    rng = np.random.default_rng(11)
    host, board_end = BytePipe.pair()
    t = [5 * 10**12]
    recorded: list = []
    link = RadarLink(host, 0, (0.0, 0.0, 30.0), clock_ns=lambda: t[0], recorder=lambda *a: recorded.append(a))
    board = FakeBoard(-1)

    def board_us() -> int:
        return int(t[0] * (1 + 80e-6)) // 1000 + 3_000_000

    board.now_us = board_us  # type: ignore[method-assign]
    checked = sectors_seen = 0
    for k in range(1, 4001):
        t[0] += 5_000_000 + int(rng.integers(-200_000, 200_000))
        wire = b""
        for frame in board.decoder.feed(board_end.read_available()):
            token = decode_time_sync_req(frame.payload)
            rx_us = board_us() - int(rng.integers(100, 2_000))
            wire += board.send(FrameType.TIME_SYNC_RESP, encode_time_sync_resp(token, rx_us, rx_us + 30))
        for _ in range(int(rng.integers(0, 3))):
            wire += dwell(board, int(rng.integers(1, 6)), board_us() - int(rng.integers(0, 4000)), seed=k)[0]
        if k % 37 == 0:
            wire += board.send(FrameType.ASTERIX, encode_cat034(3, 4, 2, 10.0, 1.0, 4.0), board_us() - 1000)
        board_end.write(wire)
        before, samples = len(recorded), link.clock_sync.samples_accepted + link.clock_sync.samples_rejected
        plots, sectors = link.poll(defer_record=defer)
        if defer:
            assert not [r for r in recorded[before:] if r[1] == "rx"]
            link.record_received()
        # plots are timed before the poll's sync answers are taken in: compare where the sync stood still
        still = link.clock_sync.samples_accepted + link.clock_sync.samples_rejected == samples
        if k % 100 == 1:
            link.request_time_sync()
        rx = [r for r in recorded[before:] if r[1] == "rx"]
        if not wire:
            assert rx == [] and plots.n == 0
            continue
        asterix = [r for r in rx if r[4] == "asterix"]
        if plots.n and link.clock_sync.synced and still:
            expected = link.clock_sync.board_to_host_ns(plots.board_t_us[: plots.n]) / 1e9
            assert np.array_equal(plots.column("t_s").view(np.int64), expected.view(np.int64))
            checked += 1
        if asterix:
            note = asterix[0][5]
            assert list(note) == ["poll", "plots_t_s", "sectors_t_s"] and note["poll"] == k
            assert note["plots_t_s"] == reference_decode.time_runs(plots)
            assert note["sectors_t_s"] == [s[0] for s in sectors]
            assert all(r[5] == {"poll": k} for r in asterix[1:])
            sectors_seen += len(sectors)
    assert checked > 1000 and sectors_seen > 50 and link.clock_sync.drift_fitted
    assert link.counters["plots_unsynced"] < 20


HOSTILE = ["dwell", "sector", "sync", "garbage", "flip", "cut", "again", "restart", "log"]


@given(st.lists(st.tuples(st.sampled_from(HOSTILE), st.integers(0, 2**16)), max_size=40),
       st.lists(st.integers(1, 400), min_size=1, max_size=6), st.booleans())
@settings(max_examples=150, deadline=None)
def test_a_hostile_link_is_counted_never_raised(segments: list, cuts: list[int], sync_first: bool) -> None:
    """Whatever the bytes, poll() returns; every plot it gives is timed and recorded with its poll."""
    host, board_end = BytePipe.pair()
    t = [10**12]
    recorded: list = []
    link = RadarLink(host, 0, (0.0, 0.0, 0.0), clock_ns=lambda: t[0], recorder=lambda *a: recorded.append(a))
    board = FakeBoard(-1)
    board.now_us = lambda: t[0] // 1000 + 777  # type: ignore[method-assign]
    if sync_first:
        link.request_time_sync()
    wire, last = b"", b""
    for kind, seed in segments:
        rng = np.random.default_rng(seed)
        if kind == "dwell":
            last = dwell(board, int(rng.integers(1, 9)), board.now_us(), seed=seed)[0]
        elif kind == "sector":
            last = board.send(FrameType.ASTERIX, encode_cat034(3, 4, int(rng.integers(1, 3)), 5.0, 1.0, 4.0))
        elif kind == "sync":
            last = board.send(FrameType.TIME_SYNC_RESP, encode_time_sync_resp(int(rng.integers(0, 3)), 1_000, 1_000))
        elif kind == "garbage":
            last = rng.bytes(int(rng.integers(1, 80)))
        elif kind == "flip" and last:
            flipped = bytearray(last)
            flipped[int(rng.integers(0, len(flipped)))] ^= 1 << int(rng.integers(0, 8))
            last = bytes(flipped)
        elif kind == "cut":
            last = last[: int(rng.integers(0, len(last) + 1))]
        elif kind == "restart":
            board.seq = int(rng.integers(0, 2**16))
            board.now_us = lambda: t[0] // 1000 - 10**9  # type: ignore[method-assign]
        elif kind == "log":
            last = board.send(FrameType.LOG, rng.bytes(int(rng.integers(0, 30))))
        wire += last  # "again" repeats the last piece
    pos, k, plots_seen = 0, 0, 0
    while pos <= len(wire):
        chunk = wire[pos : pos + cuts[k % len(cuts)]]
        board_end.write(chunk)
        t[0] += 5_000_000
        before = len(recorded)
        plots, sectors = link.poll()
        plots_seen += plots.n
        assert not np.isnan(plots.column("t_s")).any()
        notes = [r[5] for r in recorded[before:] if r[1] == "rx" and r[4] == "asterix"]
        if notes:
            assert sum(count for _, count in notes[0]["plots_t_s"]) == plots.n
            assert len(notes[0]["sectors_t_s"]) == len(sectors)
        else:
            assert plots.n == 0 and sectors == []
        pos, k = pos + max(len(chunk), 1), k + 1
    c = link.counters
    assert c["bytes_rx"] == len(wire)
    assert plots_seen == c["plots_ok"] and c["plots_dropped"] == 0
    assert c["plots_unsynced"] <= plots_seen
    assert sum(c.summary()["rejected"].values()) >= 0


def test_a_quiet_serial_line_reads_nothing_a_closed_one_is_a_hang_up() -> None:
    """A raw tty reads zero bytes when nothing is there: that is a quiet line, not an error (every poll of a quiet
    radar link counted one, and logged it, before). Once the other end closes, the read is a hang-up."""
    board, line = os.openpty()
    tty.setraw(board)
    transport = SerialTransport(os.ttyname(line))
    link = RadarLink(transport, 0, (0.0, 0.0, 0.0))
    try:
        for _ in range(50):
            assert transport.read_available() == b""
            link.poll()
        assert link.counters["link_errors"] == 0
        os.write(board, b"\x7e")
        assert transport.read_available() == b"\x7e"
        os.close(board)
        with pytest.raises(LinkError, match="hung up"):
            transport.read_available()
    finally:
        transport.close()
        os.close(line)
