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
import functools
import gc
import importlib
import logging
import math
import os
import platform
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from hil.clock import LOOP_PERIOD_NS, Clock, RealClock, VirtualClock
from hil.drivers.faults import BYTE_KINDS, LinkFault, board_events, check_links, parse_faults
from hil.drivers.launcher_link import FireResult, Identity, LauncherLink
from hil.errors import LinkError
from hil.host.host import FireOrder, RadarPoll, build_host
from hil.host.launchers import LAUNCHER_PERIOD_NS, LauncherKeeper
from hil.host.plugins import HostChoice
from hil.measure.floor import FloorProbe
from hil.measure.latency import DeadlineMonitor, StageLatency, histogram_summary
from hil.measure.realtime import RealtimeOptions, board_placement, collect_young_garbage, realtime
from hil.measure.verdict import criteria_from, judge, merged
from hil.plant.boards import Boards, bring_up
from hil.plant.local import LocalPlant
from hil.plant.outcomes import GOSPA_ALPHA, GOSPA_C_M, GOSPA_P, Outcomes, TrackScorer, outcomes, outcomes_in_stages
from hil.plant.radars import STIMULUS_PERIOD_NS
from hil.procutil import board_cpus
from hil.records.runfolder import RunWriter, event_row
from hil.rig import Rig
from hil.scenario import LauncherSpec, Scenario

# numpy loads these on their first use, 8-11 ms each on this project's VM: np.unique's first call imports numpy.ma (the
# first GOSPA with ambiguous pairs, at 300 targets, made a loop iteration of 7-13 ms), np.random its bit generators.
# Loaded with the runtime, not in a loop iteration.
LOADED_BEFORE_THE_LOOP = ("numpy.ma", "numpy.random")
for _module in LOADED_BEFORE_THE_LOOP:
    importlib.import_module(_module)

log = logging.getLogger("hil.run")

TIME_SYNC_PERIOD_NS = 500_000_000
METRICS_PERIOD_NS = 1_000_000_000
FC_PERIOD_NS = 100_000_000  # fire control also runs on this tick when no plot arrived
FIRE_WAIT_S = 0.005  # the longest the loop waits for the exchanges of the fires it just sent (_fires_first)
# a loop iteration's share of the staged work (metrics, journal) in real time: the rest of the period is the host's
STAGED_BUDGET_NS = 1_000_000
# none in an iteration that has already computed this long (at 300 targets about half the compute overruns were such an
# iteration, then a stage of 1-3.5 ms), unless this many in a row left it: the loop wakes hundreds of times a second,
# mostly briefly
STAGED_AFTER_NS = 2_000_000
STAGED_SKIPS_MAX = 40
JOURNAL_PERIOD_NS = 3_000_000_000  # the summary so far reaches the run folder this often (a killed run keeps it)
SHUTDOWN_S = 5.0  # the longest the end of a run may take: fires finishing, launchers made safe, boards reaped
BRING_UP_S = 15.0  # each board link gets this long (retries with backoff) to come up before the run gives up
WATCHDOG_MS = 500  # the launcher boards' watchdog: heartbeats keep their own period well inside it
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


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
    realtime: RealtimeOptions | None = None  # applied around the loop in real time
    faults: tuple[LinkFault, ...] = ()  # scheduled link faults (--fault and the scenario's faults)
    report: bool = True  # render report.html at the end
    floor: bool = True  # real time: measure the machine's scheduling floor beside the loop
    tracker: str | None = None  # the host's tracker (hil.host.plugins); None: the scenario's [host] choice
    fire_control: str | None = None  # the host's fire control, likewise
    criteria: dict[str, Any] = field(default_factory=dict)  # over the rig's and the scenario's (hil.measure.verdict)
    # FireControlConfig fields to override (tests and the before/after tables switch protection off with them)
    fire_control_overrides: dict[str, Any] = field(default_factory=dict)


class StagedWork:
    """Work of a generator, stage by stage (up to each yield): the loop spreads milliseconds of work over iterations
    so none of them overruns its period. step() runs stages until its time budget is spent (one at least); the
    stages are kept short (a millisecond or so at 300 targets) so a step ends soon after its budget. Starting new work
    finishes what is left of the old first."""

    def __init__(self) -> None:
        self._work: Iterator[None] | None = None

    def start(self, work: Iterator[None]) -> None:
        """New work; its first stage runs at the next step()."""
        self.finish()
        self._work = work

    def step(self, all_of_it: bool = False, until_ns: int = 0) -> None:
        """Stages until the monotonic clock passes until_ns (one at least; every stage left, when all_of_it)."""
        if self._work is None:
            return
        for _ in self._work:
            if not all_of_it and time.monotonic_ns() >= until_ns:
                return
        self._work = None

    def finish(self) -> None:
        self.step(all_of_it=True)

    def cancel(self) -> None:
        self._work = None


def staged_skips_after(computed_ns: int, skips: int) -> int:
    """Whether an iteration that has computed computed_ns leaves the staged work to a later one: the count of
    iterations in a row that have (0: this one runs its stages). A heavy one (past STAGED_AFTER_NS) leaves it, unless
    STAGED_SKIPS_MAX in a row did: the staged work always goes on."""
    return skips + 1 if computed_ns > STAGED_AFTER_NS and skips < STAGED_SKIPS_MAX else 0


@dataclass
class Chain:
    options: RunOptions
    clock: Clock = field(init=False)
    boards: Boards = field(init=False)

    def __post_init__(self) -> None:
        o = self.options
        # what the run must achieve: the rig's limits, then the scenario's, then the caller's, name by name
        self.criteria = merged(criteria_from(o.rig.criteria, o.rig.source),
                               criteria_from(o.scenario.criteria, o.scenario.source),
                               criteria_from(o.criteria, "--criteria"))
        self.scenario = o.scenario
        self.duration_ns = int((o.duration_s or o.scenario.duration_s) * 1e9)
        self.clock = VirtualClock() if o.time_mode == "virtual" else RealClock()
        self.latency = StageLatency()
        self.deadline = DeadlineMonitor(period_ns=LOOP_PERIOD_NS, budget_ns=LOOP_PERIOD_NS)
        # the system under test: it never sees truth, only what comes over the wire
        self.host_choice = HostChoice(o.tracker, o.fire_control).resolved(o.scenario)
        self.host = build_host(o.scenario, self.host_choice.tracker, self.host_choice.fire_control,
                               o.fire_control_overrides,
                               on_event=self._host_event)
        self.writer = RunWriter(o.out_dir, o.scenario, record=o.record, report=o.report) if o.out_dir else None
        self.host.records = self.writer
        self.host.records_before_next_poll = True  # bookkeeping() every loop iteration, after the poll's fires
        self.local_plant = o.rig.plant != "external"  # external: `hil plant` flies truth and scores this host
        self.system_tracks = None
        if o.rig.system_tracks:
            from hil.drivers.cat062 import SystemTrackPublisher

            self.system_tracks = SystemTrackPublisher(o.rig.system_tracks, sac=0, sic=100,
                                                      origin=o.scenario.origin_lla or (0.0, 0.0, 0.0))
        self.launchers = LauncherKeeper(o.scenario, o.rig, self.clock, self.run_s, self._event, self._reconcile)
        self.fire_tasks: set[asyncio.Task[None]] = set()
        self.radar_last_rx_ns = [0] * len(o.scenario.radars)  # host ns of each radar's newest plot or sector message
        self.stage_samples: list[tuple[str, int]] = []  # decode and track times, recorded after the fire commands
        self.counts: Counter[str] = Counter()
        self.scorer = TrackScorer()
        self.track_truth = self.scorer.track_truth  # host track id -> the true target it follows (report only)
        self.events: list[dict[str, Any]] = []
        self.start_ns = 0
        self.started = False  # the boards came up and run time began (virtual time starts at 0 ns)
        self.setup_report: list[dict[str, Any]] = []
        self.realtime_applied: list[list[Any]] = []
        self.floor: HdrHistogram | None = None  # the machine's scheduling-latency histogram (ns), real time only
        self.floor_note = ""
        self.interrupted: str | None = None  # the signal that ended the run early
        self.shutdown_s = math.nan  # wall time the end of the run took (fires finished, launchers safe, boards reaped)
        self._main: asyncio.Future[None] | None = None
        # work of milliseconds at 300 targets, done a stage an iteration in real time: the metrics, the journal
        self.metrics_work, self.journal_work = StagedWork(), StagedWork()
        self.stopping = False  # a signal or the deadline guard ended the run
        names = [s.name for s in o.scenario.radars] + [s.name for s in o.scenario.launchers]
        self.link_faults = parse_faults(o.scenario.faults, o.scenario.source) + tuple(o.faults)
        check_links(self.link_faults, names)
        # the world: truth, the radars' stimulus, the interceptors (silent / resume faults are board events it applies)
        self.plant = LocalPlant(o.scenario, o.seed, board_events(self.link_faults), self._event)
        self.truth, self.engagement = self.plant.truth, self.plant.engagement

    # --- time ----------------------------------------------------------------------------------------

    def run_s(self, host_ns: int) -> float:
        return (host_ns - self.start_ns) / 1e9

    # --- bring-up ------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        """Start the boards and bring every link up (retried with backoff); the launchers stay SAFE here."""
        sc = self.scenario
        recorder = self.writer.recorder if self.writer else None
        # the emulated boards this run starts (none in virtual time, none against a plant elsewhere: they are its)
        cpus, placed = (None, None) if self.clock.virtual or not self.local_plant else \
            board_placement(self.options.realtime)
        with board_cpus(cpus):
            self.boards = bring_up(sc, self.options.rig, self.clock, self.clock.virtual, recorder, self.options.seed,
                                   faults=tuple(f for f in self.link_faults if f.kind in BYTE_KINDS))
        if placed is not None:
            self.realtime_applied.append(list(placed))
        self.launchers.links = self.boards.launchers
        self.start_ns = self.host.start_ns = self.clock.now_ns()
        self.started = True
        self.boards.start_faults(self.start_ns)
        if self.local_plant:
            # the plant's part of bring-up: the radars learn their sensor, the launchers report launches to it
            self.plant.attach(self.boards, self._board_launch_time)
        await self._exchange_radar_sync(rounds=8)
        for i, link in enumerate(self.boards.launchers):
            site = sc.launchers[i]
            ident = await self._with_retries(site.name, functools.partial(self._launcher_up, link, site))
            self.launchers.state[i].status = link.status
            self.setup_report.append({"launcher": site.name, "identity": str(ident)})
        self._send_stimulus(self.clock.now_ns())

    @staticmethod
    async def _launcher_up(link: LauncherLink, site: LauncherSpec) -> Identity:
        await link.connect()
        ident = await link.identify()
        await link.configure(watchdog_ms=WATCHDOG_MS, reload_ms=int(site.reload_s * 1000), rounds=site.rounds)
        for _ in range(8):  # clock-sync samples before the first command
            await link.read_status()
        return ident

    async def _with_retries(self, name: str, attempt: Callable[[], Any]) -> Any:
        """attempt() until it succeeds, with backoff, for at most BRING_UP_S; then one clear LinkError."""
        give_up = time.monotonic() + BRING_UP_S
        backoff_s, tries = 0.1, 0
        while True:
            tries += 1
            try:
                return await attempt()
            except LinkError as e:
                if time.monotonic() + backoff_s > give_up or (self.clock.virtual and tries >= 3):
                    raise LinkError(f"{name} did not come up after {tries} tries: {e}") from None
                log.warning("%s: bring-up try %d failed (%s); again in %.1f s", name, tries, e, backoff_s)
                self.counts["bring_up_retries"] += 1
                await asyncio.sleep(backoff_s)
                backoff_s = min(2 * backoff_s, 2.0)

    async def _exchange_radar_sync(self, rounds: int) -> None:
        for _ in range(rounds):
            for link in self.boards.radars:
                link.request_time_sync()
            await self._settle_ns(2_000_000)
            self._poll_radars()
            self.record_stage_samples()

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
        if self.local_plant:  # else the plant elsewhere stimulates the radars itself
            self.plant.stimulus(self.run_s(now_ns))

    def _plant(self, now_ns: int) -> None:
        if self.local_plant:
            self.plant.step(self.run_s(now_ns))

    # --- the host under test -------------------------------------------------------------------------

    def _decide(self, now_ns: int) -> list[asyncio.Task[None]]:
        """Fire control now; each fire order goes out at once, its bookkeeping waits (Host.bookkeeping). Returns
        the fire commands' tasks."""
        self.host.last_poll = self.boards.radars[0].stats["polls"] if self.boards.radars else 0
        self.host.fire_control_ns = 0
        orders = self.host.decide(self.run_s(now_ns), self.launchers.inputs())
        tasks = []
        for order in orders:
            sending = self._fire_now(order)  # the command written first; then the rest
            self.launchers.state[order.launcher].busy = True
            task = asyncio.ensure_future(self._fire(order, *sending))
            self.fire_tasks.add(task)
            task.add_done_callback(self.fire_tasks.discard)
            tasks.append(task)
        if self.host.fire_control_ns:  # after the fire commands went out (a histogram flush may come with it)
            self.stage_samples.append(("fire_control", self.host.fire_control_ns))
        return tasks

    def _fire_now(self, fire: FireOrder) -> tuple[float, int, asyncio.Task[FireResult] | None]:
        """Real time: the fire command written now, in the decision's own call, when its launcher's link is free
        and settled (else _fire sends it: after the exchange under way, or after settling a lost answer). The run
        time it went out, the host's clock then (ns), and the task that gives its result (None: not sent yet)."""
        fired_s, t_begin = self.run_s(self.clock.now_ns()), time.perf_counter_ns()
        link = self.boards.launchers[fire.launcher]
        if self.clock.virtual or link.unconfirmed_seq:
            # virtual time gains nothing by it, and keeps each fire's write and read-back together in the records
            return fired_s, t_begin, None
        return fired_s, t_begin, link.fire_now(fire.track_id, *self._aim_of(fire), fire.tgo_s)

    def _aim_of(self, fire: FireOrder) -> tuple[float, float, float]:
        """The aim from the launcher: azimuth clockwise from north and elevation (rad), slant range (m); in plain
        floats (the same arithmetic as numpy's on the arrays, cheaper)."""
        position = self.scenario.launchers[fire.launcher].position
        ax, ay, az_m = fire.aim
        east, north, up = ax - position[0], ay - position[1], az_m - position[2]
        az = math.atan2(east, north) % (2 * math.pi)
        el = max(0.0, math.atan2(up, math.hypot(east, north)))
        return az, el, math.sqrt(east * east + north * north + up * up)

    async def _fire(self, fire: FireOrder, fired_s: float, t_begin: int,
                    sending: asyncio.Task[FireResult] | None) -> None:
        """A fire order's exchange (sending: already written by _fire_now) and the host told how it went."""
        li = fire.launcher
        link = self.boards.launchers[li]
        site = self.scenario.launchers[li]
        try:
            if sending is not None:
                result = await sending
            else:
                if link.unconfirmed_seq:
                    await self._reconcile(li)  # never command a launcher again before its last fire is settled
                result = await link.fire(fire.track_id, *self._aim_of(fire), fire.tgo_s)
        except LinkError as e:
            log.warning("fire on track %d by %s failed: %s", fire.track_id, site.name, e)
            result = None
        except asyncio.CancelledError:
            # cancelled (the run ends) just as the exchange written by _fire_now ended: its outcome still counts
            # (one cancelled before that is unconfirmed, and the end of the run reads the board back)
            if sending is not None and sending.done() and not sending.cancelled() and sending.exception() is None:
                self._fire_done(fire, fired_s, t_begin, sending.result())
            raise
        finally:
            self.launchers.state[li].busy = False
            if link.status is not None:
                # the fire's readback says the launcher is reloading now: fire control must not wait for the
                # next status tick to learn it (it would decide fires the link then refuses unsent)
                self.launchers.state[li].status = link.status
            self.launchers.inputs()  # built now, while the answer is news: not on the next fire's path
        self._fire_done(fire, fired_s, t_begin, result)

    def _fire_done(self, fire: FireOrder, fired_s: float, t_begin: int, result: FireResult | None) -> None:
        """The host told how a fire order went (result None: the link failed), and its latency recorded."""
        li = fire.launcher
        if result is not None and result.unconfirmed:
            # sent, but its answer or read-back was lost: possibly in flight, settled by reading the board back
            self.host.fire_answered(fire, fired_s, result.seq, "unconfirmed")
            return
        if result is None or not result.accepted:
            self.host.fire_answered(fire, self.run_s(self.clock.now_ns()), None, "refused",
                                    reason=getattr(result, "reason", "link error"))
            return
        # in virtual time the write takes no virtual time: report the host's own cost of the exchange
        self.latency.record("command", result.round_trip_ns if not self.clock.virtual
                            else time.perf_counter_ns() - t_begin)
        if fire.t1_ns:
            self.latency.record("host_total", result.written_ns - fire.t1_ns)
        launcher_sync = self.boards.launchers[li].clock_sync
        t5_host_ns = launcher_sync.board_to_host_ns(result.board_accept_us)
        if fire.t0_host_ns:
            self.latency.record_with_uncertainty(
                "sensor_to_shooter", t5_host_ns - fire.t0_host_ns,
                fire.t0_uncertainty_ns + int(launcher_sync.uncertainty_ns))
        self.host.fire_answered(fire, fired_s, result.seq, "accepted")
        self._host_launch(li, fire.track_id, result.seq, self.run_s(max(t5_host_ns, self.start_ns)),
                          fire.aim, fire.tgo_s)

    def _host_launch(self, li: int, track_id: int, seq: int, t_launch: float, aim: tuple[float, float, float],
                     tgo_s: float) -> None:
        """A launch the host counts (confirmed by read-back): an event; the plant learns it from the board."""
        self.counts["launches"] += 1
        self._host_event(t_launch, "launch", track=track_id, launcher=li, detail=f"seq {seq}")
        if self.local_plant:
            # a board with no channel of its own to the plant (hardware, a firmware without a launch record): the
            # plant takes the launcher's read-back, which is still the board's account, not fire control's
            self.plant.launch_from_readback(li, track_id, seq, t_launch, aim, tgo_s)

    def _board_launch_time(self, li: int, board_us: int) -> float:
        """Run time of a launch a launcher board reports by its own clock (now, if its clock is not yet known)."""
        sync = self.boards.launchers[li].clock_sync
        now_ns = self.clock.now_ns()
        t_ns = sync.board_to_host_ns(board_us) if board_us and sync.uncertainty_ns < 1e12 else now_ns
        return self.run_s(min(max(t_ns, self.start_ns), now_ns))

    async def _reconcile(self, li: int) -> None:
        """Settle a fire whose answer was lost, by reading back the launcher's launch counter and last sequence."""
        link = self.boards.launchers[li]
        seq = link.unconfirmed_seq
        outcome = await link.reconcile()
        r = self.host.settled(li, seq, outcome.launched, self.run_s(self.clock.now_ns()))
        if r is not None and outcome.launched:
            t_launch = self.run_s(max(link.clock_sync.board_to_host_ns(outcome.board_launch_us), self.start_ns))
            self._host_launch(li, r.track_id, seq, t_launch, r.aim, r.intercept_s - r.fired_s)

    # --- bookkeeping ---------------------------------------------------------------------------------

    def _host_event(self, t_s: float, event: str, *, track: int = -1, launcher: int = -1, detail: str = "") -> None:
        """An event of the host's: the report names the true target its track follows (the host never knows)."""
        self._event(t_s, event, track=track, target=self.track_truth.get(track, -1), launcher=launcher, detail=detail)

    def _event(self, t_s: float, event: str, track: int = -1, target: int = -1, launcher: int = -1,
               detail: str = "") -> None:
        row = event_row(self.scenario, t_s, event, track, target, launcher, detail)
        self.events.append(row)
        if self.writer:
            self.writer.event(row)

    def _metrics(self, now_ns: int) -> Iterator[None]:
        """The tracks now: published as system tracks, then scored against truth, then written, a stage per next()
        (the loop spreads them over iterations in real time: at 300 targets each takes milliseconds)."""
        t = self.run_s(now_ns)
        tracks = self.host.tracker.tracks(t)
        if self.system_tracks is not None:
            # the system tracks, as a fire-control computer publishes them (CAT062), stamped in UTC time of day
            self.system_tracks.publish(time.time() % 86_400.0, tracks.track_id, tracks.status, tracks.state,
                                       tracks.mode3a)
        if not self.local_plant:
            return  # tracking is scored by the plant, from the system tracks
        snap = self.truth.at(t)
        yield
        confirmed = tracks.confirmed
        g = self.scorer.gospa(snap.state[:, :3], tracks.state[confirmed, :3])
        yield
        self.scorer.vote(snap.index, snap.state[:, :3], tracks.track_id, tracks.state[:, :3])
        if self.writer:
            yield
            yield from self.writer.metrics_in_stages(t, snap, tracks, confirmed, g)

    def _status(self, now_ns: int) -> None:
        if not self.options.status:
            return
        tracks = self.host.tracker.tracks(None)
        host = self.latency.summary().get("host_total", {})
        self.options.status({
            "t_s": self.run_s(now_ns), "tracks": len(tracks.track_id),
            "confirmed": int(tracks.confirmed.sum()), "launches": self.counts["launches"],
            "kills": sum(1 for m in self.engagement.finished if m.result == "killed"),
            "host_p99_us": host.get("p99"),
        })

    # --- the loop ------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        """Bring up, arm, run to the deadline (or a signal), end within SHUTDOWN_S; the summary always comes back."""
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        probe = None
        heartbeats: list[asyncio.Task[None]] = []
        failed = True
        try:
            await self._connect()
            # what exists now lives through the run: out of the collector's sight, a full collection no longer
            # walks every module's objects (20 ms at 300 targets, once or twice a run, on whatever was running)
            gc.collect()
            gc.freeze()
            self._journal()
            if not self.clock.virtual:
                # everything slow starts before arming, and heartbeats keep the watchdogs fed from now on
                if self.options.floor:
                    probe = self._start_floor()
                heartbeats = [asyncio.ensure_future(self.launchers.keep(i)) for i in range(len(self.boards.launchers))]
            await self.launchers.arm_all()
            if self.interrupted is None:
                body = self._loop() if self.clock.virtual else self._loop_real_time()
                self._main = asyncio.ensure_future(body)
                guard = None
                if not self.clock.virtual:
                    # the run ends at its duration whatever the links do: the loop's own check, and this behind it
                    left_s = (self.start_ns + self.duration_ns - self.clock.now_ns()) / 1e9
                    guard = loop.call_later(max(0.0, left_s) + 1.0, self._overrun)
                try:
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._main
                finally:
                    if guard is not None:
                        guard.cancel()
            failed = False
        finally:
            gc.unfreeze()  # a process that runs again (a campaign worker) collects this run's objects
            t_shutdown = time.monotonic()
            await self._shutdown(heartbeats, probe)
            self.shutdown_s = time.monotonic() - t_shutdown
            self._remove_signals(loop)
            if failed and self.writer is not None:
                # the records so far stay readable: a last journal of what is known, every row flushed
                try:
                    self.metrics_work.finish()
                    self._journal()
                except Exception as e:  # the run's own error is the one to report
                    log.debug("no last journal: %s", e)
                self.writer.close()
        return self.summary()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in SIGNAL_EXIT:
            # not in the main thread (a campaign worker, a test thread) this fails: the caller handles signals
            with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
                loop.add_signal_handler(sig, self._interrupt, sig)

    @staticmethod
    def _remove_signals(loop: asyncio.AbstractEventLoop) -> None:
        for sig in SIGNAL_EXIT:
            with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
                loop.remove_signal_handler(sig)

    def _interrupt(self, sig: int) -> None:
        """SIGINT / SIGTERM: end the run now, cleanly (summary marked interrupted, report written)."""
        if self.interrupted is None:
            self.interrupted = signal.Signals(sig).name
            log.warning("%s: ending the run", self.interrupted)
        self._stop()

    def _stop(self) -> None:
        # the loops check the flag every iteration: a cancel alone can be lost (asyncio.wait_for in Python 3.11
        # swallows a cancellation that races with its awaited event, and radar bytes arrive all the time)
        self.stopping = True
        if self._main is not None:
            self._main.cancel()

    def _overrun(self) -> None:
        if self._main is not None and not self._main.done():
            log.warning("the run's loop did not end at its duration: stopped")
            self.counts["loop_stopped_at_deadline"] += 1
            self._stop()

    def _start_floor(self) -> FloorProbe:
        """The cyclictest-style probe process (hil.measure.floor) beside the loop, on the loop's CPUs."""
        rt = self.options.realtime
        prio = None if rt is None or rt.fifo_priority is None else min(rt.fifo_priority + 1, 99)
        return FloorProbe(period_us=1000, fifo_priority=prio, cpus=None if rt is None else rt.cpus).start()

    async def _shutdown(self, heartbeats: list[asyncio.Task[None]], probe: FloorProbe | None) -> None:
        """Finish in-flight fires, make the launchers safe, stop heartbeats, reap every board: SHUTDOWN_S at most."""
        deadline = time.monotonic() + SHUTDOWN_S

        def left() -> float:
            return max(0.05, deadline - time.monotonic())

        if self.fire_tasks:
            _, late = await asyncio.wait(list(self.fire_tasks), timeout=left() / 2)
            for task in late:
                task.cancel()
        boards = getattr(self, "boards", None)
        for task in heartbeats:
            task.cancel()
        await asyncio.gather(*heartbeats, return_exceptions=True)
        if boards is not None:
            for i, link in enumerate(boards.launchers):
                if not link.connected:
                    continue
                if link.unconfirmed_seq:
                    # settle a fire whose answer was lost, so the run's launch count is the boards' count
                    try:
                        await asyncio.wait_for(self._reconcile(i), timeout=min(1.0, left()))
                    except (LinkError, TimeoutError) as e:
                        log.warning("%s: a lost fire was not read back at the end: %s", link.name, e or "no answer")
                try:
                    await asyncio.wait_for(link.make_safe(), timeout=min(1.0, left()))
                except (LinkError, TimeoutError) as e:
                    log.warning("could not make %s safe at the end: %s", link.name, e or "no answer")
        if self.local_plant:
            self.plant.take_board_launches()  # a launch in the run's last moments still reaches the plant
        if probe is not None:
            self.floor = await asyncio.get_running_loop().run_in_executor(None, probe.stop)
            self.floor_note = probe.note
        if boards is not None:
            self._finish_links()

    async def _loop_real_time(self) -> None:
        """The loop, under the real-time options asked for (SCHED_FIFO, CPU pinning, mlock, a frozen GC)."""
        if self.options.realtime is not None and self.options.realtime.any():
            # after bring-up, so the emulator processes inherit neither SCHED_FIFO nor the loop's CPU
            with realtime(self.options.realtime) as applied:
                self.realtime_applied += [[a.option, a.applied, a.message] for a in applied]
                for a in applied:
                    if not a.applied:
                        log.warning("real-time option %s not applied: %s", a.option, a.message)
                await self._loop()
        else:
            await self._loop()

    def _finish_links(self) -> None:
        for link in self.boards.launchers:
            try:
                link.close()
            except Exception as e:  # closing must never hide the run's result
                log.debug("closing %s: %s", link, e)
        self.boards.close()

    def _poll_radars(self) -> bool:
        """Every radar's poll into the host; True when plots came. The decode and track times wait in
        stage_samples until record_stage_samples(), after any fire command of this iteration went out."""
        polled = []
        samples = self.stage_samples
        for i, link in enumerate(self.boards.radars):
            t_begin = time.perf_counter_ns()
            batch, services = link.poll(defer_record=True)
            if (batch is not None and batch.n) or services:
                samples.append(("decode", time.perf_counter_ns() - t_begin))
                self.radar_last_rx_ns[i] = self.clock.now_ns()
            # before a radar's first time-sync answer its uncertainty is unbounded: such plots carry no t0
            polled.append(RadarPoll(i, batch, services, link.clock_sync.uncertainty_ns))
        got = self.host.take_plots(polled)
        if got:
            samples.append(("track", self.host.track_ns))
        return got

    def record_stage_samples(self) -> None:
        """The stage times taken on the fire command's path, into their histograms (off that path)."""
        for stage, ns in self.stage_samples:
            self.latency.record(stage, ns)
        self.stage_samples.clear()

    async def _loop(self) -> None:
        """The run's one loop, over its clock. Each iteration: wait for the next 5 ms tick (real time: or radar
        bytes, whichever comes first; virtual time: advance the clock and step the in-process boards), poll the
        radars into the host, decide and send fires (when the plots were news to fire control, Host.has_news, or
        every FC_PERIOD_NS), then the bookkeeping off the critical path, the plant, the
        radars' stimulus and clock sync, metrics, status and the journal. In virtual time the launchers' heartbeat
        ticks run here (in real time each launcher has its own task) and a fire completes within its iteration."""
        virtual = isinstance(self.clock, VirtualClock)
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        if not virtual:
            for link in self.boards.radars:
                loop.add_reader(link.fileno(), wake.set)
        end = self.start_ns + self.duration_ns
        now = self.clock.now_ns()
        next_tick = now + LOOP_PERIOD_NS
        free_ns = now  # when the loop last finished an iteration
        staged_skips = 0  # iterations in a row that left the staged work (heavy ones)
        # the periodic work counts from the run's start in virtual time (bring-up took virtual time already: those
        # ticks are due at once), from now in real time (no burst of late work after a slow bring-up)
        start = self.start_ns if virtual else now
        next_stim = next_launcher = next_sync = next_metrics = next_fc = start
        status_period_s = 0.5 if virtual else 1.0
        next_status_wall = time.monotonic() + (0.0 if virtual else status_period_s)
        next_journal_wall = time.monotonic() + JOURNAL_PERIOD_NS / 1e9
        try:
            while self.clock.now_ns() < end and not self.stopping:
                woke = await self._wait_tick(next_tick, wake)
                cpu_woke_ns = 0 if virtual else time.thread_time_ns()  # the CPU time this iteration uses (overruns)
                ticked = woke >= next_tick
                waited_ns = 0  # of this iteration, idle for the exchanges of its fires (not compute)
                got = self._poll_radars()
                if virtual and woke >= next_launcher:
                    for i in range(len(self.boards.launchers)):
                        await self.launchers.tick(i)
                    next_launcher += LAUNCHER_PERIOD_NS
                if (got and self.host.has_news(self.run_s(woke))) or woke >= next_fc:
                    sent = self._decide(woke)
                    next_fc = woke + FC_PERIOD_NS
                    if virtual:
                        for task in list(self.fire_tasks):
                            await task
                    elif sent:
                        await asyncio.sleep(0)  # let the fire commands go out before any bookkeeping
                        waited_ns += await self._fires_first(sent)
                for link in self.boards.radars:
                    link.record_received()  # what the polls received, now that the fire commands went out
                self.record_stage_samples()
                await self._let_fires_on()
                self.host.bookkeeping()
                # what fire control will be told of the launchers, built now if a launcher changed (this iteration's
                # fires made theirs busy), not on the next fire's path; heartbeat ticks and fires' answers that come
                # while the loop waits build it where they change it (LauncherKeeper.keep, _fire)
                self.launchers.inputs()
                self.host.assess(self.run_s(woke))
                await self._let_fires_on()
                self._plant(woke)
                if woke >= next_stim:
                    await self._let_fires_on()
                    self._send_stimulus(woke)
                    next_stim += STIMULUS_PERIOD_NS
                await self._let_fires_on()
                if woke >= next_sync:
                    for link in self.boards.radars:
                        link.request_time_sync()
                    next_sync += TIME_SYNC_PERIOD_NS
                if woke >= next_metrics:
                    self.metrics_work.start(self._metrics(woke))
                    next_metrics += METRICS_PERIOD_NS
                # real time: the staged work's stages up to STAGED_BUDGET_NS an iteration (metrics first, then the
                # journal in what is left), never all at once, and none in a heavy iteration (staged_skips_after)
                staged_until = time.monotonic_ns() + STAGED_BUDGET_NS
                computed_ns = self.clock.now_ns() - woke - waited_ns
                staged_skips = 0 if virtual else staged_skips_after(computed_ns, staged_skips)
                if staged_skips:
                    staged_until = 0  # (no stage this iteration)
                else:
                    self.metrics_work.step(all_of_it=virtual, until_ns=staged_until)
                if time.monotonic() >= next_status_wall:
                    self._status(woke)
                    next_status_wall += status_period_s
                    if virtual:
                        await asyncio.sleep(0)  # let a signal's handler run: nothing else in virtual time yields
                if time.monotonic() >= next_journal_wall:
                    self.journal_work.start(self._journal_stages())
                    next_journal_wall += JOURNAL_PERIOD_NS / 1e9
                if virtual or time.monotonic_ns() < staged_until:
                    self.journal_work.step(all_of_it=virtual, until_ns=staged_until)
                if not virtual:
                    collect_young_garbage()  # not on the next fire command's path (counted as this iteration's work)
                    # every iteration's compute is judged, whatever woke it; a tick's lateness counts from when the
                    # loop was free (a long iteration before it is judged there, not again as lateness)
                    end_ns = self.clock.now_ns()
                    self.deadline.record(lateness_ns=woke - max(next_tick, free_ns) if ticked else None,
                                         compute_ns=end_ns - woke - waited_ns,
                                         cpu_ns=time.thread_time_ns() - cpu_woke_ns)
                    free_ns = end_ns
                if ticked:
                    next_tick += LOOP_PERIOD_NS * max(1, (woke - next_tick) // LOOP_PERIOD_NS + 1)
        finally:
            if not virtual:
                for link in self.boards.radars:
                    loop.remove_reader(link.fileno())

    async def _fires_first(self, sent: list[asyncio.Task[None]]) -> int:
        """Real time, fire commands just sent (sent: their tasks, not older ones still settling a lost answer): the
        loop waits for their exchanges (the command, then the launcher's read-back) before anything else,
        FIRE_WAIT_S at most. Radar bytes that come meanwhile wait in the link for the next iteration: it reads them
        then, so their t1 and host_total start there, and their age at a fire (sensor to shooter) counts the wait.
        A tick the wait makes late is an overrun put down to the OS, as the deadline monitor puts down a loop busy
        with a Modbus exchange. Without it the answers waited behind the loop's next work: at 300 targets that
        doubled the command's round trip (about 1 ms at 10 targets and at 300 with it). Returns the time waited
        (ns): idle, not the iteration's compute (the callbacks that run meanwhile are not counted either)."""
        t0 = self.clock.now_ns()
        if any(not task.done() for task in sent):
            await asyncio.wait(sent, timeout=FIRE_WAIT_S)
        return self.clock.now_ns() - t0

    async def _let_fires_on(self) -> None:
        """Real time, a fire command's exchange under way: a pass of the event loop between two pieces of the
        iteration's other work, so its answer is taken in (and the read-back after it sent) as soon as it comes, not
        after the whole iteration (at 300 targets the iteration's work is milliseconds)."""
        if self.fire_tasks and not self.clock.virtual:
            await asyncio.sleep(0)

    async def _wait_tick(self, tick_ns: int, wake: asyncio.Event) -> int:
        """Until the tick (real time: or until radar bytes arrive); the time woken. Virtual time advances the clock
        to the tick and steps every in-process board to it."""
        if isinstance(self.clock, VirtualClock):
            self.clock.advance_to(tick_ns)
            self.boards.step_virtual(tick_ns)
            return tick_ns
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=max(0.0, (tick_ns - self.clock.now_ns()) / 1e9))
        wake.clear()
        return self.clock.now_ns()

    # --- the result ----------------------------------------------------------------------------------

    def _journal(self) -> None:
        """The summary so far, replaced atomically in the run folder: what a killed run leaves behind."""
        self.journal_work.start(self._journal_stages())
        self.journal_work.finish()

    def _journal_stages(self) -> Iterator[None]:
        """_journal in stages (the outcomes a hundred targets at a time, the latency figures, the refusals, the rest
        of the summary, the records, the summary's JSON a part at a time, the file): at 300 targets the whole takes
        more than a loop period, and no stage much more than a millisecond."""
        if self.writer is None:
            return
        found = yield from outcomes_in_stages(*self._outcome_inputs())
        yield
        latency = yield from self.latency.summary_in_stages()
        refusals = self._refusals()
        yield
        summary = self._summary(found, latency, refusals)
        yield
        self.host.flush_records()
        yield from self.writer.journal_in_stages(summary)

    def rig_health(self) -> list[str]:
        """What went wrong with the rig itself, one line each: any line makes the run exit 3."""
        end_ns = self.clock.now_ns()
        problems = self.launchers.problems(end_ns)
        boards = getattr(self, "boards", None)
        for i in range(len(boards.radars) if boards is not None else 0):
            name = self.scenario.radars[i].name
            last = self.radar_last_rx_ns[i]
            silent_s = (end_ns - (last or self.start_ns)) / 1e9
            limit_s = max(3.0 * self.scenario.radars[i].scan_period_s, 2.0)
            if last == 0:
                problems.append(f"radar {name} sent nothing")
            elif silent_s > limit_s and self.interrupted is None:
                problems.append(f"radar {name} silent for the last {silent_s:.1f} s")
        return problems

    def summary(self) -> dict[str, Any]:
        """summary.json's content; the run folder gets its final summary, report and closed files."""
        self.record_stage_samples()  # a run that ended between a poll and its fire commands
        self.metrics_work.finish()
        self.journal_work.cancel()  # the final summary replaces any journal under way
        self.host.flush_records()
        summary = self._summary()
        summary["verdict"] = judge(summary, self.criteria)
        if self.writer:
            self.writer.finish(summary, self.latency, self.floor, interrupted=self.interrupted is not None)
        return summary

    def _outcome_inputs(self) -> tuple[Any, ...]:
        """hil.plant.outcomes.outcomes()' arguments as of now: each target's row and the plant's counts."""
        run_end_s = min(self.run_s(self.clock.now_ns()), self.duration_ns / 1e9) if self.started else 0.0
        return (self.scenario, self.truth, self.engagement, self.track_truth, run_end_s, self.host.refusals,
                self.host.confirmed_ids_seen)

    def _refusals(self) -> list[dict[str, Any]]:
        """Every refusal so far, in time order (then by track)."""
        return sorted(self.host.refusals.values(), key=lambda r: (r["time_s"], r["track"]))

    def _summary(self, found: Outcomes | None = None, latency: dict[str, Any] | None = None,
                 refusals: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The summary as of now; found, latency and refusals: the outcomes, the latency figures and the refusals,
        if just taken."""
        sc = self.scenario
        engagements, plant = found if found is not None else outcomes(*self._outcome_inputs())
        friendly_engagements = plant["acquired"]["friendly"] + plant["acquired"]["neutral"]
        plant_block: dict[str, Any] | None = plant
        if not self.local_plant:  # the plant elsewhere knows what flew and what it hit; this host does not
            engagements, plant_block, friendly_engagements = [], None, None
        latency = latency if latency is not None else self.latency.summary()
        rig_problems = self.rig_health()
        summary: dict[str, Any] = {
            "schema": 1,
            "interrupted": self.interrupted is not None,
            "shutdown_s": round(self.shutdown_s, 3) if math.isfinite(self.shutdown_s) else None,
            # how hard the run had to work to stay alive: link bring-up retries, heartbeat ticks that came late
            # (a starved loop), and whether the deadline guard had to stop a loop that overran its duration
            "bring_up_retries": self.counts["bring_up_retries"],
            "heartbeats_late": self.launchers.late_ticks,
            "loop_stopped_at_deadline": bool(self.counts["loop_stopped_at_deadline"]),
            "signal": self.interrupted,
            "rig_ok": not rig_problems,
            "rig_problems": rig_problems,
            "scenario": sc.name,
            "scenario_file": sc.source,
            "seed": self.options.seed,
            "time_mode": self.options.time_mode,
            "rig": self.options.rig.name,
            "duration_s": self.duration_ns / 1e9,
            "scenario_duration_s": sc.duration_s,
            "start_host_ns": self.start_ns,
            "boards": self.boards.describe,
            "latency_us": latency,
            "deadline_misses": self.deadline.summary(),
            "host": {"tracker": self.host_choice.tracker, "fire_control": self.host_choice.fire_control},
            "plots": self.host.counts["plots"],
            "tracks": len(self.host.track_ids_seen),
            "confirmed_tracks": len(self.host.confirmed_ids_seen),
            "gospa_mean_m": self.scorer.gospa_mean_m(),
            "gospa": {"c_m": GOSPA_C_M, "p": GOSPA_P, "alpha": GOSPA_ALPHA},
            "decisions": self.host.decisions,
            "decisions_deferred": self.host.counts["decisions_deferred"],
            "launches": self.counts["launches"],
            "board_launches": self.plant.board_launches,
            "fires_unconfirmed": self.host.counts["fires_unconfirmed"],
            "fires_reconciled": {"launched": self.host.counts["fires_reconciled_launched"],
                                 "not_launched": self.host.counts["fires_reconciled_not_launched"]},
            "rounds_at_no_object": plant["nothing_acquired"],
            "plant": plant_block,
            "scored": "here" if self.local_plant else "by the plant (hil plant): its summary has the outcomes",
            "system_tracks": None if self.system_tracks is None else dict(self.system_tracks.stats),
            "engagements": engagements,
            "refusals": refusals if refusals is not None else self._refusals(),
            "friendly_engagements": friendly_engagements,
            "links": self._link_counters(),
            "realtime": self.realtime_applied,
            "floor_us": histogram_summary(self.floor) if self.floor is not None else None,
            "floor_note": self.floor_note,
            "faults": [f.as_dict() for f in self.link_faults],
            "faults_injected": self.boards.fault_counts() if hasattr(self, "boards") else {},
            "launchers": self.setup_report,
            "launcher_health": self.launchers.health(),
            "machine": {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
        }
        return summary

    def _link_counters(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        links = [*self.boards.radars, *self.boards.launchers]
        names = [s.name for s in self.scenario.radars] + [s.name for s in self.scenario.launchers]
        for name, link in zip(names, links, strict=True):
            counters = link.counters
            out[name] = counters.summary() if hasattr(counters, "summary") else dict(vars(counters))
        return out


def run_chain(options: RunOptions, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run a scenario through the chain and return summary.json's content (events, when given, gets every event)."""
    chain = Chain(options)
    if events is not None:
        chain.events = events
    return asyncio.run(chain.run())


__all__ = ["Chain", "RunOptions", "run_chain"]
