"""ClockSync: a board's microsecond clock against the host's nanosecond clock (docs/PROTOCOLS.md §3).

Feed it request/response exchanges: the host sends at h0, the board stamps receipt b_rx and reply b_tx,
the host receives at h1. It keeps the lowest round trips of a sliding window, fits offset and (once the
samples span enough time) drift, rejects samples that contradict the fit, and reports an uncertainty.

The estimate is computed lazily, so feeding a sample costs microseconds even at kHz exchange rates: while
the window cannot hold a drift fit (fewer than min_drift_samples, or spanning less than min_drift_span_s)
the estimate is the lowest round trip's sample, worked out when something reads it, exactly as an eager
refit would have left it; once a fit is possible it is refitted at once, sample by sample, until it fits;
with a fitted drift it is refitted every REFIT_EVERY samples or REFIT_NS of host time (readers refit on
demand), and a new sample is checked against a fit at most that old.

    sync = ClockSync()
    sync.add_sample(h0_ns, b_rx_us, b_tx_us, h1_ns)
    t1_ns = sync.board_to_host_ns(board_t_us)          # scalars or numpy arrays
    sync.uncertainty_ns                                 # ± bound of that mapping, ns

Convention: board_ns = host_ns + offset(host_ns), offset(h) = offset_ns + drift * (h - ref_host_ns).
A launcher exchange (read of BOARD_TIME_US) is a sample with b_rx_us == b_tx_us.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple, overload

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


class SyncSample(NamedTuple):  # a tuple: made for every exchange, at kHz rates
    host_mid_ns: int  # (h0 + h1) / 2
    offset_ns: float  # board - host at host_mid_ns
    round_trip_ns: int  # (h1 - h0) - (b_tx - b_rx)


def _round_trip(s: SyncSample) -> int:
    return s.round_trip_ns


class ClockSync:
    """Offset, drift and uncertainty of one board clock; see the module docstring for the model."""

    STEP_AFTER = 5  # this many contradicting samples in a row mean the board clock stepped: start over

    def __init__(
        self,
        window: int = 64,
        keep_fraction: float = 0.5,
        min_drift_span_s: float = 5.0,
        min_drift_samples: int = 6,
        max_drift_ppm: float = 5000.0,
    ) -> None:
        """window: samples remembered; keep_fraction: share of them (lowest round trips) the estimate uses;
        drift is fitted once kept samples span min_drift_span_s; until then the drift is unknown and the
        uncertainty grows at max_drift_ppm (an Uno's ceramic resonator is good to about ±0.5 %)."""
        self.window, self.keep_fraction = window, keep_fraction
        self.min_drift_span_ns = int(min_drift_span_s * 1e9)
        self.min_drift_samples, self.max_drift_ppm = min_drift_samples, max_drift_ppm
        self.samples_accepted = 0
        self.samples_rejected = 0
        self.resets = 0  # explicit resets and detected clock steps
        self.reset()
        self.resets = 0

    def reset(self) -> None:
        """Forget everything (the board restarted its clock)."""
        self._samples: deque[SyncSample] = deque(maxlen=self.window)
        self.resets += 1
        self._ref_ns = 0
        self._offset_ns = 0.0
        self._drift = 0.0  # dimensionless (ns per ns)
        self._drift_sigma = self.max_drift_ppm * 1e-6
        self._drift_fitted = False
        self._base_uncertainty_ns = float("inf")
        self._last_host_ns = 0
        self._used: list[SyncSample] = []
        self._contradictions = 0
        self._stale = 0  # samples taken in since the last estimate
        self._estimated_ns = 0  # host time of the last estimate
        self._first_mid_ns = self._last_mid_ns = 0  # of the samples in the window while they come in time order
        self._in_order = True

    # ---- input ----------------------------------------------------------------------------------------

    def add_sample(self, h0_ns: int, b_rx_us: int, b_tx_us: int, h1_ns: int) -> bool:
        """One exchange; returns False when it is impossible (negative round trip) or contradicts the fit."""
        rtt = (h1_ns - h0_ns) - (b_tx_us - b_rx_us) * 1000
        if h1_ns < h0_ns or b_tx_us < b_rx_us or rtt < 0:
            self.samples_rejected += 1
            return False
        mid2 = h0_ns + h1_ns
        mid = mid2 // 2
        # integer difference first, so that large clock values keep ns resolution
        sample = SyncSample(mid, ((b_rx_us + b_tx_us) * 1000 - mid2) / 2.0, rtt)
        if self._drift_fitted and abs(self._residual(sample)) > sample.round_trip_ns / 2 + self._base_uncertainty_ns:
            # The offset must lie within ±rtt/2 of the truth; this one cannot, so the board stamped it wrong,
            # unless it keeps happening: then the board clock itself jumped, and the old fit is what is wrong.
            self._contradictions += 1
            if self._contradictions < self.STEP_AFTER:
                self.samples_rejected += 1
                return False
            self.reset()
        self._contradictions = 0
        samples = self._samples
        if mid < self._last_mid_ns and samples:
            self._in_order = False
        samples.append(sample)
        self._first_mid_ns, self._last_mid_ns = samples[0].host_mid_ns, mid
        self.samples_accepted += 1
        if h1_ns > self._last_host_ns:
            self._last_host_ns = h1_ns
        self._stale += 1
        # A fit costs ~100 µs. Until the drift is fitted, fit as soon as the window could hold a fit (then the
        # next sample is checked against it); before that the estimate is the best round trip, which readers
        # work out on demand. With a fitted drift, refit every few samples (readers refit on demand).
        if self._drift_fitted:
            if self._stale >= self.REFIT_EVERY or h1_ns - self._estimated_ns >= self.REFIT_NS:
                self._refresh()
        elif self._could_fit_drift():
            self._refresh()
        return True

    REFIT_EVERY = 16
    REFIT_NS = 1_000_000_000

    def _refresh(self) -> None:
        if self._stale and self._samples:
            self._estimate()
            self._stale = 0
            self._estimated_ns = self._last_host_ns

    def _could_fit_drift(self) -> bool:
        """Whether the window holds enough samples over enough time for the kept ones to fit a drift (a
        necessary condition: the kept samples are some of them)."""
        samples = self._samples
        if len(samples) < self.min_drift_samples:
            return False
        if self._in_order:
            span = self._last_mid_ns - self._first_mid_ns
        else:
            span = max(s.host_mid_ns for s in samples) - min(s.host_mid_ns for s in samples)
        return span >= self.min_drift_span_ns

    def _residual(self, s: SyncSample) -> float:
        return s.offset_ns - (self._offset_ns + self._drift * (s.host_mid_ns - self._ref_ns))

    def _estimate(self) -> None:
        if not self._could_fit_drift():
            # what the general path below comes to without a fit, in a few µs: the lowest round trip is always
            # among the kept samples, and min() takes the first of equals in either list
            best = min(self._samples, key=_round_trip)
            self._ref_ns, self._offset_ns = best.host_mid_ns, best.offset_ns
            self._used = [best]
            self._base_uncertainty_ns = best.round_trip_ns / 2.0
            return
        samples = list(self._samples)
        rtts = np.array([s.round_trip_ns for s in samples], dtype=np.float64)
        limit = np.quantile(rtts, self.keep_fraction, method="higher") if len(rtts) > 1 else rtts[0]
        kept = [s for s in samples if s.round_trip_ns <= limit]
        span = max(s.host_mid_ns for s in kept) - min(s.host_mid_ns for s in kept)
        if len(kept) >= self.min_drift_samples and span >= self.min_drift_span_ns:
            kept = self._fit(kept)
            if self._drift_fitted:
                best_half = min(k.round_trip_ns for k in kept) / 2
                kept = self._fit([s for s in kept if abs(self._residual(s)) <= s.round_trip_ns / 2 + best_half])
        else:
            best = min(kept, key=lambda s: s.round_trip_ns)
            self._ref_ns, self._offset_ns = best.host_mid_ns, best.offset_ns
            # Drift is neither fitted nor known: keep a fitted one from before if there is one.
            kept = [best]
        if not kept:  # the fit rejected every sample: fall back on the best round trip alone
            kept = [min(samples, key=lambda s: s.round_trip_ns)]
        self._used = kept
        half = np.array([s.round_trip_ns / 2.0 for s in kept])
        w = 1.0 / np.maximum(half, 1.0) ** 2
        self._base_uncertainty_ns = float(np.sum(w * half) / np.sum(w))

    def _fit(self, kept: list[SyncSample]) -> list[SyncSample]:
        if len(kept) < 3:
            return kept
        ref = max(s.host_mid_ns for s in kept)
        t = np.array([s.host_mid_ns - ref for s in kept], dtype=np.float64)
        y = np.array([s.offset_ns for s in kept])
        half = np.array([max(s.round_trip_ns / 2.0, 1.0) for s in kept])
        w = 1.0 / half**2
        sw, swt, swy = w.sum(), (w * t).sum(), (w * y).sum()
        swtt, swty = (w * t * t).sum(), (w * t * y).sum()
        det = sw * swtt - swt * swt
        if det <= 0:
            return kept
        drift = (sw * swty - swt * swy) / det
        offset = (swtt * swy - swt * swty) / det
        self._ref_ns, self._offset_ns, self._drift, self._drift_fitted = ref, float(offset), float(drift), True
        # Each offset is good to about ±rtt/2 (uniform-ish): slope error from those weights, doubled for margin.
        self._drift_sigma = float(2.0 * np.sqrt(sw / det) / np.sqrt(3.0))
        return kept

    # ---- state ----------------------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return bool(self._samples)

    @property
    def offset_ns(self) -> float:
        """board - host at the latest sample's time."""
        return self.offset_at(self._last_host_ns)

    def offset_at(self, host_ns: int) -> float:
        self._refresh()
        return self._offset_ns + self._drift * (host_ns - self._ref_ns)

    @property
    def drift_ppm(self) -> float:
        """How much faster the board clock runs than the host's (0 until fitted)."""
        self._refresh()
        return self._drift * 1e6

    @property
    def drift_fitted(self) -> bool:
        self._refresh()
        return self._drift_fitted

    @property
    def uncertainty_ns(self) -> float:
        """± bound of the mapping at the latest sample's time (inf before the first sample)."""
        return self.uncertainty_at(self._last_host_ns)

    def uncertainty_at(self, host_ns: int) -> float:
        """Half the round trip the estimate rests on, plus what the drift error adds since its reference."""
        self._refresh()
        return self._base_uncertainty_ns + self._drift_sigma * abs(host_ns - self._ref_ns)

    @property
    def round_trip_min_ns(self) -> int:
        return min((s.round_trip_ns for s in self._samples), default=0)

    @property
    def round_trip_median_ns(self) -> float:
        return float(np.median([s.round_trip_ns for s in self._samples])) if self._samples else 0.0

    def summary(self) -> dict[str, float | int | bool]:
        """Stable field names for a run summary."""
        self._refresh()
        return {
            "synced": self.synced, "offset_ns": self.offset_ns, "uncertainty_ns": self.uncertainty_ns,
            "drift_ppm": self.drift_ppm, "drift_fitted": self._drift_fitted,
            "round_trip_min_ns": self.round_trip_min_ns, "round_trip_median_ns": self.round_trip_median_ns,
            "samples_accepted": self.samples_accepted, "samples_rejected": self.samples_rejected,
            "samples_used": len(self._used), "resets": self.resets,
        }

    # ---- mapping --------------------------------------------------------------------------------------

    def mapping(self) -> tuple[int, float, float]:
        """(ref_ns, offset_ns, drift) of board_to_host_ns as it stands now (refitted first if it is due): what the
        decode kernel maps a whole batch of board stamps with (hil.ext.decode.map_board_times), exactly as
        board_to_host_ns would."""
        self._refresh()
        return self._ref_ns, self._offset_ns, self._drift

    @overload
    def board_to_host_ns(self, b_us: int) -> int: ...
    @overload
    def board_to_host_ns(self, b_us: IntArray) -> IntArray: ...

    def board_to_host_ns(self, b_us: int | IntArray) -> int | IntArray:
        """Host time of a board timestamp (ns). Big values stay integers: only differences go through floats."""
        # board = h + off + d (h - ref)  =>  h - ref = (board - ref - off) / (1 + d)
        self._refresh()
        rel = np.asarray(b_us, dtype=np.int64) * 1000 - self._ref_ns
        host = self._ref_ns + np.rint((rel - self._offset_ns) / (1.0 + self._drift)).astype(np.int64)
        return int(host) if np.ndim(host) == 0 else host

    @overload
    def host_to_board_us(self, h_ns: int) -> int: ...
    @overload
    def host_to_board_us(self, h_ns: IntArray) -> IntArray: ...

    def host_to_board_us(self, h_ns: int | IntArray) -> int | IntArray:
        self._refresh()
        rel = np.asarray(h_ns, dtype=np.int64) - self._ref_ns
        board_ns = self._ref_ns + np.rint(rel * (1.0 + self._drift) + self._offset_ns).astype(np.int64)
        out = board_ns // 1000
        return int(out) if np.ndim(out) == 0 else out
