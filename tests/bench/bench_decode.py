"""Radar link decoding: the Cython LinkDecoder against its pure-Python reference on a realistic framed stream, and
a radar link's whole poll on the traffic a radar board sends at `hil bench`'s default load.

Run `pytest tests/bench/bench_decode.py --benchmark-enable`; plots/s = 1000 / the median. With
--benchmark-disable each case runs once and checks that all 1000 plots came out as the encoder put them in, and
that the replayed link took in what the live one did. `python tests/bench/bench_decode.py` prints the link's
per-poll cost (p50/p90/p99 of the polls that gave plots or sectors, as `hil bench`'s decode stage counts them).
"""

from __future__ import annotations

import os
import select
import time
import tty
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from hil.drivers.asterix import encode_cat034, encode_cat048_block
from hil.drivers.framing import FrameType, encode_frame
from hil.drivers.plot_batch import PlotBatch
from hil.drivers.radar_link import RadarLink
from hil.drivers.transport import BytePipe, SerialTransport
from hil.emulators.radar import RadarBoard
from hil.ext.reference.decode import LinkDecoder as ReferenceDecoder
from hil.measure.bench import Load, load_scenario
from hil.plant.radars import config_from_spec
from hil.scenario import Truth

decode = pytest.importorskip("hil.ext.decode", reason="build the kernel: HIL_EXT=decode python setup.py build_ext")

N_PLOTS = 1000
CHUNK = 256  # bytes per read, about what a serial read returns at a time under load


def radar_stream(seed: int = 0) -> tuple[bytes, np.ndarray]:
    """1000 plots in beam dwells of 1..8 plots, one CAT034 sector crossing every 16 frames; and the ranges."""
    rng = np.random.default_rng(seed)
    frames, ranges = [], []
    seq, t_us, left = 0, 10**9, N_PLOTS
    while left:
        n = min(left, int(rng.integers(1, 9)))
        rng_m = rng.uniform(2e3, 150e3, n)
        block = encode_cat048_block(
            1, 2, np.full(n, t_us / 1e6), rng_m, np.full(n, rng.uniform(0, 2 * np.pi)) + rng.normal(0, 0.01, n),
            30.0 + rng_m * np.sin(rng.uniform(0, 0.2, n)), np.where(rng.random(n) < 0.8, rng.normal(0, 150, n), np.nan),
            np.where(rng.random(n) < 0.3, rng.integers(0, 4096, n), -1), np.arange(n),
        )
        frames.append(encode_frame(FrameType.ASTERIX, seq, t_us, block))
        ranges.append(rng_m)
        seq, t_us, left = seq + 1, t_us + 2_000, left - n
        if seq % 16 == 0:
            frames.append(encode_frame(FrameType.ASTERIX, seq, t_us, encode_cat034(1, 2, 2, t_us / 1e6, 0.5, 4.0)))
            seq += 1
    return b"".join(frames), np.concatenate(ranges)


STREAM, RANGES = radar_stream()
CHUNKS = [STREAM[i : i + CHUNK] for i in range(0, len(STREAM), CHUNK)]


def decode_all(decoder: Any, batch: PlotBatch) -> int:
    batch.clear()
    sectors = 0
    for k, chunk in enumerate(CHUNKS):
        sectors += len(decoder.feed(chunk, k, batch))
    return sectors


@pytest.mark.parametrize("impl", ["cython", "reference"])
def test_decode_1000_plots(benchmark: Any, impl: str) -> None:
    make = decode.LinkDecoder if impl == "cython" else ReferenceDecoder
    decoder = make(0, 30.0, False)
    batch = PlotBatch.empty(N_PLOTS)
    benchmark.extra_info["plots"] = N_PLOTS
    benchmark.extra_info["stream_bytes"] = len(STREAM)
    sectors = benchmark(decode_all, decoder, batch)
    assert batch.n == N_PLOTS
    np.testing.assert_allclose(batch.column("range_m"), RANGES, atol=1852 / 512)
    assert sectors > 0
    assert decoder.counters["crc"] == 0 and decoder.counters["truncated"] == 0


# ---- one radar link's poll on the traffic a radar board really sends ---------------------------------------
#
# RadarLink.poll() whole (read, framing, CRC, decoding, clock-sync mapping, counters, events) as hil.runtime
# runs it once per host loop iteration, on what the mock rig's radar board sends at `hil bench`'s default
# load. The board (hil.emulators.radar.RadarBoard, as its process runs it: the beam advanced every 1 ms) is
# driven by a live link in virtual time once; each poll's bytes are kept and then replayed into a fresh link
# at the same host clock, with the time-sync requests at the same points, so the replay decodes exactly
# what the live link did. Timed like the runtime's `decode` stage: each poll that gave plots or sectors.

POLL_NS = 5_000_000  # hil.runtime's loop tick
BOARD_STEP_US = 1_000  # the board process's beam update period
SYNC_NS = 500_000_000  # a time-sync exchange every 0.5 s
STIMULUS_NS = 100_000_000  # truth to the board at 10 Hz
SYNC_ROUNDS = 8  # exchanges before the run starts, 2 ms apart
BOARD_OFFSET_US = 37_000_000  # the board booted this long before the host clock's zero
TRAFFIC_S = 10.0  # virtual seconds of traffic


@dataclass
class LinkTraffic:
    """What one radar link read at each poll of a run: replayable into a fresh link."""

    site: np.ndarray
    steps: list[tuple[int, bytes | None]]  # (host clock ns, bytes the poll read) or (ns, None): a time sync asked
    counters: dict[str, int]  # the live link's decoder and receive counters at the end


RX_COUNTERS = ("frames_ok", "asterix_ok", "plots_ok", "plots_dropped", "bytes_rx", "polls", "sync_responses",
               "sync_unmatched", "sync_rejected", "plots_unsynced", "crc", "seq_gaps", "duplicates")


class _Tap:
    """A transport that keeps what each read returned."""

    is_datagram = False
    tx_dropped_bytes = 0

    def __init__(self, inner: BytePipe, steps: list[tuple[int, bytes | None]], clock: list[int]) -> None:
        self.inner, self.steps, self.clock = inner, steps, clock

    def read_available(self) -> bytes:
        data = self.inner.read_available()
        self.steps.append((self.clock[0], data))
        return data

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


def record_link_traffic(duration_s: float = TRAFFIC_S, load: Load | None = None) -> LinkTraffic:
    """Run one radar board at `load` (hil bench's default: 40 targets, 20 clutter plots a scan, 1 radar) against a
    live link polled every 5 ms in virtual time, and keep every poll's bytes."""
    load = load or Load(duration_s=duration_s)
    scenario = load_scenario(load)
    truth = Truth(scenario)
    spec = scenario.radars[0]
    clock = [1_000_000_000_000]
    steps: list[tuple[int, bytes | None]] = []
    host_end, board_end = BytePipe.pair()
    link = RadarLink(_Tap(host_end, steps, clock), 0, spec.site, clock_ns=lambda: clock[0])
    board = RadarBoard(build="bench")

    def board_step() -> None:
        now_us = clock[0] // 1000 + BOARD_OFFSET_US
        data = board_end.read_available()
        frames = board.receive(data, now_us, now_us) if data else []
        frames += board.advance(now_us)
        if frames:
            board_end.write(b"".join(f.data for f in frames))

    def time_sync() -> None:
        steps.append((clock[0], None))
        link.request_time_sync()

    link.send_config(config_from_spec(spec, seed=load.seed * 1000))
    for _ in range(SYNC_ROUNDS):
        time_sync()
        clock[0] += 2_000_000
        board_step()
        link.poll()
    start = next_stimulus = next_sync = clock[0]
    while clock[0] < start + int(duration_s * 1e9):
        for _ in range(POLL_NS // (BOARD_STEP_US * 1000)):
            clock[0] += BOARD_STEP_US * 1000
            board_step()
        link.poll()
        if clock[0] >= next_stimulus:
            snap = truth.at((clock[0] - start) / 1e9)
            link.send_stimulus(snap.index, snap.mode3a, snap.state)
            next_stimulus += STIMULUS_NS
        if clock[0] >= next_sync:
            time_sync()
            next_sync += SYNC_NS
    counters = link.counters
    return LinkTraffic(np.asarray(spec.site, dtype=np.float64), steps, {k: counters[k] for k in RX_COUNTERS})


class _Replayed:
    """A transport that hands out the recorded reads in order (writes go nowhere)."""

    is_datagram = False
    tx_dropped_bytes = 0

    def __init__(self, reads: list[bytes]) -> None:
        self.reads, self.next = reads, 0

    def read_available(self) -> bytes:
        data = self.reads[self.next]
        self.next += 1
        return data

    def write(self, data: bytes) -> None:
        pass

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


class _PtyFed:
    """A real pty: the recorded bytes of each poll are written to its far end just before the poll."""

    def __init__(self, reads: list[bytes]) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.link_end = SerialTransport(os.ttyname(self.slave))
        self.reads, self.next = reads, 0

    def before_poll(self) -> None:
        data = self.reads[self.next]
        self.next += 1
        if data:
            os.write(self.master, data)
            select.select([self.link_end.fileno()], [], [], 0.5)

    def close(self) -> None:
        self.link_end.close()
        os.close(self.slave)
        os.close(self.master)


def replay_link_traffic(traffic: LinkTraffic, transport: str = "pipe",
                        recorder: Any = None) -> tuple[np.ndarray, RadarLink]:
    """Replay the recorded reads into a fresh link at the recorded host clock; the cost (ns) of each poll that
    gave plots or sectors, and the link. transport "pipe" hands over the bytes in memory, "pty" through a pty."""
    reads = [data for _, data in traffic.steps if data is not None]
    clock = [0]
    pty = _PtyFed(reads) if transport == "pty" else None
    link = RadarLink(pty.link_end if pty else _Replayed(reads), 0, traffic.site, clock_ns=lambda: clock[0],
                     recorder=recorder)
    costs = []
    perf_ns = time.perf_counter_ns
    try:
        for t_ns, data in traffic.steps:
            clock[0] = t_ns
            if data is None:
                link.request_time_sync()
                continue
            if pty is not None:
                pty.before_poll()
            t0 = perf_ns()
            plots, sectors = link.poll()
            dt = perf_ns() - t0
            if plots.n or sectors:
                costs.append(dt)
    finally:
        if pty is not None:
            pty.close()
    return np.array(costs, dtype=np.int64), link


@pytest.fixture(scope="module")
def link_traffic() -> LinkTraffic:
    return record_link_traffic()


@pytest.mark.parametrize("transport", ["pipe", "pty"])
def test_link_poll_at_the_bench_load(benchmark: Any, link_traffic: LinkTraffic, transport: str) -> None:
    costs, link = benchmark(replay_link_traffic, link_traffic, transport)
    benchmark.extra_info["polls_timed"] = len(costs)
    benchmark.extra_info["poll_p50_us"] = float(np.percentile(costs, 50)) / 1e3
    benchmark.extra_info["poll_p99_us"] = float(np.percentile(costs, 99)) / 1e3
    counters = link.counters
    assert {k: counters[k] for k in RX_COUNTERS} == link_traffic.counters
    assert counters["plots_ok"] > 100 and counters["sync_responses"] > 10 and counters["plots_unsynced"] == 0


def main() -> None:
    """The link's per-poll cost at the bench load, a few rounds each way (`python tests/bench/bench_decode.py`)."""
    traffic = record_link_traffic()
    reads = [d for _, d in traffic.steps if d]
    print(f"{len(reads)} polls with bytes, {sum(map(len, reads))} bytes, {traffic.counters['plots_ok']} plots")
    for transport in ("pipe", "pty"):
        for _ in range(3):
            costs, _link = replay_link_traffic(traffic, transport)
            p50, p90, p99 = np.percentile(costs, [50, 90, 99]) / 1e3
            print(f"{transport}: {len(costs)} polls with plots or sectors: p50 {p50:.1f} µs, p90 {p90:.1f} µs, "
                  f"p99 {p99:.1f} µs")


if __name__ == "__main__":
    main()
