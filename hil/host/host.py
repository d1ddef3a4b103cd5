"""The host: the system under test. Plots in, tracks, a fire-control decision, fire orders out.

One object, driven alike by the runtime in either time mode (hil.runtime), by replay (hil.records.replay), by
offline tracking (`hil track`) and by the host-path benchmark (tests/bench/bench_host_path.py). It never sees
truth: what it knows is what came over the wire (plots, sector sweeps, each launcher's status and its answers to
fire commands) and its own account of the rounds it commanded.

The model, per loop iteration of the runtime:
1. take_plots(): every radar's plots of this poll, merged in one time order, with the sector sweeps in between
   (hil.host.plots.feed_tracker), into the tracker. The t0 (detection time on the radar board, in host ns) of
   each plot is kept by plot time, so the t0 of a fire is the detection behind its track's newest plot.
2. decide(): fire control on every confirmed track and every friendly or neutral track (tentative too: they are
   protected), with the host's round account and the launchers' last status. Returns the fire orders; the
   bookkeeping of the decision (events, refusals, decision records) waits for bookkeeping(), off the command's
   critical path.
3. The runtime sends each order over the launcher link and tells the host how it went: fire_answered() (accepted,
   refused, or unconfirmed: the answer was lost, so the round may be in flight) and settled() once a launcher's
   read-back settles an unconfirmed fire.
4. assess(): kill assessment of rounds whose look (look_scans after the planned intercept) has ended.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import math
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from hil.ext.firecontrol_types import HOST_INTERLOCKS, FireControlConfig, RefusalReason, protect_radius
from hil.ext.tracker_types import TrackSnapshot
from hil.host.fire_control import ProtectionInputs, friendly_code_array, protection_inputs
from hil.host.plots import feed_tracker, merge_in_time_order
from hil.host.seams import (
    CONFIRMED,
    Decision,
    EngagementInputs,
    FireControl,
    FireControlInputs,
    LauncherInputs,
    Tracker,
)
from hil.scenario import Scenario

REASON_NAMES = {int(r): r.name for r in RefusalReason}
PLOT_T0_KEPT = 4096  # plot times whose t0 the host remembers (a track's newest plot is always among them)
NO_T0 = 2**62  # a plot's clock uncertainty before its radar's first time-sync answer: it carries no t0
REFUSAL_KEY_TRACKS = 1 << 39  # track ids a refusal key holds; a refusal of another is counted plainly
NO_PROTECTED = np.iinfo(np.int64).min  # a refusal entry's row named no protected track since the last fold
SORT_REFUSAL_KEYS = 64  # pairs first refused since the sorted index of refusal keys was last brought up to date
NO_PLOTS = np.empty(0)  # fresh_plot_times of an iteration without plots (never written to)
NO_PLOTS.flags.writeable = False
NO_TRACKS = np.empty(0, np.int64)  # no order pending (never written to)
NO_TRACKS.flags.writeable = False
RoundColumns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
ROUND_STATE_CODES = {"flying": 0, "unconfirmed": 1, "not_launched": 2}  # HostRound.state as hil.ext.track_view's
PROTECT_HOLD_SCANS = 3  # a dropped friendly or neutral track stays protected this many scans of the slowest radar


class EventSink(Protocol):
    def __call__(self, t_s: float, event: str, *, track: int = -1, launcher: int = -1, detail: str = "") -> None: ...


class RecordSink(Protocol):
    """Where the host's records go (hil.records.runfolder.RunWriter in a run)."""

    def plots(self, t_s: Any, sensor: Any, range_m: Any, azimuth_rad: Any, elevation_rad: Any,
              range_rate_mps: Any) -> None: ...

    def decision(self, record: dict[str, Any]) -> None: ...


@dataclass
class RadarPoll:
    """What one poll of one radar link gave: its plots (a PlotBatch or None), CAT034 sweeps (board time s,
    sector azimuth rad) and its clock's uncertainty (ns) at the time."""

    radar: int
    batch: Any
    sweeps: list[Any]
    uncertainty_ns: float


@dataclass
class FireOrder:
    """A fire the host decided: what goes on the wire, and what latency is measured against."""

    track_id: int
    launcher: int
    aim: tuple[float, float, float]  # intercept point, ENU m
    tgo_s: float  # decision to intercept, as fire control planned it
    t1_ns: int  # the newest radar frame the decision reacted to (host ns)
    t0_host_ns: int  # detection behind the track's newest plot (host ns; 0: unknown)
    t0_uncertainty_ns: int


@dataclass
class HostRound:
    """The host's own account of one round it commanded (never the plant's): what fire control may know."""

    track_id: int
    launcher: int
    seq: int
    fired_s: float  # run time the fire command went out
    intercept_s: float  # when fire control expects the intercept
    look_end_s: float  # end of the kill-assessment look after it
    aim: tuple[float, float, float]  # the intercept point commanded (ENU m)
    state: str = "flying"  # unconfirmed (reply lost: possibly in flight) | flying | not_launched
    assessed: str = ""  # "", killed (its track vanished or went unseen) or survived (seen after the intercept)


@dataclass
class Evaluation:
    """One fire-control decision, kept for its bookkeeping after the orders went out."""

    inputs: FireControlInputs
    decision: Decision
    orders: list[tuple[int, int, int]]  # (assignment row, track row, launcher) of each order sent
    poll: int  # the radar links' poll count when it was made

    @functools.cached_property
    def call(self) -> dict[str, Any]:
        """What fire control was told about launchers and engagements (decisions.jsonl), built after the fact."""
        lau, eng, tracks = self.inputs.launchers, self.inputs.engagements, self.inputs.tracks
        return {"armed": lau.armed.tolist(), "ready": lau.ready.tolist(), "rounds": lau.rounds.tolist(),
                "reload_left_s": lau.reload_left_s.tolist(), "channels_in_use": lau.channels_in_use.tolist(),
                "poll": self.poll, "t_s": self.inputs.t_s,
                "assessing_tracks": tracks.track_id[eng.assessing].tolist(),
                "engaged": {str(tid): [int(f), int(s)] for tid, f, s in
                            zip(tracks.track_id.tolist(), eng.in_flight.tolist(), eng.shots_fired.tolist(),
                                strict=True) if f or s}}


@dataclass
class Host:
    scenario: Scenario
    tracker: Tracker
    fire_control: FireControl
    start_ns: int = 0  # host ns of run time 0
    on_event: EventSink | None = None
    records: RecordSink | None = None
    counts: Counter[str] = field(default_factory=Counter)
    # how near an unidentified track holds a confirmed one (None: the scenario's protect_radius_m, or else each
    # launcher's seeker basket plus lethal radius, as fire control's protection takes it; the widest)
    protect_radius_m: float | None = None
    # the track-view kernels pick fire control's rows and count its rounds (hil.ext.track_view), the decode kernel
    # times the plots (hil.ext.decode.run_times), the fire-command kernel checks each assignment and gives its
    # order's fields (hil.ext.fire_command.fire_orders); False: their plain twins (hil.ext.reference), the reference
    compiled: bool = True

    def __post_init__(self) -> None:
        sc = self.scenario
        if self.compiled:
            from hil.ext.decode import run_times
            from hil.ext.fire_command import fire_orders
            from hil.ext.track_view import confirmed_news, confirmed_refusals, engagement_counts, fire_control_rows
        else:
            from hil.ext.reference.decode import run_times
            from hil.ext.reference.fire_command import fire_orders
            from hil.ext.reference.track_view import (
                confirmed_news,
                confirmed_refusals,
                engagement_counts,
                fire_control_rows,
            )
        self._pick_rows, self._news, self._engagement_counts = fire_control_rows, confirmed_news, engagement_counts
        self._run_times, self._fire_orders, self._confirmed_refusals = run_times, fire_orders, confirmed_refusals
        # each launcher as time to go reckons its slew and delay (fire_orders): east, north, sector centre, slew rate,
        # launch delay
        self._sites = np.array([[s.position[0], s.position[1], s.sector_centre_deg, s.slew_rate_dps,
                                 s.launch_delay_s] for s in sc.launchers], np.float64).reshape(-1, 5)
        # the rounds as the engagement-count kernel reads them, and what they were built from (count, settles)
        # grown as rounds are added (a long run commands thousands), rebuilt only after a settle
        self._round_store: RoundColumns = _round_store(64)
        self._round_columns: RoundColumns = _rows_of(self._round_store, 0)
        self._round_columns_of = (0, 0)
        self._settles = 0
        # kill assessment: the rounds whose look has not ended by look end (look_end_s, row in rounds), those
        # whose look ended while they were unconfirmed (assessed once settled as launched), and the rounds seen
        self._looks: list[tuple[float, int]] = []
        self._looks_unsettled: list[int] = []
        self._looks_of = 0
        self.friendly_codes = friendly_code_array(sc.friendly_codes)
        self.neutral_codes = friendly_code_array(sc.neutral_codes)
        # kill assessment looks this long after a round's expected intercept: the scenario's scans, slowest radar
        self.look_s = sc.look_scans * max((r.scan_period_s for r in sc.radars), default=1.0)
        self.protect_hold_s = PROTECT_HOLD_SCANS * max((r.scan_period_s for r in sc.radars), default=1.0)
        # an unidentified track this close to a confirmed one holds it (fire_control_view)
        doctrine = FireControlConfig(protect_radius_m=sc.protect_radius_m if self.protect_radius_m is None
                                     else self.protect_radius_m)
        self.unidentified_near_m = max((protect_radius(doctrine, site) for site in sc.launchers), default=0.0)
        # friendly and neutral tracks as last seen: track id -> (run time, the snapshot, its row there)
        self._protected_seen: dict[int, tuple[float, TrackSnapshot, int]] = {}
        self.sector_az = [math.nan] * len(sc.radars)
        self.plot_t0: OrderedDict[float, tuple[int, int]] = OrderedDict()  # plot run time -> (t0 host ns, unc)
        # this loop iteration's plot times (run s, in time order), and their t0s (host ns) and clock uncertainties
        # (ns; one for all when one radar sent them) until _remember_t0 keeps them in plot_t0
        self.fresh_plot_times: np.ndarray = NO_PLOTS
        self._fresh_t0: tuple[np.ndarray, float | np.ndarray] | None = None
        # the runtime writes the plot records (bookkeeping) before it polls the links again: take_plots may read the
        # batches in place; any other driver with records gets copies
        self.records_before_next_poll = False
        self.iteration_t1_ns = 0  # receive time of the newest frame this iteration (0: none)
        self.pending: list[FireOrder] = []  # decided, on their way to the launcher
        self.rounds: list[HostRound] = []
        self._refusals: dict[tuple[int, int, str], dict[str, Any]] = {}  # read through refusals
        # fire control's refusals of a pair refused before: a row each (by refusal key: hil.ext.track_view.
        # confirmed_refusals), the entry it stands for, the refusals counted there since the last fold and the latest
        # protected track they named, folded into the entries when refusals is read (_fold_refusals)
        self._refusal_entry: list[tuple[int, int, str]] = []
        # the keys with a row, sorted, and their rows (a decision's hundreds of keys found in one compiled search);
        # the few keys given a row since (the first _recent_n of these), until SORT_REFUSAL_KEYS of them are merged in
        self._refusal_sorted = (np.empty(0, np.int64), np.empty(0, np.int64))
        self._recent_keys = np.empty(SORT_REFUSAL_KEYS, np.int64)
        self._recent_rows = np.empty(SORT_REFUSAL_KEYS, np.int64)
        self._recent_n = 0
        self._refusal_counted = np.zeros(64, np.int64)
        self._refusal_protecting = np.full(64, NO_PROTECTED, np.int64)
        self.track_ids_seen: set[int] = set()
        self.confirmed_ids_seen: set[int] = set()
        self.decisions = 0
        self.last_poll = 0  # the radar links' poll count at the last decision (recorded for replay)
        self._evaluation: Evaluation | None = None
        self._tracked: TrackSnapshot | None = None  # the tracker's snapshot the last decision started from
        self._snapshot_of: tuple[float, TrackSnapshot] | None = None  # this iteration's, and its time
        self._confirmed_signature = (0, 0)  # (count, sum of ids) of the confirmed tracks at the last has_news()
        # what the algorithms behind the seams took on their last call (ns): the tracker fed this iteration's
        # plots, fire control deciding (the host's own work around them is the rest of host_total)
        self.track_ns = 0
        self.fire_control_ns = 0
        self._plot_records: list[dict[str, np.ndarray]] = []
        self._evaluated_t = math.nan

    def _event(self, t_s: float, event: str, track: int = -1, launcher: int = -1, detail: str = "") -> None:
        if self.on_event is not None:
            self.on_event(t_s, event, track=track, launcher=launcher, detail=detail)

    # --- plots in --------------------------------------------------------------------------------------

    def take_plots(self, polled: list[RadarPoll]) -> bool:
        """One loop iteration's polls into the tracker; True when any plot came (fire control should look).

        On the fire command's critical path: the batches' rows are read in place (the records of them are written by
        bookkeeping(), before the links are polled again), and each plot's t0 is kept as this iteration's arrays,
        looked up there by a decision and remembered by plot time only at the next bookkeeping() or take_plots()."""
        self._snapshot_of = None  # the tracker moves on
        self.iteration_t1_ns = 0
        self._remember_t0()
        self.fresh_plot_times = NO_PLOTS
        batches = [p for p in polled if p.batch is not None and p.batch.n]
        start_s = self.start_ns / 1e9
        sweeps = [(float(s[0]) - start_s, p.radar, float(s[1])) for p in polled for s in p.sweeps]
        if not batches:
            if sweeps:
                feed_tracker(self.tracker, None, sweeps, self.sector_az)
            return False
        in_place = self.records is None or self.records_before_next_poll
        if len(batches) == 1:  # one radar's dwell, nearly always: run times, t1 and order in one compiled pass
            run_t, t1, in_order = self._run_times(batches[0].batch, start_s)
            cols, order = merge_in_time_order([batches[0].batch], in_place=in_place, in_order=in_order)
            t_abs = cols["t_s"]
            cols["t_s"] = t_s = run_t if in_order else t_abs - start_s
        else:
            cols, order = merge_in_time_order([p.batch for p in batches], in_place=in_place)
            t_abs = cols["t_s"]
            cols["t_s"] = t_s = t_abs - start_s
            t1 = int(cols["host_rx_ns"].max())
        t_begin = time.perf_counter_ns()
        feed_tracker(self.tracker, cols, sweeps, self.sector_az)
        self.track_ns = time.perf_counter_ns() - t_begin
        # t0 per plot (the tracker reports a track's newest plot by its run time): this iteration's, in time order
        if len(batches) == 1:
            unc: float | np.ndarray = min(batches[0].uncertainty_ns, float(NO_T0))
        else:
            unc = np.concatenate([np.full(p.batch.n, min(p.uncertainty_ns, float(NO_T0))) for p in batches])[order]
        self.fresh_plot_times = t_s
        self._fresh_t0 = (t_abs, unc)  # host s: in ns when looked up (_t0_ns), off the fire path
        self.counts["plots"] += len(t_s)
        self.iteration_t1_ns = t1
        if self.records is not None:
            self._plot_records.append(cols)  # written by bookkeeping(), after the fire orders went out
        return True

    def _t0_of(self, plot_t: float, row: int | None = None) -> tuple[int, int]:
        """(t0 host ns, its uncertainty ns) of the plot taken at run time plot_t: this iteration's, or one remembered
        ((0, NO_T0): unknown). Of several plots at one time, the last in time order, as the memory keeps it."""
        k = self._fresh_row(plot_t) if row is None else row
        if k >= 0 and self._fresh_t0 is not None:
            t_abs, unc = self._fresh_t0
            u = unc if isinstance(unc, float) else float(unc[k])
            return int(float(t_abs[k]) * 1e9), int(u)  # _t0_ns' conversion: the same double product, truncated
        return self.plot_t0.get(plot_t, (0, NO_T0))

    def _fresh_row(self, plot_t: float) -> int:
        """The row of this iteration's plots taken at run time plot_t (the last of several at that time); -1: none.
        (On the fire path the fire orders' kernel finds it, hil.ext.fire_command.fire_orders; tests/host/
        test_host_t0.py holds the kernel to this lookup.)"""
        times = self.fresh_plot_times.tolist()
        k = bisect.bisect_right(times, plot_t) - 1
        return k if k >= 0 and times[k] == plot_t else -1

    def _remember_t0(self) -> None:
        """This iteration's plot t0s into the memory by plot time (off the fire path), the oldest forgotten."""
        if self._fresh_t0 is None:
            return
        t_abs, unc = self._fresh_t0
        self._fresh_t0 = None
        times = self.fresh_plot_times.tolist()
        uncs = [int(unc)] * len(times) if isinstance(unc, float) else [int(u) for u in unc.tolist()]
        memory = self.plot_t0
        for t, t0_ns, u in zip(times, _t0_ns(t_abs).tolist(), uncs, strict=True):
            memory[t] = (t0_ns, u)
        while len(memory) > PLOT_T0_KEPT:
            memory.popitem(last=False)

    # --- deciding --------------------------------------------------------------------------------------

    def has_news(self, t_s: float | None = None) -> bool:
        """Whether this iteration's plots changed what fire control would engage: a confirmed track took one of
        them, or the confirmed set changed (a track confirmed or dropped). Plots that fed only tentative tracks,
        mostly clutter, are no news: fire control then runs on its own period (deciding less never fires more).
        t_s: the time of the decision that follows, which then reuses the tracker's snapshot taken here."""
        if not len(self.fresh_plot_times):
            return False
        count, id_sum, updated = self._news(self._snapshot(t_s), float(self.fresh_plot_times[0]))
        changed, self._confirmed_signature = (count, id_sum) != self._confirmed_signature, (count, id_sum)
        return changed or updated

    def fire_control_view(self, t_s: float) -> tuple[TrackSnapshot, Any] | None:
        """The tracks fire control sees at t_s (None when there is none): every confirmed one, and every friendly or
        neutral one, tentative too (protected: never engaged, never fired near). Beyond the codes of the moment:
        - a confirmed track with an unidentified one (tentative, no Mode 3/A code established yet) within
          unidentified_near_m of it goes to fire control as not yet confirmed, so no launcher is given to it: the
          other may be a friendly flying with it whose replies have not been counted yet, inside the basket of a
          round sent at it. It is held (a HOST_UNIDENTIFIED_NEAR refusal) until the other is confirmed (then its
          code decides) or dropped; a clutter track beside a target holds it a scan or two;
        - a lost one: a friendly or neutral track the tracker dropped within protect_hold_s, coasted on from where
          it was last seen, its uncertainty grown (a protected track that flickers out is still flying there); and
          one whose code the tracker no longer establishes keeps it for protect_hold_s.
        The rest, mostly clutter, is not worth fire control's time. The rows are picked by the track-view kernel
        (hil.ext.track_view; its numpy twin with compiled=False)."""
        tracked = self._tracked = self._snapshot(t_s)
        # a code the tracker establishes itself is remembered; a code only held for a while is not
        every = self._sticky_codes(t_s, tracked)
        tracks, pos_var, friendly, neutral, vel_var, held, protected_rows = self._pick_rows(
            every, self.friendly_codes, self.neutral_codes, self.unidentified_near_m)
        own = protected_rows if every is tracked else self._pick_rows(
            tracked, self.friendly_codes, self.neutral_codes, 0.0)[6]
        lost = self._lost_protected(t_s, every, own)
        if not len(tracks.track_id) and lost is None:
            return None
        if len(held):  # (none, nearly always)
            pairs = held.tolist()
            self._unidentified_near(t_s, [int(tracks.track_id[k]) for k, _ in pairs],
                                    [int(every.track_id[j]) for _, j in pairs])
        ident = ProtectionInputs(pos_var, friendly, neutral, vel_var)
        if lost is not None:
            tracks = _stack([tracks, lost])
            ident = protection_inputs(tracks, self.friendly_codes, self.neutral_codes)
        return tracks, ident

    def _snapshot(self, t_s: float | None) -> TrackSnapshot:
        """The tracker's snapshot at t_s, taken once per loop iteration (has_news and the decision share it: take_plots
        forgets it); None: the tracker's tracks as they are, not kept."""
        if t_s is None:
            return self.tracker.tracks()
        if self._snapshot_of is not None and self._snapshot_of[0] == t_s:
            return self._snapshot_of[1]
        snapshot = self.tracker.tracks(t_s)
        self._snapshot_of = (t_s, snapshot)
        return snapshot

    def _unidentified_near(self, t_s: float, held: list[int], holding: list[int]) -> None:
        """Refusals of the confirmed tracks held for an unidentified track near them (held[k] by holding[k])."""
        near_m = self.unidentified_near_m
        for tid, other in zip(held, holding, strict=True):
            self._host_refusal(t_s, tid, -1, "HOST_UNIDENTIFIED_NEAR", other,
                               f"track {other}, not yet identified, within {near_m:.0f} m")
        self.counts["unidentified_holds"] += 1

    def _sticky_codes(self, t_s: float, every: TrackSnapshot) -> TrackSnapshot:
        """every, with the friendly or neutral code a track had within protect_hold_s where it no longer has one."""
        memory = self._protected_seen
        if not memory:
            return every
        changed = None
        ids = every.track_id.tolist()
        row_of = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1), strict=True))  # an id on several rows: the first
        for tid, (seen_s, snapshot, j) in memory.items():  # a few: one a friendly or neutral track
            k = row_of.get(tid)
            if k is None:
                continue
            code = snapshot.mode3a[j]
            if t_s - seen_s <= self.protect_hold_s and every.mode3a[k] != code:
                changed = every.mode3a.copy() if changed is None else changed
                changed[k] = code
        if changed is None:
            return every
        self.counts["protected_code_held"] += 1
        return every._replace(mode3a=changed)

    def _lost_protected(self, t_s: float, every: TrackSnapshot, protected_rows: np.ndarray) -> TrackSnapshot | None:
        """Remember every track the tracker gives a friendly or neutral code (protected_rows of every) as last seen;
        the ones the tracker dropped within protect_hold_s, coasted to t_s at constant velocity with the covariance
        grown to match (None: none)."""
        memory = self._protected_seen
        if not memory and not len(protected_rows):
            return None
        ids = every.track_id.tolist()
        for k in protected_rows.tolist():
            memory[ids[k]] = (t_s, every, k)  # the row is read only if the track is lost
        live = set(ids)
        rows = []
        for tid, (seen_s, snapshot, k) in list(memory.items()):
            if tid in live:
                continue
            dt = t_s - seen_s
            if dt > self.protect_hold_s:
                del memory[tid]
                continue
            row = _rows(snapshot, slice(k, k + 1))
            f = np.eye(6)
            f[:3, 3:] = dt * np.eye(3)
            rows.append(row._replace(state=row.state @ f.T, cov=(f @ row.cov[0] @ f.T)[None]))
        if not rows:
            return None
        self.counts["lost_protected_held"] += len(rows)
        return _stack(rows)

    def decide(self, t_s: float, launchers: LauncherInputs) -> list[FireOrder]:
        """Fire control now; the orders to send (the launchers they name are then busy until fire_answered)."""
        self._evaluation = None
        self._evaluated_t = t_s
        view = self.fire_control_view(t_s)
        if view is None:
            return []
        tracks, ident = view
        engagements, channels = self.engagement_inputs(t_s, tracks)
        launchers = LauncherInputs(launchers.armed, launchers.ready, launchers.rounds, launchers.reload_left_s,
                                   channels)
        inputs = FireControlInputs(t_s, tracks, ident, engagements, launchers)
        t_begin = time.perf_counter_ns()
        decision = self.fire_control.decide(inputs)
        self.fire_control_ns = time.perf_counter_ns() - t_begin
        a = decision.assignments
        orders: list[FireOrder] = []
        sent: list[tuple[int, int, int]] = []
        if not len(a.track_index):
            self._evaluation = Evaluation(inputs, decision, sent, self.last_poll)
            return orders
        # the host's interlock on each assignment, and the fire order's fields (hil.ext.fire_command.fire_orders)
        # this iteration's plots (none once bookkeeping() remembered them: then every t0 comes from the memory)
        times, t_abs, unc = ((self.fresh_plot_times, *self._fresh_t0) if self._fresh_t0 is not None else
                             (NO_PLOTS, NO_PLOTS, float(NO_T0)))
        one_unc, each_unc = (unc, None) if isinstance(unc, float) else (0.0, unc)
        for k, ti, li, tid, why, plot_t, row, t0_host_ns, unc_ns, aim, tgo_s in self._fire_orders(
                a.track_index, a.launcher_index, a.intercept_enu, a.time_of_flight_s, tracks.track_id, tracks.status,
                ident.friendly, ident.neutral, tracks.last_update_s, times, t_abs, one_unc, each_unc, self._sites):
            if why:  # never at a track that is not confirmed, or friendly, or neutral; only rows that exist
                self._host_refusal(t_s, tid, li, HOST_INTERLOCKS[why], None,
                                   "fire control assigned it; the host does not fire")
                continue
            if row < 0:  # t0: the detection behind the track's newest plot, remembered from an iteration before
                t0_host_ns, unc_ns = self._t0_of(plot_t, row)
                self.counts["decisions_deferred"] += 1
            order = FireOrder(tid, li, aim, tgo_s, self.iteration_t1_ns,
                              0 if unc_ns >= NO_T0 else t0_host_ns, unc_ns)
            self.pending.append(order)
            self.decisions += 1
            orders.append(order)
            sent.append((k, ti, li))
        self._evaluation = Evaluation(inputs, decision, sent, self.last_poll)
        return orders

    def _host_refusal(self, t_s: float, tid: int, li: int, why: str, protected: int | None, detail: str) -> None:
        """A refusal of the host's own, counted by (track, launcher, reason) as fire control's are; the first of
        each is an event."""
        key = (tid, li, why)
        entry = self._refusals.get(key)
        if entry is None:
            self._refusals[key] = {"time_s": round(t_s, 3), "track": tid,
                                  "launcher": self.scenario.launchers[li].name if li >= 0 else None,
                                  "reason": why, "count": 1, "protected_track": protected}
            self._event(t_s, "refusal", track=tid, launcher=li, detail=f"{why}: {detail}")
        else:
            entry["count"] += 1

    def engagement_inputs(self, t_s: float, tracks: TrackSnapshot) -> tuple[EngagementInputs, np.ndarray]:
        """Rounds in flight, shots and kill assessment per track, and guidance channels in use per launcher,
        from the host's own account of its rounds (the plant's interceptors are truth: the host never sees them).

        A round is in flight until its expected intercept; then its track is looked at for look_scans scans;
        a track seen after the intercept is re-engageable, one unseen since (vanished or coasting) is held as
        assessed killed unless it is seen again. A fire whose reply was lost counts as in flight until the
        launcher's read-back settles it.
        """
        pending = [p.track_id for p in self.pending]
        in_flight, shots, assessing, channels = self._engagement_counts(
            tracks.track_id, tracks.last_update_s, t_s, np.array(pending, np.int64) if pending else NO_TRACKS,
            *self._rounds_as_columns(), len(self.scenario.launchers))
        return EngagementInputs(in_flight, shots, assessing), channels

    def _rounds_as_columns(self) -> RoundColumns:
        """The host's rounds as the engagement-count kernel reads them (track, launcher, state code, planned
        intercept, end of the look): the rounds added since the last call appended, all of them again only after a
        settle (rare: an unconfirmed fire). Rebuilding every round after each fire cost the decision after it
        O(rounds): about a millisecond a thousand rounds into a long run."""
        rounds, (built, settles) = self.rounds, self._round_columns_of
        if len(rounds) == built and self._settles == settles:
            return self._round_columns
        if self._settles != settles or len(rounds) < built:
            built = 0
        store = self._round_store
        if len(rounds) > len(store[0]):
            grown = _round_store(2 * len(rounds))
            for old, new in zip(store, grown, strict=True):
                new[:built] = old[:built]
            store = self._round_store = grown
        track, launcher, state, intercept, look_end = store
        for k in range(built, len(rounds)):
            r = rounds[k]
            track[k], launcher[k], state[k] = r.track_id, r.launcher, ROUND_STATE_CODES[r.state]
            intercept[k], look_end[k] = r.intercept_s, r.look_end_s
        self._round_columns = _rows_of(store, len(rounds))
        self._round_columns_of = (len(rounds), self._settles)
        return self._round_columns

    # --- answers from the launchers ----------------------------------------------------------------------

    def fire_answered(self, order: FireOrder, fired_s: float, seq: int | None, outcome: str, reason: str = "") -> None:
        """How a fire order went: "accepted" (the board launched it), "unconfirmed" (sent, its answer lost: held
        as in flight until settled), or "refused" (the launcher or its link refused it; reason says why)."""
        if order in self.pending:
            self.pending.remove(order)
        li = order.launcher
        if outcome == "refused":
            key = (order.track_id, li, f"LAUNCHER_{reason}")
            self._refusals.setdefault(key, {"time_s": round(fired_s, 3), "track": order.track_id,
                                           "launcher": self.scenario.launchers[li].name,
                                           "reason": f"LAUNCHER_{reason}", "count": 0})["count"] += 1
            return
        assert seq is not None
        state = "unconfirmed" if outcome == "unconfirmed" else "flying"
        self.rounds.append(HostRound(order.track_id, li, seq, fired_s, fired_s + order.tgo_s,
                                     fired_s + order.tgo_s + self.look_s, order.aim, state=state))
        if state == "unconfirmed":
            self.counts["fires_unconfirmed"] += 1
            self._event(fired_s, "fire_unconfirmed", track=order.track_id, launcher=li,
                        detail=f"seq {seq}: no answer; held as in flight until the launcher is read back")

    def settled(self, li: int, seq: int, launched: bool, t_s: float) -> HostRound | None:
        """A launcher's read-back settled its unconfirmed fire seq; the round, or None if the host had none."""
        for r in self.rounds:
            if r.launcher != li or r.seq != seq or r.state != "unconfirmed":
                continue
            r.state = "flying" if launched else "not_launched"
            self._settles += 1
            self.counts["fires_reconciled_launched" if launched else "fires_reconciled_not_launched"] += 1
            self._event(t_s, "reconciled", track=r.track_id, launcher=li,
                        detail=f"seq {seq} {'did' if launched else 'did not'} launch")
            return r
        return None

    # --- after the orders went out ---------------------------------------------------------------------

    def flush_records(self) -> None:
        """The plots taken in since the last call, to the records (plots.csv)."""
        if self.records is not None:
            for cols in self._plot_records:
                self.records.plots(cols["t_s"], cols["sensor"], cols["range_m"], cols["azimuth_rad"],
                                   cols["elevation_rad"], cols["range_rate_mps"])
        self._plot_records.clear()

    def bookkeeping(self) -> None:
        """Plot records and t0s, confirmation events, refusals and decision records of the last decision, off the
        critical path."""
        self.flush_records()
        self._remember_t0()
        t = self._evaluated_t
        if t != t:  # NaN: nothing decided since the last bookkeeping
            return
        self._evaluated_t = math.nan
        # every track number opened counts, tentative ones too: the decision's own snapshot has them all
        every = self._tracked if self._tracked is not None else self.tracker.tracks()
        self._tracked = None
        self.track_ids_seen.update(every.track_id.tolist())
        confirmed = every.track_id[every.status == CONFIRMED].tolist()
        if not self.confirmed_ids_seen.issuperset(confirmed):  # (a set's test: at 300 targets one by one took 150 µs)
            for tid in confirmed:  # in track order, as before
                if tid not in self.confirmed_ids_seen:
                    self.confirmed_ids_seen.add(tid)
                    self._event(t, "confirmation", track=tid)
        ev, self._evaluation = self._evaluation, None
        if ev is None:
            return
        self._note_refusals(t, ev)
        a = ev.decision.assignments
        ins = ev.inputs
        for k, ti, li in ev.orders:
            tid = int(ins.tracks.track_id[ti])
            self._event(t, "assignment", track=tid, launcher=li,
                        detail=f"tof {a.time_of_flight_s[k]:.1f} s pk {a.pk[k]:.2f}")
            if self.records is not None:
                record = ev.decision.explain(ti)
                # what fire control was told about the launchers and engagements, so replay can ask it again
                ident, eng = ins.identity, ins.engagements
                record["call"] = {**ev.call, "in_flight": int(eng.in_flight[ti]),
                                  "shots_fired": int(eng.shots_fired[ti]),
                                  "friendly": bool(ident.friendly[ti]), "neutral": bool(ident.neutral[ti]),
                                  "assessing": bool(eng.assessing[ti]), "pos_var_m2": float(ident.pos_var_m2[ti]),
                                  "vel_var_m2s2": float(ident.vel_var_m2s2[ti])}
                self.records.decision(record)

    def _note_refusals(self, t: float, ev: Evaluation) -> None:
        """Refusals of confirmed tracks, counted by (track, launcher, reason); the first of each is an event, and
        a protection or kill-assessment refusal also a record in decisions.jsonl naming what it protects.

        At 300 targets a decision refuses hundreds of pairs, nearly all refused before: those are only counted
        here, on their rows (found by the refusals' kernel, hil.ext.track_view.confirmed_refusals, then one compiled
        add), and folded into `refusals` when it is read (_fold_refusals). Nothing here costs more as the run goes on:
        a fold of all the counts, or the sorted union of every key seen, took milliseconds late in a 300-target run."""
        r = ev.decision.refusals
        if not len(r.track_index):
            return
        tracks = ev.inputs.tracks
        n = self._recent_n
        # only confirmed tracks: a tentative friendly or neutral one is there to be protected, not to be engaged
        rows, launcher, code, protected, keys, at, plain = self._confirmed_refusals(
            r.track_index, r.launcher_index, r.reason, r.protected_index, tracks.track_id, tracks.status,
            *self._refusal_sorted, self._recent_keys[:n], self._recent_rows[:n], REFUSAL_KEY_TRACKS)
        if not len(rows):
            return
        given: set[int] = set()  # keys given a row by this decision (a pair refused twice in it gets one)
        if plain:  # a track id a refusal key cannot hold (a plug-in tracker's): every refusal counted plainly
            self._fold_refusals()  # what was only counted goes first: a plain count updates the entries at once
        new = at < 0
        if new.any():
            names = [s.name for s in self.scenario.launchers]
            track_id = tracks.track_id.tolist()
            for k, ti, li, why, prot in zip(keys[new].tolist(), rows[new].tolist(), launcher[new].tolist(),
                                            code[new].tolist(), protected[new].tolist(), strict=True):
                tid, reason = track_id[ti], REASON_NAMES[why]
                protected_tid = track_id[prot] if prot >= 0 else None
                key = (tid, li, reason)
                entry = self._refusals.get(key)
                if not plain and k not in given:
                    given.add(k)
                    self._new_refusal_row(k, key)
                if entry is not None:  # twice in one decision, or the launcher link refused the same pair first
                    entry["count"] += 1
                    if protected_tid is not None:
                        entry["protected_track"] = protected_tid
                    continue
                self._refusals[key] = {"time_s": round(t, 3), "track": tid,
                                       "launcher": names[li] if li >= 0 else None, "reason": reason, "count": 1,
                                       "protected_track": protected_tid}
                detail = reason if protected_tid is None else f"{reason}: protects track {protected_tid}"
                self._event(t, "refusal", track=tid, launcher=li, detail=detail)
                if self.records is not None and reason in ("PROTECTED_NEAR_INTERCEPT", "KILL_ASSESSMENT"):
                    record = ev.decision.explain(ti)
                    record.update(kind="refusal", reason=reason, protected_track=protected_tid,
                                  launcher=names[li] if li >= 0 else None, call=ev.call)
                    self.records.decision(record)
            if plain:
                return
            old = ~new
            at, protected = at[old], protected[old]
        np.add.at(self._refusal_counted, at, 1)
        named = protected >= 0
        if named.any():  # (rare: protection refusals) in decision order, so the latest stays
            latest = self._refusal_protecting
            for k, tid in zip(at[named].tolist(), tracks.track_id[protected[named]].tolist(), strict=True):
                latest[k] = tid

    def _new_refusal_row(self, k: int, key: tuple[int, int, str]) -> None:
        """A row for refusal key k (entry key) in the counts, the arrays grown by doubling; every SORT_REFUSAL_KEYS
        new rows, their keys merged into the sorted index."""
        n = len(self._refusal_entry)
        if n == len(self._refusal_counted):
            self._refusal_counted = np.concatenate([self._refusal_counted, np.zeros(n, np.int64)])
            self._refusal_protecting = np.concatenate([self._refusal_protecting, np.full(n, NO_PROTECTED, np.int64)])
        self._refusal_entry.append(key)
        m = self._recent_n
        self._recent_keys[m], self._recent_rows[m] = k, n
        self._recent_n = m = m + 1
        if m == SORT_REFUSAL_KEYS:
            order = np.argsort(self._recent_keys)
            new_keys, new_rows = self._recent_keys[order], self._recent_rows[order]
            sorted_keys, sorted_rows = self._refusal_sorted
            at = np.searchsorted(sorted_keys, new_keys)
            self._refusal_sorted = (np.insert(sorted_keys, at, new_keys), np.insert(sorted_rows, at, new_rows))
            self._recent_n = 0

    @property
    def refusals(self) -> dict[tuple[int, int, str], dict[str, Any]]:
        """Every refusal so far, fire control's and the host's own, by (track, launcher or -1, reason): when first
        (time_s), how many times (count) and the protected track it names (the latest), with the launcher's name."""
        self._fold_refusals()
        return self._refusals

    def _fold_refusals(self) -> None:
        """The refusals only counted by _note_refusals into their entries: the counts, the latest protected track."""
        n = len(self._refusal_entry)
        counted, latest = self._refusal_counted[:n], self._refusal_protecting[:n]
        entry_of, entries = self._refusal_entry, self._refusals
        for k in np.flatnonzero(counted).tolist():
            entries[entry_of[k]]["count"] += int(counted[k])
        for k in np.flatnonzero(latest != NO_PROTECTED).tolist():
            entries[entry_of[k]]["protected_track"] = int(latest[k])
        counted[:] = 0
        latest[:] = NO_PROTECTED

    def assess(self, t_s: float) -> None:
        """Kill assessment of every round whose look has ended: an event, and a line in decisions.jsonl. The rounds
        wait by the end of their look: each call looks at the ones due, not at every round commanded (that cost a
        long run's loop more each minute)."""
        rounds, looks = self.rounds, self._looks
        for k in range(self._looks_of, len(rounds)):
            heapq.heappush(looks, (rounds[k].look_end_s, k))
        self._looks_of = len(rounds)
        if not (looks and looks[0][0] <= t_s) and not self._looks_unsettled:
            return
        ended = self._looks_unsettled
        while looks and looks[0][0] <= t_s:
            ended.append(heapq.heappop(looks)[1])
        ended.sort()  # in the order the rounds were commanded
        self._looks_unsettled = [k for k in ended if rounds[k].state == "unconfirmed" and not rounds[k].assessed]
        due = [rounds[k] for k in ended if rounds[k].state == "flying" and not rounds[k].assessed]
        if not due:
            return
        every = self.tracker.tracks(t_s)
        seen = dict(zip(every.track_id.tolist(), every.last_update_s.tolist(), strict=True))
        for r in due:
            last = seen.get(r.track_id)
            r.assessed = "survived" if last is not None and last > r.intercept_s else "killed"
            detail = ("track seen after the intercept: may be engaged again" if r.assessed == "survived" else
                      "track vanished" if last is None else "track not seen since the intercept")
            self._event(t_s, "assessment", track=r.track_id, launcher=r.launcher, detail=f"{r.assessed}: {detail}")
            if self.records is not None:
                self.records.decision({"kind": "assessment", "t_s": round(t_s, 4), "track_id": r.track_id,
                                       "launcher": self.scenario.launchers[r.launcher].name, "seq": r.seq,
                                       "intercept_s": round(r.intercept_s, 4), "look_end_s": round(r.look_end_s, 4),
                                       "result": r.assessed, "detail": detail})


def _round_store(capacity: int) -> RoundColumns:
    """Empty columns for `capacity` rounds, as the engagement-count kernel reads them."""
    return (np.empty(capacity, np.int64), np.empty(capacity, np.int32), np.empty(capacity, np.int8),
            np.empty(capacity), np.empty(capacity))


def _rows_of(store: RoundColumns, n: int) -> RoundColumns:
    """The first n rounds of the columns (views)."""
    track, launcher, state, intercept, look_end = store
    return track[:n], launcher[:n], state[:n], intercept[:n], look_end[:n]


def _t0_ns(t_abs: np.ndarray) -> np.ndarray:
    """Plot times in host s as t0s in host ns (int64: the same conversion for one plot and for a whole poll)."""
    return (t_abs * 1e9).astype(np.int64)


def _rows(snapshot: TrackSnapshot, which: Any) -> TrackSnapshot:
    """The rows `which` (a mask, indices or a slice) of every column."""
    columns: list[Any] = [column[which] for column in snapshot]
    return TrackSnapshot(*columns)


def _stack(snapshots: list[TrackSnapshot]) -> TrackSnapshot:
    """The snapshots' rows one after the other."""
    columns: list[Any] = [np.concatenate(parts) for parts in zip(*snapshots, strict=True)]
    return TrackSnapshot(*columns)


def build_host(scenario: Scenario, tracker: str | None = None, fire_control: str | None = None,
               fire_control_overrides: dict[str, Any] | None = None, **kwargs: Any) -> Host:
    """A Host with the chosen tracker and fire control (hil.host.plugins: None is the scenario's choice)."""
    from hil.host.plugins import make_fire_control, make_tracker

    overrides = fire_control_overrides or {}
    if "protect_radius_m" in overrides:
        kwargs.setdefault("protect_radius_m", overrides["protect_radius_m"])
    return Host(scenario, make_tracker(scenario, tracker), make_fire_control(scenario, fire_control, **overrides),
                **kwargs)


__all__ = ["Evaluation", "FireOrder", "Host", "HostRound", "RadarPoll", "build_host"]
