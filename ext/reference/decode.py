"""Pure-Python reference of hil.ext.decode: LinkDecoder built on the framing and ASTERIX drivers, and the batch
functions in numpy as a radar link computed them before they moved into the kernel (tests only)."""

from __future__ import annotations

from itertools import pairwise
from typing import TypeAlias

import numpy as np

from hil.drivers.asterix import (
    AsterixError,
    AsterixMissingItem,
    AsterixOutOfRange,
    AsterixPayload,
    AsterixTruncated,
    AsterixUnknownCategory,
    AsterixUnsupported,
    Cat048Plot,
    ServiceEvent,
    decode_blocks,
)
from hil.drivers.framing import Frame, FrameDecoder, FrameType
from hil.drivers.plot_batch import PlotBatch, elevation_from_height

ASTERIX_REASONS: dict[type[AsterixError], str] = {
    AsterixTruncated: "truncated",
    AsterixUnknownCategory: "unknown_category",
    AsterixOutOfRange: "out_of_range",
    AsterixUnsupported: "unsupported_item",
    AsterixMissingItem: "missing_item",
}

Event: TypeAlias = Frame | ServiceEvent | AsterixPayload


class LinkDecoder:
    """Same contract as hil.ext.decode.LinkDecoder: plots go into the caller's PlotBatch, the rest comes back."""

    def __init__(self, sensor: int = 0, site_z_m: float = 0.0, keep_asterix: bool = False) -> None:
        self.sensor, self.site_z_m, self.keep_asterix = sensor, site_z_m, keep_asterix
        self._frames = FrameDecoder(name=f"reference{sensor}")
        self._asterix = dict.fromkeys(["asterix_ok", *ASTERIX_REASONS.values(), "plots_ok", "plots_dropped"], 0)

    @property
    def counters(self) -> dict[str, int]:
        c = self._frames.counters
        return {"frames_ok": c.frames_ok, **c.rejected, "bytes_discarded": c.bytes_discarded, "seq_gaps": c.seq_gaps,
                "frames_lost": c.frames_lost, "seq_resets": c.seq_resets, **self._asterix, "duplicates": c.duplicates}

    def feed(self, data: bytes, host_rx_ns: int, batch: PlotBatch) -> list[Event]:
        events: list[Event] = []
        for frame in self._frames.feed(data):
            if frame.ftype == FrameType.ASTERIX:
                # board_t_us is int64, as in the kernel: a u64 stamp past 2**63 wraps negative
                t_us = frame.t_us - (1 << 64) if frame.t_us >= 1 << 63 else frame.t_us
                events += self._asterix_payload(frame.payload, t_us, host_rx_ns, batch, framed=True)
            else:
                events.append(frame)
        return events

    def feed_datagram(self, data: bytes, host_rx_ns: int, batch: PlotBatch) -> list[Event]:
        """One UDP datagram of raw ASTERIX blocks; board time is each record's I140 time of day in µs."""
        return self._asterix_payload(bytes(data), 0, host_rx_ns, batch, framed=False)

    def _asterix_payload(self, payload: bytes, t_us: int, host_rx_ns: int, batch: PlotBatch,
                         framed: bool) -> list[Event]:
        events: list[Event] = [AsterixPayload(host_rx_ns, payload)] if self.keep_asterix else []
        try:
            records = decode_blocks(payload)
        except AsterixError as e:
            self._asterix[ASTERIX_REASONS[type(e)]] += 1
            return events
        self._asterix["asterix_ok"] += 1
        for r in records:
            board_t_us = t_us if framed else (round(r.tod_s * 128) * 1_000_000) // 128
            if not isinstance(r, Cat048Plot):
                events.append(ServiceEvent(board_t_us, host_rx_ns, r))
                continue
            if batch.n >= batch.capacity:
                self._asterix["plots_dropped"] += 1
                continue
            i = batch.n
            batch.t_s[i] = float("nan")
            batch.sensor[i] = self.sensor
            batch.range_m[i] = r.range_m
            batch.azimuth_rad[i] = r.azimuth_rad
            batch.elevation_rad[i] = elevation_from_height(r.height_m, r.range_m, self.site_z_m)
            batch.range_rate_mps[i] = r.range_rate_mps
            batch.mode3a[i] = r.mode3a
            batch.board_t_us[i] = board_t_us
            batch.host_rx_ns[i] = host_rx_ns
            batch.n += 1
            self._asterix["plots_ok"] += 1
        return events


# ---- a decoded batch's plot times (as hil.drivers.radar_link did them in numpy) -------------------------------


def map_board_times(batch: PlotBatch, ref_ns: int, offset_ns: float, drift: float) -> tuple[int, int] | None:
    """t_s of rows [0, n) from board_t_us, as hil.drivers.timesync.ClockSync.board_to_host_ns maps them, / 1e9;
    returns board_time_span (None: no rows)."""
    rel = batch.board_t_us[: batch.n].astype(np.int64) * 1000 - ref_ns
    host = ref_ns + np.rint((rel - offset_ns) / (1.0 + drift)).astype(np.int64)
    batch.t_s[: batch.n] = host / 1e9
    return board_time_span(batch) if batch.n else None


def board_to_host_s(board_us: int, ref_ns: int, offset_ns: float, drift: float) -> float:
    rel = np.asarray(board_us, dtype=np.int64) * 1000 - ref_ns
    return int(ref_ns + np.rint((rel - offset_ns) / (1.0 + drift)).astype(np.int64)) / 1e9


def receive_times(batch: PlotBatch) -> tuple[int, int] | None:
    batch.t_s[: batch.n] = batch.host_rx_ns[: batch.n] / 1e9
    return board_time_span(batch) if batch.n else None


def board_time_span(batch: PlotBatch) -> tuple[int, int]:
    stamps = batch.board_t_us[: batch.n]
    return int(stamps.min()), int(stamps[-1])


def time_runs(batch: PlotBatch) -> list[list[float | int]]:
    t_s = batch.t_s[: batch.n]
    if not len(t_s):
        return []
    edges = [0, *(np.flatnonzero(t_s[1:] != t_s[:-1]) + 1).tolist(), len(t_s)]
    return [[float(t_s[a]), b - a] for a, b in pairwise(edges)]


def run_times(batch: PlotBatch, start_s: float) -> tuple[np.ndarray, int, bool]:
    """What hil.ext.decode.run_times returns: the plots' run times, the latest receive time, whether in order."""
    t = batch.t_s[: batch.n]
    rx = batch.host_rx_ns[: batch.n]
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, as the kernel's C gives it, without a word
        run_t = t - start_s
    return run_t, int(rx.max()) if batch.n else 0, not bool((t[1:] < t[:-1]).any())
