"""RadarLink: the host end of one radar board link: commands out, plots and service messages in, clock synced."""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from hil.drivers.asterix import AsterixPayload, ServiceEvent
from hil.drivers.framing import (
    Frame,
    FrameType,
    PayloadError,
    RateLimitedLog,
    SensorConfig,
    decode_ident,
    decode_status,
    decode_time_sync_resp,
    encode_frame,
    encode_stimulus,
    encode_time_sync_req,
)
from hil.drivers.plot_batch import PlotBatch
from hil.drivers.timesync import ClockSync
from hil.drivers.transport import Transport, UdpTransport
from hil.errors import LinkError
from hil.ext.decode import (
    LinkDecoder,
    board_to_host_s,
    map_board_times,
    receive_times,
    time_runs,
)

log = logging.getLogger(__name__)

# recorder(link_name, "rx" | "tx", payload_bytes, host_ns, kind "asterix" | "frame"[, annotation]): a received
# ASTERIX payload comes with a 6th argument, a JSON-ready dict (hil.records.recording.Recorder keeps it with the frame)
Recorder = Callable[..., None]
MAX_PENDING_SYNC = 8


class RadarPoll(NamedTuple):
    """What one poll brought: plots (valid until the next poll: copy() to keep) and CAT034 sector crossings
    as (t_s, sector_azimuth_rad, is_north). Unpacks as `plots, sectors = link.poll()`."""

    plots: PlotBatch
    sectors: list[tuple[float, float, bool]]


REJECT_KEYS = ("crc", "length", "escape", "unknown_type", "truncated", "unknown_category", "out_of_range",
               "unsupported_item", "missing_item")


class RadarCounters(dict[str, int]):
    """Flat counters by name (link.counters["crc"]); summary() groups the rejects for summary.json."""

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v for k, v in self.items() if k not in REJECT_KEYS}
        out["rejected"] = {k: self[k] for k in REJECT_KEYS}
        return out


class RadarLink:
    """Host end of one radar board (serial frames or UDP datagrams). poll() never blocks and never raises.

    Plot times: t0 (the board's stamp) mapped to the host clock through ClockSync once a time-sync
    exchange has completed; until then (and on UDP links, which carry no sync) t_s is the receive time t1,
    and such plots are counted as plots_unsynced.
    """

    def __init__(
        self,
        transport: Transport,
        sensor_index: int,
        site_enu: Sequence[float] | npt.ArrayLike,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        recorder: Recorder | None = None,
        name: str | None = None,
        capacity: int = 4096,
    ) -> None:
        self.transport = transport
        self.sensor_index = sensor_index
        self.site_enu = np.asarray(site_enu, dtype=np.float64).reshape(3)
        self.clock_ns = clock_ns
        self.recorder = recorder
        self.name = name or f"radar{sensor_index}"
        self.clock_sync = ClockSync()
        self.ident: str | None = None
        self.board_status: dict[str, int] | None = None
        self._decoder = LinkDecoder(sensor_index, float(self.site_enu[2]), recorder is not None)
        self._batch = PlotBatch.empty(capacity)
        self._datagram = bool(getattr(transport, "is_datagram", False))
        # a deferred poll's received frames, for record_received(): (events, receive ns, batch, result, poll count)
        self._unrecorded: tuple[list[Any], int, PlotBatch, RadarPoll, int] | None = None
        self._tx_seq = 0
        self._token = 0
        self._pending_sync: OrderedDict[int, int] = OrderedDict()
        self._last_decoder = self._decoder.counters  # as of the last change of rejected_total
        self._last_rejected = self._decoder.rejected_total
        self._last_seq_resets = self._decoder.seq_resets
        self._last_board_us = -(2**62)
        self._log = RateLimitedLog(log)
        self.stats = dict.fromkeys(
            ("polls", "bytes_rx", "frames_tx", "link_errors", "sync_requests", "sync_responses", "sync_unmatched",
             "sync_rejected", "board_resets", "bad_payloads", "unexpected_frames", "plots_unsynced", "board_logs"), 0)

    # ---- host -> board ----------------------------------------------------------------------------------

    def _send(self, ftype: FrameType, payload: bytes = b"") -> int:
        now = self.clock_ns()
        wire = encode_frame(ftype, self._tx_seq, now // 1000, payload)
        self._tx_seq = (self._tx_seq + 1) & 0xFFFF
        try:
            self.transport.write(wire)
        except LinkError as e:
            self._link_error(e)
        self.stats["frames_tx"] += 1
        if self.recorder is not None:
            self.recorder(self.name, "tx", wire, now, "frame")
        return now

    def send_config(self, config: SensorConfig) -> None:
        self._send(FrameType.SENSOR_CONFIG, config.encode())

    def send_stimulus(self, ids: npt.ArrayLike, mode3a: npt.ArrayLike, states: npt.ArrayLike) -> None:
        """One truth set (ENU states [n, 6], mode3a -1 = no transponder), in as many frames as it takes."""
        for payload in encode_stimulus(ids, mode3a, states):
            self._send(FrameType.STIMULUS, payload)

    def request_time_sync(self) -> None:
        """Start one clock-sync exchange; poll() consumes the answer."""
        self._token = (self._token + 1) & 0xFFFF_FFFF
        h0 = self._send(FrameType.TIME_SYNC_REQ, encode_time_sync_req(self._token))
        self._pending_sync[self._token] = h0
        self.stats["sync_requests"] += 1
        while len(self._pending_sync) > MAX_PENDING_SYNC:
            self._pending_sync.popitem(last=False)

    def request_ident(self) -> None:
        self._send(FrameType.IDENT_REQ)

    def identify(self, timeout: float = 2.0) -> str:
        """Ask the board who it is and wait (real time) for `name;version;build`; LinkError when it is silent.

        Plots that arrive meanwhile are dropped: identify before a run, not during one.
        """
        self.ident = None
        self.request_ident()
        deadline = time.monotonic() + timeout
        while self.ident is None:
            if time.monotonic() > deadline:
                raise LinkError(f"{self.name}: no IDENT_RESP within {timeout} s")
            self.poll()
            time.sleep(0.001)
        return self.ident

    # ---- board -> host ----------------------------------------------------------------------------------

    def _link_error(self, e: Exception) -> None:
        self.stats["link_errors"] += 1
        self._log.warning("%s: %s", self.name, e)

    def poll(self, defer_record: bool = False) -> RadarPoll:
        """Everything that arrived since the last poll, decoded; plot times on the host clock.

        defer_record: what arrived goes to the recorder at record_received() (the host loop records after its fire
        commands went out, off their critical path), or at the next poll at the latest, before anything else."""
        self.record_received()
        stats = self.stats
        stats["polls"] += 1
        batch = self._batch
        batch.n = 0
        result = RadarPoll(batch, [])
        try:
            self.transport.flush()
            if self._datagram:
                datagrams = cast(UdpTransport, self.transport).read_datagrams()
                now = self.clock_ns()
                events: list = []
                for dg in datagrams:
                    stats["bytes_rx"] += len(dg)
                    events += self._decoder.feed_datagram(dg, now, batch)
            else:
                data = self.transport.read_available()
                now = self.clock_ns()
                if not data:
                    return result  # nothing to decode, count, time or record
                stats["bytes_rx"] += len(data)
                events = self._decoder.feed(data, now, batch)
        except LinkError as e:
            self._link_error(e)
            return result
        span, synced = self._map_times(batch) if batch.n else (None, False)
        if self._check_decoder(span) and synced:
            self._map_times(batch)  # the board restarted: its old clock mapping is meaningless for these plots
        for ev in events:
            self._event(ev, now, result)
        if self.recorder is not None and events:
            if defer_record:
                self._unrecorded = (events, now, batch, result, stats["polls"])
            else:
                self._record_rx(events, now, batch, result, stats["polls"])
        return result

    def record_received(self) -> None:
        """Record what the last poll with defer_record received (nothing if nothing waits)."""
        if self._unrecorded is not None:
            waiting, self._unrecorded = self._unrecorded, None
            self._record_rx(*waiting)

    def _record_rx(self, events: list[Any], now: int, batch: PlotBatch, result: RadarPoll, poll: int) -> None:
        """The poll's received frames to the recorder in arrival order, once their times are known.

        The first ASTERIX payload of a poll is annotated with what replay needs to give the tracker exactly
        what this poll gave it: "poll" (this link's poll count: every radar link is polled once per host loop
        iteration, so equal counts mean one iteration), "plots_t_s" (the plot times of the poll's batch in
        order, as runs [t_s, count]: a frame's plots share its time) and "sectors_t_s" (the CAT034 crossing
        times in order). Later payloads of the poll carry the poll count only.
        """
        assert self.recorder is not None
        first: dict[str, Any] | None = {"poll": poll, "plots_t_s": time_runs(batch),
                                        "sectors_t_s": [float(t) for t, _, _ in result.sectors]}
        for ev in events:
            if isinstance(ev, AsterixPayload):
                self.recorder(self.name, "rx", ev.payload, ev.host_rx_ns, "asterix", first or {"poll": poll})
                first = None
            elif isinstance(ev, Frame):
                self.recorder(self.name, "rx", encode_frame(ev.ftype, ev.seq, ev.t_us, ev.payload), now, "frame")

    def _map_times(self, batch: PlotBatch) -> tuple[tuple[int, int] | None, bool]:
        """Plot times: the board's stamps through the clock sync (as ClockSync.board_to_host_ns maps them), or
        the receive time until there is one. The board stamps' span (earliest, last row's; see board_time_span),
        and whether the clock sync mapped them."""
        if self._datagram or not self.clock_sync.synced:
            self.stats["plots_unsynced"] += batch.n
            return receive_times(batch), False
        return map_board_times(batch, *self.clock_sync.mapping()), True

    def _board_time_s(self, board_t_us: int, host_rx_ns: int) -> float:
        if self._datagram or not self.clock_sync.synced:
            return host_rx_ns / 1e9
        return float(board_to_host_s(board_t_us, *self.clock_sync.mapping()))

    def _event(self, ev: Frame | ServiceEvent | AsterixPayload, now: int, result: RadarPoll) -> None:
        if isinstance(ev, ServiceEvent):
            m = ev.message
            az = 0.0 if math.isnan(m.sector_azimuth_rad) and m.is_north else m.sector_azimuth_rad
            result.sectors.append((self._board_time_s(ev.board_t_us, ev.host_rx_ns), az, m.is_north))
            return
        if isinstance(ev, AsterixPayload):
            return  # recorded by _record_rx, with its plot times
        try:
            if ev.ftype == FrameType.TIME_SYNC_RESP:
                token, b_rx, b_tx = decode_time_sync_resp(ev.payload)
                h0 = self._pending_sync.pop(token, None)
                if h0 is None:
                    self.stats["sync_unmatched"] += 1
                elif self.clock_sync.add_sample(h0, b_rx, b_tx, now):
                    self.stats["sync_responses"] += 1
                else:
                    self.stats["sync_rejected"] += 1
            elif ev.ftype == FrameType.IDENT_RESP:
                self.ident = str(decode_ident(ev.payload))
            elif ev.ftype == FrameType.STATUS:
                self.board_status = vars(decode_status(ev.payload))
            elif ev.ftype == FrameType.LOG:
                self.stats["board_logs"] += 1
                log.info("%s board: %s", self.name, ev.payload.decode("ascii", "replace"))
            else:
                self.stats["unexpected_frames"] += 1
        except PayloadError as e:
            self.stats["bad_payloads"] += 1
            self._log.warning("%s: %s", self.name, e)

    def _check_decoder(self, span: tuple[int, int] | None) -> bool:
        """The decoder's news after a poll whose plots' board stamps span span (earliest, last row's; None: no
        plots): a board restart (True: its clock sync starts over) and rejections (logged)."""
        decoder = self._decoder
        clock_back = False
        if span is not None:
            earliest_us, last_us = span
            # A seq jump can pass for loss when the board had sent more than 32767 frames: board time running
            # back by more than a second is the second sign of a restart.
            clock_back = not self._datagram and earliest_us < self._last_board_us - 1_000_000
            self._last_board_us = last_us
        seq_resets = decoder.seq_resets
        restarted = seq_resets > self._last_seq_resets or clock_back
        if restarted:
            # The board restarted: its clock did too, so the old offset is meaningless.
            self.stats["board_resets"] += 1
            self._log.warning("%s: board restarted (frame sequence jumped): clock sync starts over", self.name)
            self.clock_sync.reset()
            self._pending_sync.clear()
            self.request_time_sync()
        self._last_seq_resets = seq_resets
        rejected_total = decoder.rejected_total
        if rejected_total != self._last_rejected:  # the counters' dict only when it has news
            now, last = decoder.counters, self._last_decoder
            self._last_decoder, self._last_rejected = now, rejected_total
            rejected = {k: now[k] - last[k] for k in (*REJECT_KEYS, "plots_dropped") if now[k] > last[k]}
            self._log.warning("%s: rejected %s", self.name, ", ".join(f"{v} {k}" for k, v in rejected.items()))
        return restarted

    # ---- summary ----------------------------------------------------------------------------------------

    @property
    def counters(self) -> RadarCounters:
        """Decoder and link counters under stable names (for summary.json: counters.summary())."""
        return RadarCounters({**self._decoder.counters, **self.stats,
                              "tx_dropped_bytes": int(getattr(self.transport, "tx_dropped_bytes", 0)),
                              "clock_resets": self.clock_sync.resets})

    def fileno(self) -> int:
        """The transport's OS handle for select/add_reader; -1 when it has none (BytePipe, loop://)."""
        return self.transport.fileno()

    def close(self) -> None:
        self.record_received()
        self.transport.close()
