"""The radar board in Python: what the AVR radar firmware does, for the mock rig and the Raspberry Pi.

It takes SENSOR_CONFIG and STIMULUS frames from the host, sweeps its beam over the truth it was given
(propagated at constant velocity from when each truth set arrived), and emits one ASTERIX frame per dwell
(CAT048 plots) and one per sector boundary (CAT034), each stamped with its own microsecond clock.

`python -m hil.emulators.radar` runs it as a board process on a pty it creates (announced as one JSON line
{"pty": PATH}), like the simavr harness does; `--udp HOST:PORT` instead sends raw ASTERIX datagrams to
HOST:PORT and takes host frames on the announced UDP port, as the Raspberry Pi radar does.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import signal
import socket
import sys
import time
from typing import NamedTuple

import numpy as np

from hil.drivers import asterix
from hil.drivers.framing import (
    FrameDecoder,
    FrameType,
    PayloadError,
    SensorConfig,
    decode_stimulus,
    decode_time_sync_req,
    encode_frame,
    encode_ident,
    encode_time_sync_resp,
)
from hil.emulators.radar_model import PlotSet, RadarModel, RadarParameters
from hil.emulators.wire import Wire, open_raw_pty
from hil.geo import FloatArray
from hil.procutil import die_with_parent

FIRMWARE_NAME = "hil-radar-py"
FIRMWARE_VERSION = "1.0"
SECONDS_PER_DAY = 86_400.0
CAT034_NORTH_MARKER = 1
CAT034_SECTOR_CROSSING = 2
MAX_DOPPLER_MPS = 511.0
_NO_ROWS = np.zeros(0, np.int64)  # a sweep with no target due
_NO_ROWS.flags.writeable = False
_NO_CODES = np.zeros(0, np.int32)
_NO_CODES.flags.writeable = False

class BoardFrame(NamedTuple):
    ftype: int
    payload: bytes
    data: bytes  # the whole frame as it goes on a serial line


class RadarBoard:
    """The board's behaviour, driven by bytes in and a microsecond clock; returns the bytes it sends."""

    def __init__(self, build: str = "dev") -> None:
        self.build = build
        self.decoder = FrameDecoder("radar-board")
        self.model: RadarModel | None = None
        self.config: SensorConfig | None = None
        self.seq = 0
        self.plot_number = 0
        self.t_us = 0  # how far the beam has swept
        # the truth set in force: positions at t_ref_us, propagated at constant velocity
        self.ids = np.zeros(0, np.int64)
        self.mode3a = np.zeros(0, np.int32)
        self.states = np.zeros((0, 6))
        self.t_ref_us = 0
        self._incoming: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.plots_sent = 0
        # per target of the truth set, a time before which the beam cannot detect it (RadarModel.earliest_crossings):
        # a sweep looks only at the targets due by its end. None: not yet worked out for this truth set and model.
        self._due_s: FloatArray | None = None
        self._next_due_s = -math.inf
        # the next sector boundary the beam reaches (RadarModel.next_sector), from the last sweep (none yet: never)
        self._next_sector = -(2**62)

    def _frame(self, ftype: int, t_us: int, payload: bytes) -> BoardFrame:
        frame = BoardFrame(ftype, payload, encode_frame(ftype, self.seq, t_us, payload))
        self.seq = (self.seq + 1) & 0xFFFF  # the first frame after power-on is number 0
        return frame

    def receive(self, data: bytes, rx_us: int, now_us: int) -> list[BoardFrame]:
        """Host bytes read at rx_us; answers (time sync, identity) stamped now_us."""
        out: list[BoardFrame] = []
        for frame in self.decoder.feed(data):
            try:
                if frame.ftype == FrameType.SENSOR_CONFIG:
                    self.config = SensorConfig.decode(frame.payload)
                    self.model = RadarModel(RadarParameters.from_config(self.config), seed=self.config.seed,
                                            t_epoch_s=rx_us / 1e6)
                    self.t_us = rx_us
                    self._due_s = None
                elif frame.ftype == FrameType.STIMULUS:
                    self._stimulus(frame.payload, rx_us)
                elif frame.ftype == FrameType.TIME_SYNC_REQ:
                    token = decode_time_sync_req(frame.payload)
                    reply = encode_time_sync_resp(token, rx_us, now_us)
                    out.append(self._frame(FrameType.TIME_SYNC_RESP, now_us, reply))
                elif frame.ftype == FrameType.IDENT_REQ:
                    ident = encode_ident(FIRMWARE_NAME, FIRMWARE_VERSION, self.build)
                    out.append(self._frame(FrameType.IDENT_RESP, now_us, ident))
            except PayloadError as e:
                self.decoder.counters.rejected["length"] = self.decoder.counters.rejected.get("length", 0) + 1
                out.append(self._frame(FrameType.LOG, now_us, f"rejected {frame.ftype}: {e}".encode()[:200]))
        return out

    def _stimulus(self, payload: bytes, rx_us: int) -> None:
        chunk = decode_stimulus(payload)
        if chunk.start:
            self._incoming = []
        self._incoming.append((chunk.ids, chunk.mode3a, chunk.states))
        if chunk.end:
            self.ids = np.concatenate([c[0] for c in self._incoming])
            self.mode3a = np.concatenate([c[1] for c in self._incoming]).astype(np.int32)
            self.states = np.concatenate([c[2] for c in self._incoming]).reshape(-1, 6)
            self.t_ref_us = rx_us
            self._incoming = []
            self._due_s = None

    def _states_at(self, rows: np.ndarray, times: FloatArray) -> FloatArray:
        s = self.states[rows]
        dt = (np.asarray(times) - self.t_ref_us / 1e6)[:, None]
        out = np.empty_like(s)
        out[:, :3] = s[:, :3] + s[:, 3:] * dt
        out[:, 3:] = s[:, 3:]
        return out

    def _due_by(self, model: RadarModel, t_from: float, t_to: float) -> tuple[np.ndarray, np.ndarray]:
        """The targets a sweep over (t_from, t_to] may detect and their codes; their next due times are worked out
        from t_to."""
        if self._due_s is None:
            rows = np.arange(len(self.ids))
            self._due_s = model.earliest_crossings(t_from, self._states_at(rows, np.full(len(rows), t_from)))
            self._next_due_s = float(self._due_s.min()) if len(rows) else math.inf
        if t_to < self._next_due_s:
            return _NO_ROWS, _NO_CODES
        rows = np.flatnonzero(self._due_s <= t_to)
        self._due_s[rows] = model.earliest_crossings(t_to, self._states_at(rows, np.full(len(rows), t_to)))
        self._next_due_s = float(self._due_s.min())
        return rows, self.mode3a[rows]

    def advance(self, now_us: int) -> list[BoardFrame]:
        """Sweep the beam up to now_us: one ASTERIX frame per dwell with plots, one per sector boundary."""
        if self.model is None or self.config is None or now_us <= self.t_us:
            return []
        model, cfg = self.model, self.config
        t0, t_end = self.t_us / 1e6, now_us / 1e6
        # most steps of a 5 ms loop: no target due, no clutter plot and no sector boundary in this turn of the
        # beam, so the sweep below would send nothing and draw nothing: say so in a few comparisons
        if (self._due_s is not None and t_end < self._next_due_s and model.beam(t_end) < model.next_clutter_beam
                and model.next_sector(t_end) <= self._next_sector):
            self.t_us = now_us
            return []
        out: list[BoardFrame] = []
        self.t_us = now_us
        for crossing in model.sectors_crossed(t0, t_end):
            t1 = crossing.t_s
            plots = model.sweep(t0, t1, *self._due_by(model, t0, t1), self._states_at)
            if len(plots):
                out.append(self._plot_frame(plots, cfg))
            kind = CAT034_NORTH_MARKER if crossing.is_north else CAT034_SECTOR_CROSSING
            t_us = round(t1 * 1e6)
            block = asterix.encode_cat034(cfg.sac, cfg.sic, kind, (t_us / 1e6) % SECONDS_PER_DAY,
                                          crossing.azimuth_rad, cfg.scan_period_s)
            out.append(self._frame(FrameType.ASTERIX, t_us, block))
            t0 = t1
        plots = model.sweep(t0, t_end, *self._due_by(model, t0, t_end), self._states_at)
        if len(plots):
            out.append(self._plot_frame(plots, cfg))
        self._next_sector = model.next_sector(t_end)
        return out

    def _plot_frame(self, plots: PlotSet, cfg: SensorConfig) -> BoardFrame:
        n = len(plots)
        first = self.plot_number
        self.plot_number = (first + n) % 4096
        self.plots_sent += n
        t_first_us = math.floor(plots.t_s[0] * 1e6)
        if n <= asterix.SMALL_BLOCK:
            # a dwell's few plots in plain floats: the same operations on the same doubles as the arrays below
            rng, rr = plots.range_m.tolist(), plots.range_rate_mps.tolist()
            block = asterix.encode_cat048_plots(
                cfg.sac, cfg.sic, [t % SECONDS_PER_DAY for t in plots.t_s.tolist()], rng, plots.azimuth_rad.tolist(),
                [cfg.site_z + r * s for r, s in zip(rng, np.sin(plots.elevation_rad).tolist(), strict=True)],
                [v if abs(v) <= MAX_DOPPLER_MPS else math.nan for v in rr], plots.mode3a.tolist(),
                [(first + i) % 4096 for i in range(n)])
            return self._frame(FrameType.ASTERIX, t_first_us, block)
        numbers = (first + np.arange(n)) % 4096
        height = cfg.site_z + plots.range_m * np.sin(plots.elevation_rad)
        # I120 carries ±511 m/s: faster closing speeds are ambiguous, so the plot goes without Doppler
        doppler = np.where(np.abs(plots.range_rate_mps) <= MAX_DOPPLER_MPS, plots.range_rate_mps, np.nan)
        block = asterix.encode_cat048_block(
            cfg.sac, cfg.sic, plots.t_s % SECONDS_PER_DAY, plots.range_m, plots.azimuth_rad, height,
            doppler, plots.mode3a, numbers,
        )
        return self._frame(FrameType.ASTERIX, t_first_us, block)


# --- the board process --------------------------------------------------------------------------------


class BoardClock:
    """Microseconds since this board powered on, as a board's micros() counts."""

    def __init__(self) -> None:
        self.boot_ns = time.monotonic_ns()

    def us(self) -> int:
        return (time.monotonic_ns() - self.boot_ns) // 1000


def serve_pty(board: RadarBoard, step_us: int, baud: int) -> None:
    """Run the board on a pty it creates, announcing the path; pace output at baud if given."""
    master, path = open_raw_pty()
    print(json.dumps({"pty": path}), flush=True)
    clock = BoardClock()
    wire = Wire(-1, master, baud)
    while True:
        wait = wire.push(time.monotonic_ns())
        timeout = step_us / 1e6 if wait is None else min(step_us / 1e6, wait / 1e9)
        ready, _, _ = select.select([master], [], [], timeout)
        out: list[BoardFrame] = []
        if ready:
            try:
                data = os.read(master, 65536)
            except (BlockingIOError, OSError):
                data = b""
            rx = clock.us()
            out += board.receive(data, rx, clock.us())
        out += board.advance(clock.us())
        if out:
            if not wire.pending:
                wire.free_ns = max(wire.free_ns, time.monotonic_ns())
            wire.pending += b"".join(f.data for f in out)


def serve_udp(board: RadarBoard, step_us: int, dest: tuple[str, int], bind: tuple[str, int]) -> None:
    """Run the board as the Pi radar does: ASTERIX datagrams to dest, host frames taken on bind.

    A datagram carries the ASTERIX blocks themselves, as at a real site, and nothing else: over UDP the
    host times plots by their arrival (a site's own clock would be GPS/NTP disciplined), so time-sync and
    identity answers are not sent.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(bind)
    print(json.dumps({"udp": f"{sock.getsockname()[0]}:{sock.getsockname()[1]}"}), flush=True)
    clock = BoardClock()
    while True:
        ready, _, _ = select.select([sock], [], [], step_us / 1e6)
        out: list[BoardFrame] = []
        if ready:
            data, _ = sock.recvfrom(65536)
            rx = clock.us()
            out += board.receive(data, rx, clock.us())
        out += board.advance(clock.us())
        for frame in out:
            if frame.ftype == FrameType.ASTERIX:
                sock.sendto(frame.payload, dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.emulators.radar", description=__doc__.splitlines()[0])
    parser.add_argument("--udp", metavar="HOST:PORT", help="send ASTERIX datagrams here instead of using a pty")
    parser.add_argument("--bind", default="127.0.0.1:0", help="UDP address to take host frames on")
    parser.add_argument("--baud", type=int, default=0, help="pace pty output like a wire at this rate")
    parser.add_argument("--step-us", type=int, default=1000, help="beam update period")
    parser.add_argument("--build", default="dev", help="build id reported in the identity")
    args = parser.parse_args(argv)
    die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    board = RadarBoard(build=args.build)
    try:
        if args.udp:
            host, _, port = args.udp.rpartition(":")
            bhost, _, bport = args.bind.rpartition(":")
            serve_udp(board, args.step_us, (host, int(port)), (bhost, int(bport)))
        else:
            serve_pty(board, args.step_us, args.baud)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
