"""The AVR radar firmware under simavr, driven over its pty with the host's framing: identity, time sync, plots."""

from __future__ import annotations

import itertools
import math
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import serial

from hil.drivers import asterix
from hil.drivers.framing import (
    BoardStatus,
    Frame,
    FrameDecoder,
    FrameType,
    SensorConfig,
    decode_ident,
    decode_status,
    decode_time_sync_resp,
    encode_frame,
    encode_stimulus,
    encode_time_sync_req,
)
from hil.plant.firmware import SimavrBoard, build_firmware
from hil.records.recording import Recorder
from tests.helpers import head_commit, require_tool

pytestmark = pytest.mark.timeout(120)
SITE = (100.0, -200.0, 15.0)
SIGMA_R, SIGMA_AZ, SIGMA_EL, SIGMA_RR = 30.0, 0.002, 0.003, 2.0


class RadarPort:
    """The host's end of the simulated radar's UART: write frames, collect the board's frames with arrival times."""

    def __init__(self, pty: str) -> None:
        self.port = serial.Serial(pty, 115200, timeout=0)
        self.decoder = FrameDecoder("simavr-radar")
        self.seq = 0

    def send(self, ftype: int, payload: bytes = b"") -> None:
        self.port.write(encode_frame(ftype, self.seq, time.monotonic_ns() // 1000, payload))
        self.seq += 1

    def collect(self, duration_s: float, until: int | None = None) -> list[tuple[int, Frame]]:
        """Frames (host receive ns, frame) for duration_s, or until a frame of type `until` arrives."""
        out: list[tuple[int, Frame]] = []
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            data = self.port.read(4096)
            if not data:
                time.sleep(0.001)
                continue
            now = time.monotonic_ns()
            out += [(now, f) for f in self.decoder.feed(data)]
            if until is not None and any(f.ftype == until for _, f in out):
                break
        return out

    def time_sync(self, token: int) -> tuple[int, int, int, int]:
        """(host send ns, host receive ns, board rx us, board tx us) of one exchange."""
        h0 = time.monotonic_ns()
        self.send(FrameType.TIME_SYNC_REQ, encode_time_sync_req(token))
        for h1, f in self.collect(2.0, until=FrameType.TIME_SYNC_RESP):
            if f.ftype == FrameType.TIME_SYNC_RESP:
                got, b_rx, b_tx = decode_time_sync_resp(f.payload)
                assert got == token
                return h0, h1, b_rx, b_tx
        raise AssertionError("no TIME_SYNC_RESP within 2 s")

    def close(self) -> None:
        self.port.close()


@pytest.fixture
def radar() -> Iterator[RadarPort]:
    require_tool("avr-gcc", "gcc-avr avr-libc")
    require_tool("simavr", "simavr libsimavr-dev libelf-dev")
    with SimavrBoard(build_firmware("radar")) as board:
        port = RadarPort(board.pty)
        try:
            yield port
        finally:
            port.close()
    assert "0 dropped" in board.stats, board.stats


def config(scan_period_s: float = 0.5, clutter: float = 0.0, pd: float = 1.0, sectors: int = 4,
           seed: int = 7) -> SensorConfig:
    return SensorConfig(*SITE, scan_period_s, SIGMA_R, SIGMA_AZ, SIGMA_EL, SIGMA_RR, pd, clutter, 60_000.0, 1.0,
                        seed, 3, 9, sectors, 0.3)


def plots_and_messages(frames: list[tuple[int, Frame]]) -> tuple[list[tuple[int, asterix.Cat048Plot]],
                                                                 list[tuple[int, asterix.Cat034Message]]]:
    plots, messages = [], []
    for _, f in frames:
        if f.ftype != FrameType.ASTERIX:
            continue
        for item in asterix.decode_blocks(f.payload):
            if isinstance(item, asterix.Cat048Plot):
                plots.append((f.t_us, item))
            else:
                messages.append((f.t_us, item))
    return plots, messages


def test_identity_names_the_firmware_and_its_build(radar: RadarPort) -> None:
    radar.send(FrameType.IDENT_REQ)
    frames = [f for _, f in radar.collect(2.0, until=FrameType.IDENT_RESP) if f.ftype == FrameType.IDENT_RESP]
    ident = decode_ident(frames[0].payload)
    assert (ident.name, ident.version) == ("hil-radar-avr", "1.0")
    assert ident.build.rstrip("+") == head_commit()


def test_time_sync_answers_each_token_with_a_clock_that_keeps_time(radar: RadarPort) -> None:
    h0, h1, b_rx, b_tx = radar.time_sync(0xDEADBEEF)
    assert b_rx <= b_tx
    time.sleep(1.0)
    h0b, h1b, b_rxb, b_txb = radar.time_sync(17)
    # the harness paces simulated time to the wall clock: the board's microseconds are real ones
    host_elapsed_us = ((h0b + h1b) - (h0 + h1)) / 2000.0
    board_elapsed_us = ((b_rxb + b_txb) - (b_rx + b_tx)) / 2.0
    assert 0.5 < board_elapsed_us / host_elapsed_us < 1.5
    round_trip_us = (h1b - h0b) / 1000.0 - (b_txb - b_rxb)
    assert round_trip_us > 19 * 11 / 115200 * 1e6  # at least the request's bytes on a 115200 wire


def test_plots_match_truth_within_the_noise(radar: RadarPort, tmp_path: Path) -> None:
    radar.send(FrameType.SENSOR_CONFIG, config().encode())
    ids = [11, 12, 13]
    mode3a = [0o1234, -1, 0o7001]
    states = np.array([[20_000.0, 25_000.0, 3_000.0, -150.0, 0.0, 0.0],
                       [-15_000.0, 5_000.0, 800.0, 0.0, -200.0, 5.0],
                       [3_000.0, -30_000.0, 9_000.0, 0.0, 0.0, 0.0]])
    for payload in encode_stimulus(ids, mode3a, states):
        radar.send(FrameType.STIMULUS, payload)
    _, _, b_rx, _ = radar.time_sync(1)  # arrives right behind the truth set: its b_rx dates the set
    t_ref_us = b_rx - 19 * 11 / 115200 * 1e6  # less the sync request's own bytes on the wire
    frames = radar.collect(1.3)
    plots, messages = plots_and_messages(frames)

    site = np.array(SITE)
    matched = {i: 0 for i in ids}
    for t_us, p in plots:
        dt = (t_us - t_ref_us) / 1e6
        truth = states[:, :3] + states[:, 3:] * dt - site
        az_truth = np.mod(np.arctan2(truth[:, 0], truth[:, 1]), 2 * math.pi)
        k = int(np.argmin(np.abs(np.angle(np.exp(1j * (az_truth - p.azimuth_rad))))))
        rng = float(np.linalg.norm(truth[k]))
        assert abs(p.range_m - rng) < 5 * SIGMA_R + 8, (p, rng)
        assert abs(math.remainder(p.azimuth_rad - az_truth[k], 2 * math.pi)) < 5 * SIGMA_AZ + 2e-4
        el = math.asin(truth[k, 2] / rng)
        height = SITE[2] + p.range_m * math.sin(el)
        assert abs(p.height_m - height) < 5 * SIGMA_EL * rng + 10
        rr = float(truth[k] @ states[k, 3:]) / rng
        assert abs(p.range_rate_mps - rr) < 5 * SIGMA_RR + 1
        assert p.mode3a == (mode3a[k] if mode3a[k] >= 0 else -1)  # iff_reply_p = 1
        assert p.typ == (3 if mode3a[k] >= 0 else 1)
        assert (p.sac, p.sic) == (3, 9)
        matched[ids[k]] += 1
    # Pd = 1, 1.3 s of a 0.5 s scan: every target is seen two or three times, no clutter
    assert all(2 <= n <= 3 for n in matched.values()), matched
    numbers = [p.plot_number for _, p in plots]
    assert numbers == list(range(len(plots)))

    # sector messages: 4 per scan, exactly a quarter scan apart in board time, north markers a scan apart
    times = [t for t, _ in messages]
    assert len(messages) >= 8
    assert all(b - a == 125_000 for a, b in itertools.pairwise(times))
    sectors = [round(m.sector_azimuth_rad / (math.pi / 2)) % 4 for _, m in messages]
    assert all((b - a) % 4 == 1 for a, b in itertools.pairwise(sectors))
    assert all(m.is_north == (s == 0) and m.rotation_period_s == 0.5 for (_, m), s in zip(messages, sectors,
                                                                                           strict=True))
    status = [decode_status(f.payload) for _, f in frames if f.ftype == FrameType.STATUS]
    assert status and status[-1].frames_rejected == 0 and status[-1].overruns == 0

    # tshark's ASTERIX dissector reads the firmware's bytes as the host's decoder does
    path = tmp_path / "radar.pcapng"
    with Recorder(path) as rec:
        for host_ns, f in frames:
            if f.ftype == FrameType.ASTERIX:
                rec.record("simavr-radar", "rx", f.payload, host_ns, "asterix")
    tshark = require_tool("tshark", "tshark")
    out = subprocess.run([tshark, "-r", str(path), "-d", "udp.port==8600,asterix", "-T", "fields",
                          "-e", "asterix.048_040_RHO", "-e", "asterix.048_040_THETA", "-Y", "asterix.category == 48"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rho_nm = [float(v) for line in out.splitlines() for v in line.split("\t")[0].split(",") if v]
    theta_deg = [float(v) for line in out.splitlines() for v in line.split("\t")[1].split(",") if v]
    assert np.allclose(rho_nm, [p.range_m / 1852.0 for _, p in plots], atol=1 / 256)
    assert np.allclose(theta_deg, [math.degrees(p.azimuth_rad) for _, p in plots], atol=360 / 65536)


def test_clutter_and_pd_thin_and_fill_the_picture(radar: RadarPort) -> None:
    radar.send(FrameType.SENSOR_CONFIG, config(scan_period_s=0.5, clutter=30.0, pd=0.0, seed=99).encode())
    for payload in encode_stimulus([1], [-1], [[10_000.0, 10_000.0, 1_000.0, 0.0, 0.0, 0.0]]):
        radar.send(FrameType.STIMULUS, payload)
    plots, _ = plots_and_messages(radar.collect(1.1))
    # Pd = 0 hides the target; about 30 clutter plots a scan (Poisson), uniform in range beyond 1 km
    assert 20 <= len(plots) <= 110
    assert all(1_000.0 - 8 <= p.range_m <= 60_000.0 + 8 and p.mode3a == -1 and p.typ == 1 for _, p in plots)


def test_garbage_is_counted_and_the_board_keeps_answering(radar: RadarPort) -> None:
    rng = np.random.default_rng(5)
    radar.port.write(rng.integers(0, 256, 700, dtype=np.uint8).tobytes())
    bad = bytearray(encode_frame(FrameType.SENSOR_CONFIG, 1, 0, config().encode()))
    bad[20] ^= 0x40
    radar.port.write(bytes(bad) + encode_frame(0x55, 2, 0, b"unknown type"))
    radar.send(FrameType.SENSOR_CONFIG, config(scan_period_s=0.2, sectors=1).encode())
    radar.send(FrameType.IDENT_REQ)
    frames = radar.collect(1.0)
    assert any(f.ftype == FrameType.IDENT_RESP for _, f in frames)
    status: list[BoardStatus] = [decode_status(f.payload) for _, f in frames if f.ftype == FrameType.STATUS]
    assert status, "no STATUS after a north marker"
    assert status[-1].frames_rejected >= 2  # the corrupted config and the unknown type at least
    assert status[-1].frames_rx >= 2


def test_overload_sheds_plots_and_the_board_stays_up(radar: RadarPort) -> None:
    # 600 clutter plots a second is twice what 115200 baud carries: late plots are dropped and counted,
    # the sweep keeps up (sector messages keep coming) and the board never resets (its sequence runs on)
    radar.send(FrameType.SENSOR_CONFIG, config(scan_period_s=1.0, clutter=600.0, sectors=4).encode())
    frames = radar.collect(2.6)
    radar.send(FrameType.IDENT_REQ)
    frames += radar.collect(1.0, until=FrameType.IDENT_RESP)
    status = [decode_status(f.payload) for _, f in frames if f.ftype == FrameType.STATUS]
    assert status and status[-1].overruns > 0
    plots, messages = plots_and_messages(frames)
    assert len(plots) > 200 and len(messages) >= 8
    assert radar.decoder.counters.seq_resets == 0 and radar.decoder.counters.frames_lost == 0
    assert any(f.ftype == FrameType.IDENT_RESP for _, f in frames)
