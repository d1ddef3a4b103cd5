"""The chain in motion: the plant (truth, stimulus, fly-out) and the host under test (decode, track, decide, command).

One loop serves both clocks. In virtual time every board is stepped in lockstep and nothing waits; in
real time the boards are separate processes on ptys (or real hardware) and the loop wakes on radar
bytes or its 5 ms tick. Latency points per decision (DESIGN §4): t0 detection on the radar board,
t1 frame received, t2 tracks updated, t3 fire-control decision, t4 command written, t5 command
accepted by the launcher board.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import platform
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hil.boards import Boards, bring_up
from hil.clock import Clock, RealClock, VirtualClock
from hil.emulators.radar import config_from_spec
from hil.engagement import EngagementModel
from hil.errors import ConfigError, LinkError
from hil.fire_control import RefusalReason, friendly_code_array, track_inputs
from hil.kernels import build_fire_control, build_tracker
from hil.latency import DeadlineMonitor, StageLatency, histogram_summary
from hil.metrics import gospa
from hil.plots import merge_in_time_order
from hil.realtime import realtime
from hil.rig import Rig
from hil.runfolder import RunWriter
from hil.scenario import Scenario

log = logging.getLogger("hil.run")

LOOP_PERIOD_NS = 5_000_000  # the host loop's tick (and the virtual step)
STIMULUS_PERIOD_NS = 100_000_000  # truth to the radar boards at 10 Hz
LAUNCHER_PERIOD_NS = 100_000_000  # heartbeat + status read of each launcher
TIME_SYNC_PERIOD_NS = 500_000_000
METRICS_PERIOD_NS = 1_000_000_000
FC_PERIOD_NS = 100_000_000  # fire control also runs on this tick when no plot arrived
GOSPA_C_M, GOSPA_P, GOSPA_ALPHA = 1000.0, 1, 2


@dataclass(frozen=True)
class Fault:
    """A fault injected into a mock board at a run time: kind "silent" (stops answering) or "resume"."""

    t_s: float
    board: str
    kind: str

    @classmethod
    def parse(cls, text: str) -> Fault:
        """BOARD:KIND@SECONDS, e.g. launcher-north:silent@20."""
        try:
            board, rest = text.split(":", 1)
            kind, at = rest.split("@", 1)
            fault = cls(float(at), board, kind)
        except ValueError:
            raise ConfigError("--fault", text, "must be BOARD:KIND@SECONDS, e.g. launcher-north:silent@20") from None
        if kind not in ("silent", "resume"):
            raise ConfigError("--fault", text, "kind must be silent or resume")
        return fault


@dataclass
class RunOptions:
    scenario: Scenario
    rig: Rig
    seed: int
    time_mode: str = "virtual"  # virtual | real
    out_dir: Path | None = None
    duration_s: float | None = None
    status: Callable[[dict[str, Any]], None] | None = None
    record: bool = True
    realtime: Any = None  # hil.realtime.RealtimeOptions, applied around the loop in real time
    faults: tuple[Fault, ...] = ()
    report: bool = True  # render report.html at the end
    floor: bool = True  # real time: measure the machine's scheduling floor beside the loop


@dataclass
class PendingFire:
    track_id: int
    launcher: int
    aim: np.ndarray
    t1_ns: int
    t0_host_ns: int
    t0_uncertainty_ns: int


@dataclass
class LauncherState:
    status: Any = None  # last LauncherStatus read
    busy: bool = False  # a fire is being written
    lost: bool = False


@dataclass
class Chain:
    options: RunOptions
    clock: Clock = field(init=False)
    boards: Boards = field(init=False)

    def __post_init__(self) -> None:
        o = self.options
        self.scenario = o.scenario
        self.duration_ns = int((o.duration_s or o.scenario.duration_s) * 1e9)
        self.clock = VirtualClock() if o.time_mode == "virtual" else RealClock()
        self.truth = o.scenario.truth()
        self.engagement = EngagementModel(self.truth, o.scenario.launchers, o.seed)
        self.latency = StageLatency()
        self.deadline = DeadlineMonitor(period_ns=LOOP_PERIOD_NS, budget_ns=LOOP_PERIOD_NS)
        self.writer = RunWriter(o.out_dir, o.scenario, record=o.record, report=o.report) if o.out_dir else None
        self.tracker = build_tracker(o.scenario)
        self.fc = build_fire_control(o.scenario)
        self.friendly_codes = friendly_code_array(o.scenario.friendly_codes)
        self.launcher_state = [LauncherState() for _ in o.scenario.launchers]
        self.pending: list[PendingFire] = []
        self.fire_tasks: set[asyncio.Task[None]] = set()
        self.batches: OrderedDict[int, tuple[int, int, int]] = OrderedDict()  # plot µs -> (t0 host ns, t1 ns, unc)
        self.fresh_plots: set[int] = set()  # plots (µs keys) taken in by this loop iteration
        self.iteration_t1_ns = 0  # when the newest of those frames was received (0: none this iteration)
        self.sector_az = [math.nan] * len(o.scenario.radars)
        self.counts: Counter[str] = Counter()
        self.leaks_reported: set[int] = set()
        self.refusals: dict[tuple[int, int, str], dict[str, Any]] = {}
        self.track_truth: dict[int, int] = {}
        self.gospa_samples: list[float] = []
        self.track_ids_seen: set[int] = set()
        self.confirmed_ids_seen: set[int] = set()
        self.events: list[dict[str, Any]] = []
        self.decisions = 0
        self.start_ns = 0
        self.setup_report: list[dict[str, Any]] = []
        self.realtime_applied: list[list[Any]] = []
        self._after_fc: tuple[Any, ...] | None = None
        self.floor: Any = None  # the machine's scheduling-latency histogram (ns), real time only
        self.floor_note = ""
        names = {s.name for s in o.scenario.radars} | {s.name for s in o.scenario.launchers}
        for fault in o.faults:
            if fault.board not in names:
                raise ConfigError("--fault", fault.board, f"no board of that name (boards: {', '.join(sorted(names))})")
        self.faults = sorted(o.faults, key=lambda f: f.t_s)

    # --- time ----------------------------------------------------------------------------------------

    def run_s(self, host_ns: int) -> float:
        return (host_ns - self.start_ns) / 1e9

    # --- bring-up ------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        sc = self.scenario
        recorder = self.writer.recorder if self.writer else None
        self.boards = bring_up(sc, self.options.rig, self.clock, self.clock.virtual, recorder, self.options.seed)
        self.start_ns = self.clock.now_ns()
        for i, (link, spec) in enumerate(zip(self.boards.radars, sc.radars, strict=True)):
            link.send_config(config_from_spec(spec, seed=self.options.seed * 1000 + i))
        await self._exchange_radar_sync(rounds=8)
        for i, link in enumerate(self.boards.launchers):
            site = sc.launchers[i]
            await link.connect()
            ident = await link.identify()
            await link.configure(watchdog_ms=500, reload_ms=int(site.reload_s * 1000), rounds=site.rounds)
            for _ in range(8):  # clock-sync samples before the first command
                await link.read_status()
            await link.arm()
            self.launcher_state[i].status = await link.read_status()
            self.setup_report.append({"launcher": site.name, "identity": str(ident)})
        self._send_stimulus(self.clock.now_ns())

    async def _exchange_radar_sync(self, rounds: int) -> None:
        for _ in range(rounds):
            for link in self.boards.radars:
                link.request_time_sync()
            await self._settle_ns(2_000_000)
            self._poll_radars()

    async def _settle_ns(self, dt_ns: int) -> None:
        """Let the boards answer: a virtual step, or a short real wait."""
        target = self.clock.now_ns() + dt_ns
        if isinstance(self.clock, VirtualClock):
            self.clock.advance_to(target)
            self.boards.step_virtual(target)
        else:
            await self.clock.sleep_until(target)

    # --- the plant -----------------------------------------------------------------------------------

    def _send_stimulus(self, now_ns: int) -> None:
        snap = self.truth.at(self.run_s(now_ns))
        for link in self.boards.radars:
            link.send_stimulus(snap.index, snap.mode3a, snap.state)

    def _plant(self, now_ns: int) -> None:
        t = self.run_s(now_ns)
        while self.faults and self.faults[0].t_s <= t:
            fault = self.faults.pop(0)
            self.boards.inject(fault.board, fault.kind, [s.name for s in self.scenario.launchers])
            self._event(t, "fault", detail=f"{fault.board} {fault.kind}")
        for event in self.engagement.step(t):
            m = event.interceptor
            kind = "kill" if event.kind == "kill" else "miss"
            self._event(event.t_s, kind, track=m.track_id, target=m.target, launcher=m.launcher,
                        detail=f"miss distance {m.miss_distance_m:.1f} m")
        for row in np.nonzero((self.truth.impact_s <= t) & np.isfinite(self.truth.impact_s))[0]:
            if int(row) not in self.leaks_reported:
                self.leaks_reported.add(int(row))
                self._event(float(self.truth.impact_s[row]), "leak", target=int(row))

    # --- the host under test -------------------------------------------------------------------------

    def _take_plots(self, polled: list[tuple[int, Any, list[Any]]]) -> bool:
        """Plots of every radar polled this round into the tracker as one time-ordered batch, then the sweeps.

        Merging keeps several radars' plots in time order, so none is refused as late by the tracker.
        """
        batches = [(i, b) for i, b, _ in polled if b is not None and b.n]
        if batches:
            cols, order = merge_in_time_order([b for _, b in batches])
            # before a radar's first time-sync answer its uncertainty is unbounded: such plots carry no t0
            unc = np.concatenate([np.full(b.n, min(self.boards.radars[i].clock_sync.uncertainty_ns, 2.0**62))
                                  for i, b in batches])
            t_s = cols["t_s"] - self.start_ns / 1e9
            t_begin = time.perf_counter_ns()
            self.tracker.update(t_s, cols["sensor"], cols["range_m"], cols["azimuth_rad"], cols["elevation_rad"],
                                cols["range_rate_mps"], cols["mode3a"])
            self.latency.record("track", time.perf_counter_ns() - t_begin)
            self.fresh_plots.clear()
            for k in range(len(t_s)):
                key = round(float(t_s[k]) * 1e6)
                self.batches[key] = (int(cols["t_s"][k] * 1e9), int(cols["host_rx_ns"][k]), int(unc[order[k]]))
                self.fresh_plots.add(key)
            while len(self.batches) > 4096:
                self.batches.popitem(last=False)
            self.counts["plots"] += len(t_s)
            self.iteration_t1_ns = int(cols["host_rx_ns"].max())
            if self.writer:
                self.writer.plots(t_s, cols["sensor"], cols["range_m"], cols["azimuth_rad"], cols["elevation_rad"],
                                  cols["range_rate_mps"])
        sweeps = sorted((float(s[0]), i, float(s[1])) for i, _, services in polled for s in services)
        for t_abs, i, az in sweeps:
            prev = self.sector_az[i]
            if not math.isnan(prev):
                self.tracker.sector_swept(i, t_abs - self.start_ns / 1e9, prev, az)
            self.sector_az[i] = az
        return bool(batches)

    def _fire_control(self, now_ns: int) -> None:
        """Evaluate and send the fire commands; the bookkeeping waits until they are on their way."""
        t = self.run_s(now_ns)
        # only confirmed tracks are ever engageable: tentative ones (mostly clutter) are not worth the kernel's time
        tracks = self.tracker.tracks(t, confirmed_only=True)
        n = len(tracks.track_id)
        self._after_fc = (t, None, [], {}, None, None, None, None)
        if n == 0:
            return
        in_flight = np.zeros(n, np.int32)
        shots = np.zeros(n, np.int32)
        index_of = {tid: k for k, tid in enumerate(tracks.track_id.tolist())}
        for m in self.engagement.flying:
            if m.track_id in index_of:
                in_flight[index_of[m.track_id]] += 1
        for p in self.pending:
            if p.track_id in index_of:
                in_flight[index_of[p.track_id]] += 1
        for m in self.engagement.flying + self.engagement.finished:
            if m.track_id in index_of:
                shots[index_of[m.track_id]] += 1
        pos_var, friendly = track_inputs(tracks, self.friendly_codes)
        armed, ready, rounds, reload_left = self._launcher_inputs(now_ns)
        channels = np.zeros(len(self.launcher_state), np.int32)
        for m in self.engagement.flying:
            channels[m.launcher] += 1  # each interceptor in the air holds one guidance channel
        t_begin = time.perf_counter_ns()
        result = self.fc.evaluate(t, tracks.track_id, tracks.state, pos_var, tracks.status == 2, friendly,
                                  in_flight, shots, armed, ready, rounds, reload_left, channels_in_use=channels)
        self.latency.record("fire_control", time.perf_counter_ns() - t_begin)
        a = result.assignments
        fires = []
        for k in range(len(a.track_index)):
            ti, li = int(a.track_index[k]), int(a.launcher_index[k])
            # t1: the newest radar frame this loop iteration took in (what the host reacted to); t0: the
            # detection behind the track's newest plot, so sensor-to-shooter is the age of what was shot at
            plot_key = round(float(tracks.last_update_s[ti]) * 1e6)
            t0_host_ns, _, unc = self.batches.get(plot_key, (0, 0, 0))
            fire = PendingFire(track_id=int(tracks.track_id[ti]), launcher=li, aim=np.array(a.intercept_enu[k]),
                               t1_ns=self.iteration_t1_ns, t0_host_ns=0 if unc >= 2**62 else t0_host_ns,
                               t0_uncertainty_ns=unc)
            self.pending.append(fire)
            self.launcher_state[li].busy = True
            self.decisions += 1
            if plot_key not in self.fresh_plots:
                self.counts["decisions_deferred"] += 1
            task = asyncio.ensure_future(self._fire(fire))
            self.fire_tasks.add(task)
            task.add_done_callback(self.fire_tasks.discard)
            fires.append((k, ti, li, fire.track_id))
        call = {"armed": armed.tolist(), "ready": ready.tolist(), "rounds": rounds.tolist(),
                "reload_left_s": reload_left.tolist(), "channels_in_use": channels.tolist(),
                "poll": self.boards.radars[0].stats["polls"] if self.boards.radars else 0, "t_s": t,
                "engaged": {str(tid): [int(f), int(s)] for tid, f, s in
                            zip(tracks.track_id.tolist(), in_flight.tolist(), shots.tolist(), strict=True) if f or s}}
        self._after_fc = (t, (tracks, result), fires, call, in_flight, shots, friendly, pos_var)

    def _fc_bookkeeping(self) -> None:
        """Events, refusals and decision records of the last evaluation, off the command's critical path."""
        if self._after_fc is None:
            return
        t, evaluated, fires, call, in_flight, shots, friendly, pos_var = self._after_fc
        self._after_fc = None
        every = self.tracker.tracks()  # confirmation events need the tentative tracks too
        for tid, status in zip(every.track_id.tolist(), every.status.tolist(), strict=True):
            self.track_ids_seen.add(tid)
            if status == 2 and tid not in self.confirmed_ids_seen:
                self.confirmed_ids_seen.add(tid)
                self._event(t, "confirmation", track=tid, target=self.track_truth.get(tid, -1))
        if evaluated is None:
            return
        tracks, result = evaluated
        self._note_refusals(t, tracks, result)
        a = result.assignments
        for k, ti, li, tid in fires:
            self._event(t, "assignment", track=tid, target=self.track_truth.get(tid, -1), launcher=li,
                        detail=f"tof {a.time_of_flight_s[k]:.1f} s pk {a.pk[k]:.2f}")
            if self.writer:
                record = result.explain(ti)
                # what the kernel was told about the launchers and engagements, so replay can ask it again
                record["call"] = {**call, "in_flight": int(in_flight[ti]), "shots_fired": int(shots[ti]),
                                  "friendly": bool(friendly[ti]), "pos_var_m2": float(pos_var[ti])}
                self.writer.decision(record)

    def _launcher_inputs(self, now_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = len(self.launcher_state)
        armed, ready = np.zeros(n, bool), np.zeros(n, bool)
        rounds, reload_left = np.zeros(n, np.int32), np.zeros(n)
        for i, st in enumerate(self.launcher_state):
            s = st.status
            if s is None or st.lost:
                continue
            armed[i] = bool(s.armed)
            ready[i] = bool(s.ready) and not st.busy
            rounds[i] = int(s.rounds)
            reload_left[i] = 0.0 if s.ready else self.scenario.launchers[i].reload_s
        return armed, ready, rounds, reload_left

    def _note_refusals(self, t: float, tracks: Any, result: Any) -> None:
        r = result.refusals
        for k in range(len(r.track_index)):
            tid = int(tracks.track_id[int(r.track_index[k])])
            li = int(r.launcher_index[k])
            reason = RefusalReason(int(r.reason[k])).name
            key = (tid, li, reason)
            entry = self.refusals.get(key)
            if entry is None:
                self.refusals[key] = {"time_s": round(t, 3), "track": tid,
                                      "launcher": self.scenario.launchers[li].name if li >= 0 else None,
                                      "reason": reason, "count": 1}
                self._event(t, "refusal", track=tid, target=self.track_truth.get(tid, -1), launcher=li,
                            detail=reason)
            else:
                entry["count"] += 1

    async def _fire(self, fire: PendingFire) -> None:
        li = fire.launcher
        link = self.boards.launchers[li]
        site = self.scenario.launchers[li]
        d = fire.aim - np.array(site.position)
        az = math.atan2(d[0], d[1]) % (2 * math.pi)
        el = max(0.0, math.atan2(d[2], math.hypot(d[0], d[1])))
        t_begin = time.perf_counter_ns()
        try:
            result = await link.fire(fire.track_id, az, el)
        except LinkError as e:
            log.warning("fire on track %d by %s failed: %s", fire.track_id, site.name, e)
            result = None
        finally:
            self.launcher_state[li].busy = False
            self.pending.remove(fire)
            if link.status is not None:
                # the fire's readback says the launcher is reloading now: fire control must not wait for the
                # next status tick to learn it (it would decide fires the link then refuses unsent)
                self.launcher_state[li].status = link.status
        if result is None or not result.accepted:
            reason = getattr(result, "reason", "link error")
            key = (fire.track_id, li, f"LAUNCHER_{reason}")
            self.refusals.setdefault(key, {"time_s": round(self.run_s(self.clock.now_ns()), 3),
                                           "track": fire.track_id, "launcher": site.name,
                                           "reason": f"LAUNCHER_{reason}", "count": 0})["count"] += 1
            return
        # in virtual time the write takes no virtual time: report the host's own cost of the exchange
        self.latency.record("command", result.round_trip_ns if not self.clock.virtual
                            else time.perf_counter_ns() - t_begin)
        if fire.t1_ns:
            self.latency.record("host_total", result.written_ns - fire.t1_ns)
        launcher_sync = link.clock_sync
        t5_host_ns = launcher_sync.board_to_host_ns(result.board_accept_us)
        if fire.t0_host_ns:
            self.latency.record_with_uncertainty(
                "sensor_to_shooter", t5_host_ns - fire.t0_host_ns,
                fire.t0_uncertainty_ns + int(launcher_sync.uncertainty_ns))
        t_launch = self.run_s(max(t5_host_ns, self.start_ns))
        m = self.engagement.launch(self.run_s(self.clock.now_ns()), li, fire.track_id, fire.aim)
        self.counts["launches"] += 1
        self._event(t_launch, "launch", track=fire.track_id, target=m.target, launcher=li,
                    detail=f"seq {result.seq}")

    async def _launcher_tick(self, i: int) -> None:
        link = self.boards.launchers[i]
        st = self.launcher_state[i]
        try:
            await link.heartbeat()
            st.status = await link.read_status()
            st.lost = False
        except LinkError as e:
            if not st.lost:
                log.warning("launcher %s lost: %s", self.scenario.launchers[i].name, e)
                self._event(self.run_s(self.clock.now_ns()), "refusal", launcher=i, detail=f"link lost: {e}")
            st.lost = True

    # --- bookkeeping ---------------------------------------------------------------------------------

    def _event(self, t_s: float, event: str, track: int = -1, target: int = -1, launcher: int = -1,
               detail: str = "") -> None:
        row = {"time_s": round(t_s, 4), "event": event, "track": track,
               "target": self.scenario.targets[target].name if target >= 0 else "",
               "launcher": self.scenario.launchers[launcher].name if launcher >= 0 else "", "detail": detail}
        self.events.append(row)
        if self.writer:
            self.writer.event(row)

    def _metrics(self, now_ns: int) -> None:
        t = self.run_s(now_ns)
        snap = self.truth.at(t)
        tracks = self.tracker.tracks(t)
        confirmed = tracks.status == 2
        truth_pos = snap.state[:, :3]
        track_pos = tracks.state[confirmed, :3]
        g = gospa(truth_pos, track_pos, c=GOSPA_C_M, p=GOSPA_P, alpha=GOSPA_ALPHA)
        self.gospa_samples.append(float(g.total))
        # which truth each track follows, for the report only (the host never sees truth)
        for tid, pos in zip(tracks.track_id.tolist(), tracks.state[:, :3], strict=True):
            if len(truth_pos):
                d = np.linalg.norm(truth_pos - pos, axis=1)
                j = int(np.argmin(d))
                if d[j] < 3_000.0:
                    self.track_truth[tid] = int(snap.index[j])
        if self.writer:
            self.writer.metrics(t, snap, tracks, confirmed, g)

    def _status(self, now_ns: int) -> None:
        if not self.options.status:
            return
        tracks = self.tracker.tracks(None)
        host = self.latency.summary().get("host_total", {})
        self.options.status({
            "t_s": self.run_s(now_ns), "tracks": len(tracks.track_id),
            "confirmed": int((tracks.status == 2).sum()), "launches": self.counts["launches"],
            "kills": sum(1 for m in self.engagement.finished if m.result == "killed"),
            "host_p99_us": host.get("p99"),
        })

    # --- the loop ------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        await self._connect()
        try:
            if isinstance(self.clock, VirtualClock):
                await self._run_virtual(self.clock)
            elif self.options.floor:
                await self._run_real_with_floor()
            else:
                await self._run_loop_real()
            for task in list(self.fire_tasks):
                await task
            for link in self.boards.launchers:
                try:
                    await link.make_safe()
                except LinkError as e:
                    log.warning("could not make %s safe at the end: %s", link, e)
        finally:
            self._finish_links()
        return self.summary()

    async def _run_real_with_floor(self) -> None:
        """The real-time loop with a cyclictest-style probe process beside it (hil.floor), on the loop's CPUs."""
        from hil.floor import FloorProbe

        rt = self.options.realtime
        prio = None if rt is None or rt.fifo_priority is None else min(rt.fifo_priority + 1, 99)
        probe = FloorProbe(period_us=1000, fifo_priority=prio, cpus=None if rt is None else rt.cpus).start()
        try:
            await self._run_loop_real()
        finally:
            self.floor = probe.stop()
            self.floor_note = probe.note

    async def _run_loop_real(self) -> None:
        if self.options.realtime is not None and self.options.realtime.any():
            # after bring-up, so the emulator processes inherit neither SCHED_FIFO nor the loop's CPU
            with realtime(self.options.realtime) as applied:
                self.realtime_applied = [[a.option, a.applied, a.message] for a in applied]
                for a in applied:
                    if not a.applied:
                        log.warning("real-time option %s not applied: %s", a.option, a.message)
                await self._run_real()
        else:
            await self._run_real()

    def _finish_links(self) -> None:
        for link in self.boards.launchers:
            try:
                link.close()
            except Exception as e:  # closing must never hide the run's result
                log.debug("closing %s: %s", link, e)
        self.boards.close()

    def _poll_radars(self) -> bool:
        self.fresh_plots.clear()
        self.iteration_t1_ns = 0
        polled = []
        for i, link in enumerate(self.boards.radars):
            t_begin = time.perf_counter_ns()
            batch, services = link.poll()
            if (batch is not None and batch.n) or services:
                self.latency.record("decode", time.perf_counter_ns() - t_begin)
            polled.append((i, batch, services))
        return self._take_plots(polled)

    async def _run_virtual(self, clock: VirtualClock) -> None:
        end = self.start_ns + self.duration_ns
        next_stim = next_launcher = next_sync = next_metrics = next_fc = self.start_ns
        next_status_wall = time.monotonic()
        while clock.now_ns() < end:
            now = clock.now_ns() + LOOP_PERIOD_NS
            clock.advance_to(now)
            self.boards.step_virtual(now)
            got = self._poll_radars()
            if now >= next_launcher:
                for i in range(len(self.boards.launchers)):
                    await self._launcher_tick(i)
                next_launcher += LAUNCHER_PERIOD_NS
            if got or now >= next_fc:
                self._fire_control(now)
                next_fc = now + FC_PERIOD_NS
            for task in list(self.fire_tasks):
                await task
            self._fc_bookkeeping()
            self._plant(now)
            if now >= next_stim:
                self._send_stimulus(now)
                next_stim += STIMULUS_PERIOD_NS
            if now >= next_sync:
                for link in self.boards.radars:
                    link.request_time_sync()
                next_sync += TIME_SYNC_PERIOD_NS
            if now >= next_metrics:
                self._metrics(now)
                next_metrics += METRICS_PERIOD_NS
            if time.monotonic() >= next_status_wall:
                self._status(now)
                next_status_wall += 0.5

    async def _run_real(self) -> None:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        for link in self.boards.radars:
            loop.add_reader(link.fileno(), wake.set)
        launcher_tasks = [asyncio.ensure_future(self._launcher_loop(i)) for i in range(len(self.boards.launchers))]
        end = self.start_ns + self.duration_ns
        next_tick = self.clock.now_ns() + LOOP_PERIOD_NS
        next_stim = next_sync = next_metrics = next_fc = next_status = self.clock.now_ns()
        try:
            while (now := self.clock.now_ns()) < end:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=max(0.0, (next_tick - now) / 1e9))
                wake.clear()
                woke = self.clock.now_ns()
                ticked = woke >= next_tick
                got = self._poll_radars()
                if got or woke >= next_fc:
                    decided = self.decisions
                    self._fire_control(woke)
                    next_fc = woke + FC_PERIOD_NS
                    if self.decisions != decided:
                        await asyncio.sleep(0)  # let the fire commands go out before any bookkeeping
                    self._fc_bookkeeping()
                self._plant(woke)
                if woke >= next_stim:
                    self._send_stimulus(woke)
                    next_stim += STIMULUS_PERIOD_NS
                if woke >= next_sync:
                    for link in self.boards.radars:
                        link.request_time_sync()
                    next_sync += TIME_SYNC_PERIOD_NS
                if woke >= next_metrics:
                    self._metrics(woke)
                    next_metrics += METRICS_PERIOD_NS
                if woke >= next_status:
                    self._status(woke)
                    next_status += 1_000_000_000
                if ticked:
                    self.deadline.record(lateness_ns=woke - next_tick, compute_ns=self.clock.now_ns() - woke)
                    next_tick += LOOP_PERIOD_NS * max(1, (woke - next_tick) // LOOP_PERIOD_NS + 1)
        finally:
            for link in self.boards.radars:
                loop.remove_reader(link.fileno())
            for task in launcher_tasks:
                task.cancel()
            await asyncio.gather(*launcher_tasks, return_exceptions=True)

    async def _launcher_loop(self, i: int) -> None:
        next_ns = self.clock.now_ns()
        while True:
            await self._launcher_tick(i)
            next_ns += LAUNCHER_PERIOD_NS
            await self.clock.sleep_until(next_ns)

    # --- the result ----------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        sc = self.scenario
        engagements = []
        shots_by_target: dict[int, list[Any]] = {}
        for m in self.engagement.finished + self.engagement.flying:
            target = m.target if m.target >= 0 else self.track_truth.get(m.track_id, -1)
            shots_by_target.setdefault(target, []).append(m)
        friendly_engagements = sum(
            len(v) for k, v in shots_by_target.items() if k >= 0 and sc.targets[k].allegiance == "friendly")
        for row, spec in enumerate(sc.targets):
            if spec.allegiance != "hostile":
                continue
            shots = sorted(shots_by_target.get(row, []), key=lambda m: m.launch_s)
            ended = self.truth.ended_by[row]
            result = {"killed": "killed", "impact": "leaked"}.get(ended, "survived")
            if result == "survived" and self.truth.start_s[row] > self.run_s(self.start_ns + self.duration_ns):
                result = "not_launched"
            reasons = Counter(r["reason"] for (tid, _, _), r in self.refusals.items()
                              if self.track_truth.get(tid) == row)
            tracked = any(v == row for v in self.track_truth.values())
            if not reasons and tracked and not any(self.track_truth.get(tid) == row for tid in self.confirmed_ids_seen):
                reasons["NOT_CONFIRMED"] += 1  # fire control is only ever asked about confirmed tracks
            engagements.append({
                "target": spec.name, "kind": spec.kind, "allegiance": spec.allegiance, "engaged": bool(shots),
                "first_launch_s": round(shots[0].launch_s, 3) if shots else None,
                "launcher": sc.launchers[shots[0].launcher].name if shots else None,
                "shots": len(shots), "result": result,
                "refusal_reasons": [r for r, _ in reasons.most_common()] if not shots else [],
                "tracked": tracked,
            })
        latency = self.latency.summary()
        summary: dict[str, Any] = {
            "schema": 1,
            "scenario": sc.name,
            "scenario_file": sc.source,
            "seed": self.options.seed,
            "time_mode": self.options.time_mode,
            "rig": self.options.rig.name,
            "duration_s": self.duration_ns / 1e9,
            "start_host_ns": self.start_ns,
            "boards": self.boards.describe,
            "latency_us": latency,
            "deadline_misses": self.deadline.summary(),
            "plots": self.counts["plots"],
            "tracks": len(self.track_ids_seen),
            "confirmed_tracks": len(self.confirmed_ids_seen),
            "gospa_mean_m": round(float(np.mean(self.gospa_samples)), 1) if self.gospa_samples else None,
            "gospa": {"c_m": GOSPA_C_M, "p": GOSPA_P, "alpha": GOSPA_ALPHA},
            "decisions": self.decisions,
            "decisions_deferred": self.counts["decisions_deferred"],
            "launches": self.counts["launches"],
            "engagements": engagements,
            "refusals": sorted(self.refusals.values(), key=lambda r: (r["time_s"], r["track"])),
            "friendly_engagements": friendly_engagements,
            "links": self._link_counters(),
            "realtime": self.realtime_applied,
            "floor_us": histogram_summary(self.floor) if self.floor is not None else None,
            "floor_note": self.floor_note,
            "faults": [{"time_s": f.t_s, "board": f.board, "kind": f.kind} for f in self.options.faults],
            "launchers": self.setup_report,
            "machine": {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
        }
        if self.writer:
            self.writer.finish(summary, self.latency, self.floor)
        return summary

    def _link_counters(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        links = [*self.boards.radars, *self.boards.launchers]
        names = [s.name for s in self.scenario.radars] + [s.name for s in self.scenario.launchers]
        for name, link in zip(names, links, strict=True):
            counters = link.counters
            out[name] = counters.summary() if hasattr(counters, "summary") else dict(vars(counters))
        return out


def run_chain(options: RunOptions) -> dict[str, Any]:
    """Run a scenario through the chain and return summary.json's content."""
    chain = Chain(options)
    return asyncio.run(chain.run())


__all__ = ["Chain", "Fault", "RunOptions", "run_chain"]
