"""A plant on its own: truth, the emulated boards and the engagement model, scoring whatever host talks to the boards.

`hil plant` runs it. The plant stands where a radar target generator stands on a bench: in the middle of each radar
link (the board's pty <-> the plant <-> a pty for the host). It sends each radar board its SENSOR_CONFIG and the truth
at 10 Hz itself and passes everything else through: the board's bytes to the host unchanged, the host's frames to the
board. On the way it reads the board's plots (when each left the board, which true object it came from). It reads the
launcher boards' own launch reports (the launch lines of their processes), flies the rounds, and scores the host's
system tracks when the host publishes them as ASTERIX CAT062 over UDP. docs/PLANT.md says what every figure means.

    plant = Plant(PlantOptions(scenario, rig, seed=1, out_dir=Path("runs/p")))
    plant.start()        # boards up; announces where each listens; writes the host's rig file
    summary = plant.run()  # waits for a host, runs the scenario from its first byte, scores, stops the boards
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import select
import signal
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import FrameType as StackFrame
from typing import Any, NamedTuple

import numpy as np

from hil.clock import LOOP_PERIOD_NS
from hil.drivers.asterix import AsterixPayload
from hil.drivers.cat062 import SystemTrackReceiver, SystemTracks, SystemTrackStatus
from hil.drivers.framing import Frame, FrameDecoder, FrameType, encode_frame, encode_stimulus
from hil.drivers.plot_batch import PlotBatch
from hil.drivers.transport import SerialTransport, open_transport
from hil.emulators.launcher import LaunchEvents
from hil.emulators.wire import open_raw_pty
from hil.errors import ConfigError, LinkError
from hil.ext.decode import LinkDecoder
from hil.geo import polar_to_enu
from hil.measure.latency import StageLatency
from hil.measure.verdict import criteria_from, judge, merged
from hil.plant.boards import start_mock_launcher, start_mock_radar
from hil.plant.engagement import EngagementModel
from hil.plant.outcomes import GOSPA_ALPHA, GOSPA_C_M, GOSPA_P, TrackScorer, aim_of_launch, outcomes, round_detail
from hil.plant.radars import STIMULUS_PERIOD_NS, config_from_spec
from hil.procutil import Child, board_cpus, process_identity
from hil.records.runfolder import RunWriter, event_row
from hil.rig import BoardSpec, Rig, SafeTime
from hil.scenario import RadarSpec, Scenario

log = logging.getLogger("hil.plant")

Recorder = Callable[..., None]  # hil.records.recording.Recorder.record

SCORE_EVERY_S = 0.9  # a system-track update is scored when at least this much newer than the last one scored
JOURNAL_PERIOD_NS = 3_000_000_000  # the summary so far reaches the run folder this often (a killed plant keeps it)
STATUS_PERIOD_NS = 1_000_000_000
SHUTDOWN_S = 5.0  # after the duration, the longest the plant waits for the host's last launches before it stops
QUIET_S = 1.0  # ... and it stops sooner, once no host byte has come on any radar link for this long
TO_HOST_BACKLOG = 1 << 20  # board bytes kept for a host that does not read them; beyond, dropped and counted
PLOT_GATE_SIGMAS = 5.0  # a plot came from the nearest true object within this many of its radar's sigmas
PLOT_GATE_MIN_M = 100.0
PLOTS_KEPT = 32  # per true object, when its newest plots left the board
WIRE_STAGE = "sensor_to_shooter_wire"
DAY_S = 86_400.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class PlantOptions:
    scenario: Scenario
    rig: Rig
    seed: int
    out_dir: Path
    duration_s: float | None = None  # default: the scenario's
    wait_s: float = 60.0  # how long to wait for a host's first byte
    record: bool = True  # recording.pcapng of the radar links as the plant sees them
    report: bool = True  # report.html at the end
    announce: Callable[[str], None] = print  # where each board listens, one line each
    note: Callable[[str], None] | None = None  # progress: a host came, the run ended
    status: Callable[[dict[str, Any]], None] | None = None  # once a second while the scenario runs
    criteria: dict[str, Any] = field(default_factory=dict)  # over the rig's and the scenario's (hil.measure.verdict)
    board_cpus: list[int] | None = None  # the CPUs the emulated boards start on (None: wherever this process runs)
    realtime: list[Any] = field(default_factory=list)  # where the plant and its boards run, as the summary says it


class _Tracks(NamedTuple):
    """System tracks in the shape RunWriter.metrics reads."""

    track_id: np.ndarray
    state: np.ndarray


# --- the boards ---------------------------------------------------------------------------------------


class RadarTap:
    """One radar link with the plant in the middle: the board's own pty on one side, a pty for the host on the other.

    Board to host, every byte passes unchanged and at once; the plant decodes a copy to see the plots go by. Host to
    board, the host's frames pass with their type, time stamp and payload unchanged but renumbered in one frame
    sequence with the plant's own (SENSOR_CONFIG, STIMULUS): a board counts one sender's sequence, and two senders
    interleaved in it would read as a restart at every switch. A host's own SENSOR_CONFIG or STIMULUS is not passed
    on (the plant owns truth) and is counted; bytes from the host that are no frame are dropped, as the board would.
    """

    def __init__(self, index: int, spec: RadarSpec, board_url: str, baud: int, recorder: Recorder | None) -> None:
        self.index, self.spec, self.name = index, spec, spec.name
        self.board_url = board_url
        transport = open_transport(board_url, baudrate=baud)
        assert isinstance(transport, SerialTransport)  # a pty path always opens one
        self.board = transport
        self.host_fd, self.host_path = open_raw_pty()
        self.recorder = recorder
        self._host_frames = FrameDecoder(f"{spec.name} (from the host)", log)
        self._board_frames = LinkDecoder(index, float(spec.site[2]), recorder is not None)
        self.batch = PlotBatch.empty(4096)
        self._to_host = bytearray()
        self._seq = 0
        self.counts: Counter[str] = Counter()
        self.last_host_ns = 0  # when the newest bytes came from the host
        self.last_board_ns = 0  # when the newest bytes came from the board
        self.failed = ""  # why the board's side stopped working (its process gone): no longer read or written

    @property
    def board_fd(self) -> int:
        return self.board.fileno()

    @property
    def to_host_pending(self) -> bool:
        return bool(self._to_host)

    # ---- host -> board --------------------------------------------------------------------------------

    def read_host(self, now_ns: int) -> list[Frame]:
        """The host's bytes waiting on its pty, as whole frames (a frame cut between reads waits for its end)."""
        data = bytearray()
        for _ in range(64):
            try:
                chunk = os.read(self.host_fd, 65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:  # the plant keeps the pty's other end open, so this is not a host hanging up
                self.counts["host_read_errors"] += 1
                log.debug("%s: reading the host's pty: %s", self.name, e)
                break
            if not chunk:
                break
            data += chunk
        if not data:
            return []
        self.counts["bytes_from_host"] += len(data)
        self.last_host_ns = now_ns
        return self._host_frames.feed(data)

    def pass_to_board(self, frames: list[Frame], now_ns: int) -> None:
        for f in frames:
            if f.ftype in (FrameType.SENSOR_CONFIG, FrameType.STIMULUS):
                if not self.counts["host_truth_frames_dropped"]:
                    log.warning("%s: the host sent %s: not passed on (the plant sends the radar its truth)",
                                self.name, FrameType(f.ftype).name)
                self.counts["host_truth_frames_dropped"] += 1
                continue
            self._write_board(f.ftype, f.t_us, f.payload, now_ns, "host")

    def send(self, ftype: FrameType, payload: bytes, now_ns: int) -> None:
        """A frame of the plant's own to the board, stamped with the plant's clock."""
        self._write_board(ftype, now_ns // 1000, payload, now_ns, "plant")

    def _write_board(self, ftype: int, t_us: int, payload: bytes, now_ns: int, sender: str) -> None:
        if self.failed:
            self.counts["frames_not_sent"] += 1
            return
        wire = encode_frame(ftype, self._seq, t_us, payload)
        self._seq = (self._seq + 1) & 0xFFFF
        try:
            self.board.write(wire)
        except LinkError as e:
            self.counts["board_write_errors"] += 1
            self.failed = str(e)
            log.warning("%s: %s", self.name, e)
        self.counts[f"frames_{sender}_to_board"] += 1
        if self.recorder is not None:
            self.recorder(self.name, "tx", wire, now_ns, "frame", {"from": sender})

    # ---- board -> host --------------------------------------------------------------------------------

    def read_board(self, now_ns: int) -> PlotBatch:
        """The board's bytes on their way to the host; returns the plots among them (valid until the next read)."""
        batch = self.batch
        batch.n = 0
        try:
            self.board.flush()
            data = self.board.read_available()
        except LinkError as e:
            self.counts["board_read_errors"] += 1
            self.failed = self.failed or str(e)
            log.warning("%s: %s", self.name, e)
            return batch
        if not data:
            return batch
        self.counts["bytes_to_host"] += len(data)
        self.last_board_ns = now_ns
        if len(self._to_host) + len(data) > TO_HOST_BACKLOG:
            self.counts["bytes_to_host_dropped"] += len(data)
        else:
            self._to_host += data
            self.flush_to_host()
        events = self._board_frames.feed(data, now_ns, batch)
        if self.recorder is not None:
            for ev in events:
                if isinstance(ev, AsterixPayload):
                    self.recorder(self.name, "rx", ev.payload, ev.host_rx_ns, "asterix")
                elif isinstance(ev, Frame):
                    self.recorder(self.name, "rx", encode_frame(ev.ftype, ev.seq, ev.t_us, ev.payload), now_ns,
                                  "frame")
        return batch

    def flush_to_host(self) -> None:
        while self._to_host:
            try:
                n = os.write(self.host_fd, self._to_host)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.counts["bytes_to_host_dropped"] += len(self._to_host)
                self._to_host.clear()
                log.warning("%s: writing to the host's pty: %s", self.name, e)
                return
            del self._to_host[:n]

    def summary(self) -> dict[str, Any]:
        decoded = self._board_frames.counters
        return {**{k: self.counts[k] for k in sorted(self.counts)},
                "from_the_board": {k: decoded[k] for k in ("frames_ok", "asterix_ok", "plots_ok", "plots_dropped",
                                                           "seq_gaps", "frames_lost", "crc", "bytes_discarded")},
                "from_the_host_rejected": dict(self._host_frames.counters.rejected)}

    def close(self) -> None:
        self.board.close()
        os.close(self.host_fd)


@dataclass
class LauncherBoard:
    """A launcher emulator process: the host reaches it at url; its launch lines come to the plant."""

    index: int
    name: str
    spec: BoardSpec
    url: str  # the free end of its null-modem cable (a pty path), or tcp://127.0.0.1:PORT
    process: Child
    launches: LaunchEvents
    safe: SafeTime = field(default_factory=SafeTime)  # SAFE after it first armed, from the board's state lines
    watchdog_trips: int = 0
    armed: bool = False  # as its last state line said
    states_seen: int = 0  # of launches.states

    def take_states(self, now_ns: int, run_over: bool) -> None:
        """The board's state lines read since the last call (received at now_ns: the board prints them at once);
        run_over: the scenario's time is up, and what the host does to the board now (make it SAFE) is not the
        run's."""
        if not run_over:
            for change in self.launches.states[self.states_seen:]:
                self.armed = change.state == "ARMED"
                self.watchdog_trips += change.cause == "watchdog"
                self.safe.note(now_ns, self.armed)
        self.states_seen = len(self.launches.states)


def _start_radar(name: str, rig: Rig, children: list[Child]) -> str:
    return str(start_mock_radar(name, rig, children).info["pty"])


def _start_launcher(index: int, name: str, spec: BoardSpec, rig: Rig, children: list[Child]) -> LauncherBoard:
    child, url = start_mock_launcher(name, spec, rig, children)
    assert child.proc.stdout is not None
    return LauncherBoard(index, name, spec, url, child, LaunchEvents(child.proc.stdout.fileno()))


def host_rig_text(plant: Plant) -> str:
    """The rig file a host opens the plant's boards with (plant = "external"; every board where the plant serves it)."""
    q = json.dumps  # a JSON string is a TOML basic string
    rig = plant.options.rig
    lines = [
        "# Written by hil plant for a host under test: where each board of the running plant listens, and where the",
        "# plant takes the host's system tracks (ASTERIX CAT062 over UDP). Valid while that plant runs.",
        f"name = {q('plant-' + plant.scenario.name)}",
        f"description = {q('the boards of hil plant ' + plant.scenario.name + ', pid ' + str(os.getpid()))}",
        'plant = "external"',
        f"system_tracks = {q(plant.system_tracks_url)}",
        f"rearm = {q(rig.rearm)}",
        f"rearm_holdoff_s = {rig.rearm_holdoff_s}",
        f"rearm_max_per_min = {rig.rearm_max_per_min}",
        "",
    ]
    process = process_identity()
    if process:  # where /proc says which process this is
        lines += [
            "# the plant this file is valid for (hil host refuses it once that process is gone), and what it runs:",
            "# hil host takes the scenario and the duration from here unless told otherwise",
            "[plant_run]",
            f"process = {q(process)}",
            f"scenario = {q(plant.scenario.name)}",
            f"scenario_file = {q(str(Path(plant.scenario.source).resolve()))}",
            f"duration_s = {plant.duration_s!r}",
            "",
        ]
    for tap in plant.radars:
        lines += ["[[radar]]", f"name = {q(tap.name)}", 'board = "serial"', f"port = {q(tap.host_path)}", ""]
    for lb in plant.launchers:
        lines += ["[[launcher]]", f"name = {q(lb.name)}"]
        if lb.url.startswith("tcp://"):
            lines += ['board = "tcp"', f"address = {q(lb.url.removeprefix('tcp://'))}"]
        else:
            lines += ['board = "serial"', f"port = {q(lb.url)}"]
        lines += [f"device_id = {lb.spec.device_id}", f"timeout_ms = {lb.spec.timeout_ms}", ""]
    return "\n".join(lines)


# --- the plant ----------------------------------------------------------------------------------------


@dataclass(repr=False)
class Plant:
    """Truth, the boards and the rounds, for a host in another process; scored as `hil run` scores its own host."""

    options: PlantOptions
    radars: list[RadarTap] = field(default_factory=list)
    launchers: list[LauncherBoard] = field(default_factory=list)

    def __post_init__(self) -> None:
        o = self.options
        self.scenario = sc = o.scenario
        self.duration_s = float(o.duration_s or sc.duration_s)
        self._check_rig()
        self.criteria = merged(criteria_from(o.rig.criteria, o.rig.source), criteria_from(sc.criteria, sc.source),
                               criteria_from(o.criteria, "--criteria"))
        self.truth = sc.truth()
        self.engagement = EngagementModel(self.truth, sc.launchers, o.seed, sc.no_fire_zones)
        self.scorer = TrackScorer()
        self.latency = StageLatency((WIRE_STAGE,))
        self.origin = sc.origin_lla or (0.0, 0.0, 0.0)
        self.children: list[Child] = []
        self.receiver: SystemTrackReceiver | None = None
        self.writer: RunWriter | None = None
        self.rig_file: Path | None = None
        self.system_tracks_url = ""  # where the plant takes the host's CAT062 (once started)
        self.events: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.problems: list[str] = []
        self.leaks_reported: set[int] = set()
        self.plot_times: list[deque[int]] = [deque(maxlen=PLOTS_KEPT) for _ in sc.targets]
        self.wire_latency: list[dict[str, Any]] = []  # per launch: its target, t0, t5
        self.track_numbers: set[int] = set()
        self.confirmed_numbers: set[int] = set()
        self._update: list[SystemTracks] = []  # the records of the newest system-track update so far
        self._update_tod = -math.inf
        self._scored_tod = -math.inf
        self.ready_ns = 0  # when the boards were up and the plant began waiting for a host
        self.start_ns = 0  # truth time 0: the host's first byte on a radar link (monotonic ns); 0 until then
        self.start_wall_s = math.nan  # the same moment on the wall clock (UTC, s since the epoch)
        self.end_ns = 0  # when the scenario's duration was over (or the run was stopped)
        self.stopping = False
        self.signal: str | None = None
        self._next_stimulus_ns = self._next_journal_ns = self._next_status_ns = 0
        self._exited: set[str] = set()
        self._previous_handlers: dict[int, Any] = {}

    def _check_rig(self) -> None:
        rig = self.options.rig
        for role, items in (("radar", self.scenario.radars), ("launcher", self.scenario.launchers)):
            for item in items:
                spec = rig.board_for(role, item.name)
                if spec.board != "mock":
                    raise ConfigError(rig.source, f"{role} {item.name!r}.board",
                                      f"hil plant starts mock boards only (software emulators); this rig has a "
                                      f"{spec.board} board there")

    # ---- bring-up -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every board, bind the system-track port, write the host's rig file and say where each listens."""
        o, sc = self.options, self.scenario
        self.writer = RunWriter(o.out_dir, sc, record=o.record, report=o.report)
        self._previous_handlers = self._install_signals()  # from here on a signal ends the plant cleanly
        try:
            recorder = self.writer.recorder
            with board_cpus(o.board_cpus):
                for i, spec in enumerate(sc.radars):
                    board = o.rig.board_for("radar", spec.name)
                    self.radars.append(RadarTap(i, spec, _start_radar(spec.name, o.rig, self.children), board.baud,
                                                recorder))
                for i, site in enumerate(sc.launchers):
                    board = o.rig.board_for("launcher", site.name)
                    self.launchers.append(_start_launcher(i, site.name, board, o.rig, self.children))
            self.receiver = SystemTrackReceiver("udp://127.0.0.1:0", origin=self.origin)
            self.system_tracks_url = f"udp://127.0.0.1:{self.receiver.port}"
            self.rig_file = o.out_dir / "host-rig.toml"
            self.rig_file.write_text(host_rig_text(self))
            Rig.load(self.rig_file)  # the file a host will read must read
        except BaseException:
            self.close()
            self.writer.close()
            self._restore_signals(self._previous_handlers)
            raise
        for tap in self.radars:
            o.announce(f"radar {tap.name}: {tap.host_path}")
        for lb in self.launchers:
            o.announce(f"launcher {lb.name}: {lb.url}")
        o.announce(f"system tracks (ASTERIX CAT062): {self.system_tracks_url}")
        o.announce(f"rig file for a host: {self.rig_file}")
        self.ready_ns = time.monotonic_ns()

    @property
    def describe(self) -> list[dict[str, str]]:
        """Each board: where a host reaches it, and (radars) the board's own pty behind the plant."""
        out = [{"role": "radar", "name": t.name, "board": "mock", "where": t.host_path, "board_pty": t.board_url}
               for t in self.radars]
        out += [{"role": "launcher", "name": lb.name, "board": "mock", "where": lb.url} for lb in self.launchers]
        return out

    # ---- the run --------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Wait for a host, run the scenario from its first byte, wait for the host's last launches, stop the boards;
        returns summary.json's content (the run folder is finished too)."""
        if not self.ready_ns:
            raise RuntimeError("Plant.run() before start()")
        try:
            deadline = self.ready_ns + int(self.options.wait_s * 1e9)
            self._serve(lambda now: self.start_ns != 0 or now >= deadline)
            if not self.start_ns and self.writer is not None:
                self.writer.report = False  # nothing ran: nothing to draw
            if not self.start_ns and not self.stopping:
                self.problems.append(f"no host talked to the boards within {self.options.wait_s:g} s")
            if self.start_ns and not self.stopping:
                end = self.start_ns + int(self.duration_s * 1e9)
                self._serve(lambda now: now >= end)
            self.end_ns = time.monotonic_ns()
            if self.start_ns and not self.stopping:
                self._fly(self.duration_s)
                self._note(f"the scenario's {self.duration_s:g} s are over: waiting for the host to finish")
                last = self.end_ns + int(SHUTDOWN_S * 1e9)
                self._serve(lambda now: now >= last or now - self._last_host_ns() >= QUIET_S * 1e9)
            self._take_launches(time.monotonic_ns())
            self._take_tracks(time.monotonic_ns())
            self._score_update()
        finally:
            self._restore_signals(self._previous_handlers)
            self.close()
        return self._finish()

    def _serve(self, done: Callable[[int], bool]) -> None:
        """Pass bytes both ways as they come; tick every LOOP_PERIOD_NS; until done(now) or a signal."""
        next_tick = time.monotonic_ns()
        while not self.stopping:
            now = time.monotonic_ns()
            if done(now):
                return
            if now >= next_tick:
                self._tick(now)
                next_tick = max(next_tick + LOOP_PERIOD_NS, now)
            readers = [t.host_fd for t in self.radars]
            readers += [t.board_fd for t in self.radars if t.board_fd >= 0 and not t.failed]
            readers += [lb.launches.fd for lb in self.launchers if lb.process.name not in self._exited]
            if self.receiver is not None:
                readers.append(self.receiver.fileno())
            writers = [t.host_fd for t in self.radars if t.to_host_pending]
            timeout = max(0.0, (next_tick - time.monotonic_ns()) / 1e9)
            readable, _, _ = select.select(readers, writers, [], timeout)
            self._io(set(readable), time.monotonic_ns())

    def _io(self, readable: set[int], now: int) -> None:
        for tap in self.radars:
            if tap.host_fd in readable:
                frames = tap.read_host(now)
                if not self.start_ns and tap.last_host_ns:
                    self._begin(now, tap)
                tap.pass_to_board(frames, now)
        for tap in self.radars:
            if tap.board_fd in readable:
                plots = tap.read_board(now)
                if plots.n and self.start_ns:
                    self._plots(tap, plots, now)
            tap.flush_to_host()
        if any(lb.launches.fd in readable for lb in self.launchers):
            self._take_launches(now)
        if self.receiver is not None and self.receiver.fileno() in readable:
            self._take_tracks(now)

    def _begin(self, now: int, tap: RadarTap) -> None:
        """A host's first byte: truth time starts, each radar learns its sensor and gets the truth at t = 0."""
        self.start_ns, self.start_wall_s = now, time.time()
        for i, radar in enumerate(self.radars):
            config = config_from_spec(radar.spec, seed=self.options.seed * 1000 + i)  # as hil run configures it
            radar.send(FrameType.SENSOR_CONFIG, config.encode(), now)
        self._send_truth(now)
        self._next_stimulus_ns = now + STIMULUS_PERIOD_NS
        self._next_journal_ns = now + JOURNAL_PERIOD_NS
        self._next_status_ns = now + STATUS_PERIOD_NS
        self._note(f"a host is talking (radar {tap.name}, after {(now - self.ready_ns) / 1e9:.1f} s): "
                   f"the scenario runs {self.duration_s:g} s from now")

    def _tick(self, now: int) -> None:
        self._check_boards()
        if not self.start_ns or self.end_ns:
            return
        t = min(self.truth_s(now), self.duration_s)
        self._take_launches(now)
        self._fly(t)
        if now >= self._next_stimulus_ns:
            self._send_truth(now)
            self._next_stimulus_ns += STIMULUS_PERIOD_NS
        if now >= self._next_status_ns:
            self._status(t)
            self._next_status_ns += STATUS_PERIOD_NS
        if now >= self._next_journal_ns:
            self._journal()
            self._next_journal_ns += JOURNAL_PERIOD_NS

    def truth_s(self, now_ns: int) -> float:
        return (now_ns - self.start_ns) / 1e9

    def _last_host_ns(self) -> int:
        return max((t.last_host_ns for t in self.radars), default=0)

    def _send_truth(self, now: int) -> None:
        snap = self.truth.at(self.truth_s(now))
        payloads = encode_stimulus(snap.index, snap.mode3a, snap.state)
        for tap in self.radars:
            for payload in payloads:
                tap.send(FrameType.STIMULUS, payload, now)

    def _fly(self, t: float) -> None:
        """The rounds flown to truth time t; kills, misses, self-destructs and leaks as events."""
        for event in self.engagement.step(t):
            m = event.interceptor
            self._event(event.t_s, event.kind, track=m.track_id, target=m.acquired, launcher=m.launcher,
                        detail=round_detail(m, self.scenario))
        ended = (self.truth.impact_s <= t) & np.isfinite(self.truth.impact_s)
        for row in np.nonzero(ended)[0].tolist():
            if row not in self.leaks_reported and self.truth.ended_by[row] == "impact":  # not killed first
                self.leaks_reported.add(row)
                self._event(float(self.truth.impact_s[row]), "leak", target=row)

    # ---- what the wire shows ----------------------------------------------------------------------------

    def _plots(self, tap: RadarTap, plots: PlotBatch, now: int) -> None:
        """Plots on their way to the host: when they left the board (now) and the true object each came from."""
        n = plots.n
        t = self.truth_s(now)
        self.counts["plots"] += n
        rng, az = plots.column("range_m"), plots.column("azimuth_rad")
        el = plots.column("elevation_rad")
        if self.writer is not None:
            self.writer.plots(np.full(n, t), plots.column("sensor"), rng, az, el, plots.column("range_rate_mps"))
        alive = self.truth.alive(t)
        if not len(alive):
            return
        truth_pos = self.truth.states_at(alive, np.full(len(alive), t))[:, :3]
        flat = ~np.isfinite(el)  # a plot without height is placed in the horizontal plane only
        pos = np.asarray(tap.spec.site, dtype=np.float64) + polar_to_enu(rng, az, np.where(flat, 0.0, el))
        diff = pos[:, None, :] - truth_pos[None, :, :]
        diff[flat, :, 2] = 0.0
        d = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        d[:, ~np.isfinite(truth_pos[:, 0])] = np.inf
        j = np.argmin(d, axis=1)
        s = tap.spec
        gate = PLOT_GATE_SIGMAS * np.hypot(s.sigma_range_m, rng * math.hypot(s.sigma_azimuth_rad,
                                                                              s.sigma_elevation_rad))
        hit = d[np.arange(n), j] <= gate + PLOT_GATE_MIN_M
        self.counts["plots_of_true_objects"] += int(hit.sum())
        for row in set(alive[j[hit]].tolist()):
            self.plot_times[row].append(now)

    def _take_launches(self, now: int) -> None:
        for lb in self.launchers:
            for launch in lb.launches.poll():
                self._launch(lb.index, launch.to_json(), now)
            lb.take_states(now, run_over=self.end_ns != 0)

    def _launch(self, li: int, record: dict[str, Any], t5_ns: int) -> None:
        """A launcher board's own launch report: a round flies toward the aim its fire command carried on the wire."""
        site = self.scenario.launchers[li]
        t_launch = self.truth_s(t5_ns) if self.start_ns else 0.0
        aim = aim_of_launch(site, record)
        track, seq, tgo_s = int(record["track"]), int(record["seq"]), float(record["tgo_s"])
        self.engagement.launch(t_launch, li, track, aim, tgo_s, seq=seq)
        self.counts["board_launches"] += 1
        target, by = self._fired_at(track, aim, t_launch, tgo_s)
        self._event(t_launch, "launch", track=track, target=target, launcher=li,
                    detail=f"seq {seq}: the launcher board's report")
        self._event(t_launch, "round", track=track, target=target, launcher=li,
                    detail=f"seq {seq} flies at the aim on the wire")
        t0_ns = max((t for t in self.plot_times[target] if t <= t5_ns), default=0) if target >= 0 else 0
        if t0_ns:
            self.latency.record(WIRE_STAGE, t5_ns - t0_ns)
        else:
            self.counts["launches_without_a_plot"] += 1
        self.wire_latency.append({
            "launcher": site.name, "seq": seq, "track": track,
            "target": self.scenario.targets[target].name if target >= 0 else None, "target_by": by,
            "t5_s": round(t_launch, 4), "t0_s": round(self.truth_s(t0_ns), 4) if t0_ns else None,
            "latency_ms": round((t5_ns - t0_ns) / 1e6, 3) if t0_ns else None,
        })

    def _fired_at(self, track: int, aim: np.ndarray, t_s: float, tgo_s: float) -> tuple[int, str]:
        """The true object a fire was meant for: the one the host's system track numbered `track` follows, or
        (no such track heard) the live one nearest the aim point at the fire's time to go."""
        row = self.scorer.track_truth.get(track)
        if row is not None:
            return row, "system track"
        alive = self.truth.alive(t_s)
        if not len(alive) or not math.isfinite(tgo_s):
            return -1, "none"
        at = self.truth.states_at(alive, np.full(len(alive), t_s + tgo_s))[:, :3]
        d = np.linalg.norm(at - aim, axis=1)
        d = np.where(np.isfinite(d), d, np.inf)
        j = int(np.argmin(d))
        return (int(alive[j]), "aim point") if math.isfinite(d[j]) else (-1, "none")

    # ---- the host's system tracks -------------------------------------------------------------------------

    def _take_tracks(self, now: int) -> None:
        if self.receiver is None:
            return
        got = self.receiver.poll()
        if not len(got):
            return
        self.counts["track_records"] += len(got)
        live = got.status != SystemTrackStatus.ENDED
        self.track_numbers.update(got.track_number[live].tolist())
        confirmed = np.isin(got.status, (SystemTrackStatus.CONFIRMED, SystemTrackStatus.COASTING))
        self.confirmed_numbers.update(got.track_number[confirmed].tolist())
        # one update is the records stamped with one time of day; it is complete once a newer one begins
        for tod in dict.fromkeys(got.tod_s.tolist()):
            part = _rows(got, got.tod_s == tod)
            if tod == self._update_tod:
                self._update.append(part)
            elif self._after(tod, self._update_tod):
                self._score_update()
                self._update, self._update_tod = [part], tod
            else:
                self.counts["track_records_late"] += len(part)

    @staticmethod
    def _after(tod: float, other: float) -> bool:
        """tod is later than other, across midnight too."""
        return not math.isfinite(other) or 0.0 < (tod - other) % DAY_S < DAY_S / 2

    def _track_time_s(self, tod: float) -> float:
        """A time of day (UTC) as truth time, through the wall clock read when truth time started."""
        return (tod - self.start_wall_s % DAY_S + DAY_S / 2) % DAY_S - DAY_S / 2

    def _score_update(self) -> None:
        """The newest complete update against truth at its own time, at most about once a second (as hil run)."""
        if not self._update or not self.start_ns:
            return
        update, tod = SystemTracks.concatenate(self._update), self._update_tod
        self._update = []
        if math.isfinite(self._scored_tod) and (tod - self._scored_tod) % DAY_S < SCORE_EVERY_S:
            return
        t = self._track_time_s(tod)
        if not 0.0 <= t <= self.duration_s:
            self.counts["track_updates_outside_the_run"] += 1
            return
        self._scored_tod = tod
        keep = (update.status != SystemTrackStatus.ENDED) & np.isfinite(update.state[:, :2]).all(axis=1)
        ids, state = update.track_number[keep], update.state[keep]
        confirmed = np.isin(update.status[keep], (SystemTrackStatus.CONFIRMED, SystemTrackStatus.COASTING))
        snap = self.truth.at(t)
        pos, truth_pos = state[:, :3].copy(), snap.state[:, :3].copy()
        if not np.isfinite(pos[:, 2]).all():  # a host that sends no altitude is scored in the horizontal plane
            pos[:, 2] = truth_pos[:, 2] = 0.0
            self.counts["updates_scored_without_altitude"] += 1
        g = self.scorer.score(snap.index, truth_pos, ids, pos, confirmed)
        self.counts["track_updates_scored"] += 1
        if self.writer is not None:
            self.writer.metrics(t, snap, _Tracks(ids, state), confirmed, g)

    # ---- health, events, signals ------------------------------------------------------------------------

    def _check_boards(self) -> None:
        for child in self.children:
            if child.name not in self._exited and not child.alive():
                self._exited.add(child.name)
                self.problems.append(f"the {child.name} process exited (status {child.proc.returncode})")
                log.warning("%s", self.problems[-1])

    def _radar_health(self) -> None:
        if not self.start_ns:
            return
        for tap in self.radars:
            limit_s = max(3.0 * tap.spec.scan_period_s, 2.0)
            if tap.failed:
                self.problems.append(f"radar {tap.name} board link failed: {tap.failed}")
            elif tap.last_board_ns == 0:
                self.problems.append(f"radar {tap.name} sent nothing")
            elif (self.end_ns - tap.last_board_ns) / 1e9 > limit_s and self.signal is None:
                self.problems.append(f"radar {tap.name} silent for the last "
                                     f"{(self.end_ns - tap.last_board_ns) / 1e9:.1f} s")

    def _event(self, t_s: float, event: str, track: int = -1, target: int = -1, launcher: int = -1,
               detail: str = "") -> None:
        row = event_row(self.scenario, t_s, event, track, target, launcher, detail)
        self.events.append(row)
        if self.writer is not None:
            self.writer.event(row)

    def _note(self, text: str) -> None:
        if self.options.note is not None:
            self.options.note(text)

    def _status(self, t: float) -> None:
        if self.options.status is None:
            return
        self.options.status({
            "t_s": t, "plots": self.counts["plots"], "system_tracks": len(self.track_numbers),
            "launches": self.counts["board_launches"],
            "kills": sum(1 for m in self.engagement.finished if m.result == "killed"),
        })

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        for sig in SIGNALS:
            try:
                previous[sig] = signal.signal(sig, self._interrupt)
            except ValueError:  # not the main thread: the caller handles signals
                break
        return previous

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _interrupt(self, sig: int, _frame: StackFrame | None) -> None:
        if self.signal is None:
            self.signal = signal.Signals(sig).name
            log.warning("%s: ending the run", self.signal)
        self.stopping = True

    # ---- the result -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every board and close every link (safe to call again)."""
        for tap in self.radars:
            try:
                tap.close()
            except OSError as e:
                log.debug("closing %s: %s", tap.name, e)
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if self.receiver is not None:
            self.receiver.close()

    def _journal(self) -> None:
        if self.writer is not None:
            self.writer.journal(self.summary())

    def _launcher_health(self) -> None:
        """A launcher the host kept SAFE for much of the run (its watchdog unfed, a second master on its link): the
        run's outcomes were not made with it (hil.rig.SafeTime, the rule the host's side applies too)."""
        if not self.start_ns:
            return
        for lb in self.launchers:
            problem = lb.safe.problem(lb.name, self.end_ns, lb.watchdog_trips)
            if problem:
                self.problems.append(problem)

    def _finish(self) -> dict[str, Any]:
        self._radar_health()
        self._launcher_health()
        summary = self.summary()
        summary["verdict"] = judge(summary, self.criteria)
        if self.writer is not None:
            self.writer.finish(summary, self.latency, interrupted=self.signal is not None)
        return summary

    def summary(self) -> dict[str, Any]:
        """summary.json's content: hil run's keys where they mean the same, and what only a plant knows."""
        sc = self.scenario
        now = self.end_ns or time.monotonic_ns()
        run_end_s = min(self.truth_s(now), self.duration_s) if self.start_ns else 0.0
        heard = bool(self.counts["track_records"])
        engagements, plant = outcomes(sc, self.truth, self.engagement, self.scorer.track_truth, run_end_s, None,
                                      self.confirmed_numbers if heard else None)
        receiver = self.receiver
        sender = receiver.last_sender if receiver is not None else None
        return {
            "schema": 1,
            "scored": "plant",
            "interrupted": self.signal is not None,
            "signal": self.signal,
            "rig_ok": not self.problems,
            "rig_problems": list(self.problems),
            "scenario": sc.name,
            "scenario_file": sc.source,
            "seed": self.options.seed,
            "time_mode": "real",
            "realtime": [list(a) for a in self.options.realtime],
            "rig": self.options.rig.name,
            "duration_s": self.duration_s,
            "scenario_duration_s": sc.duration_s,  # a shorter run's kills are not judged against the scenario's
            "run_s": round(run_end_s, 3),
            "host_came_after_s": round((self.start_ns - self.ready_ns) / 1e9, 3) if self.start_ns else None,
            "start_utc": (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.start_wall_s))
                          + f".{int(self.start_wall_s % 1 * 1000):03d}Z") if self.start_ns else None,
            "boards": self.describe,
            "rig_file": str(self.rig_file) if self.rig_file else None,
            "latency_us": self.latency.summary(),
            "wire_latency": self.wire_latency,
            # each launcher as its board's state lines told it (hil run's launcher_health, from the board's side)
            "launcher_health": {lb.name: {"armed_once": lb.safe.armed_at_ns is not None, "armed_at_end": lb.armed,
                                          "watchdog_trips": lb.watchdog_trips,
                                          "safe_s": round(lb.safe.safe_at(now) / 1e9, 3)}
                                for lb in self.launchers},
            "plots": self.counts["plots"],
            "plots_of_true_objects": self.counts["plots_of_true_objects"],
            "tracks": len(self.track_numbers),
            "confirmed_tracks": len(self.confirmed_numbers),
            "gospa_mean_m": self.scorer.gospa_mean_m(),
            "gospa": {"c_m": GOSPA_C_M, "p": GOSPA_P, "alpha": GOSPA_ALPHA,
                      "samples": len(self.scorer.gospa_samples)},
            "launches": self.counts["board_launches"],
            "board_launches": self.counts["board_launches"],
            "rounds_at_no_object": plant["nothing_acquired"],
            "plant": plant,
            "engagements": engagements,
            "friendly_engagements": plant["acquired"]["friendly"] + plant["acquired"]["neutral"],
            "system_tracks": {
                "received": self.counts["track_records"],
                "datagrams": receiver.stats["datagrams"] if receiver is not None else 0,
                "updates_scored": self.counts["track_updates_scored"],
                "updates_scored_without_altitude": self.counts["updates_scored_without_altitude"],
                "updates_outside_the_run": self.counts["track_updates_outside_the_run"],
                "records_late": self.counts["track_records_late"],
                "rejected": receiver.decoder.rejected if receiver is not None else 0,
                "sender": f"{sender[0]}:{sender[1]}" if sender else None,
                "where": self.system_tracks_url,
            },
            "links": {tap.name: tap.summary() for tap in self.radars},
            "machine": {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
        }


def _rows(tracks: SystemTracks, mask: np.ndarray) -> SystemTracks:
    return SystemTracks(*(getattr(tracks, f.name)[mask] for f in fields(tracks)))


__all__ = ["LauncherBoard", "Plant", "PlantOptions", "RadarTap", "host_rig_text"]
