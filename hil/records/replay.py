"""`hil replay`: feed a run's recorded radar plots back through the tracker and fire control; report what differs.

What is reproduced, deterministically (same run folder, same kernels: same report):

1. The tracker's input, exactly. RadarLink records every ASTERIX payload it receives, and annotates the
   first payload of each poll with the poll count, the plot times it gave that poll's plots (runs of
   [t_s, count] in batch order: a frame's plots share its board time mapped through ClockSync) and its
   CAT034 crossing times (hil.records.recording keeps the annotation as the packet comment). Replay decodes the
   payloads with the host's own decoder (hil.ext.decode.LinkDecoder, so every value is the live one, bit
   for bit), puts the recorded times on them, and groups the payloads by poll count: the runtime polls
   every radar link once per loop iteration, so one count is one iteration (recorded explicitly rather
   than inferred from receive times, which differ between links in real time). Each iteration goes to
   the tracker as the run's Host.take_plots gave it: every radar's plots merged in time order (stable sort),
   minus summary.json's start_host_ns, in one tracker.update call, then the CAT034 sweeps in (time,
   radar) order through tracker.sector_swept from that radar's previous sector azimuth.
2. Fire control at every recorded decision. Each line of decisions.jsonl is one fire the run decided: the
   kernel's explain() fields and "call", the launcher inputs of that evaluation (armed, ready, rounds,
   reload_left_s, channels_in_use) and the decided track's (in_flight, shots_fired, friendly, neutral,
   assessing, pos_var_m2). Lines with the same t_s came from one evaluation. Replay evaluates
   the run's fire control (summary.json's "host", or --fire-control; hil's kernel by default) on the
   replayed confirmed tracks and every friendly or neutral track (tentative too: they are protected) at that
   time with those inputs (hil.host.fire_control.protection_inputs, through Host.fire_control_view as the run
   did), and reports
   each (track, launcher) the run fired at and replay does not, and each replay fires at and the run did not.
   Where a decided track's replayed inputs differ from the recorded ones (position variance, friendly,
   neutral), that is reported too: it is where a difference starts.
3. The fire commands on the wire: no FIRE_SEQ write on a launcher's Modbus link went out without a
   decision. A decision without its write is listed apart (uncommanded): the run decided it, and then the
   launcher link refused to send it (e.g. its last status said the launcher was reloading).

What is not checked, or not exactly:

- Evaluations that fired nothing. The live loop runs fire control on every iteration with new plots and
  every 100 ms, but only evaluations that fired are recorded, so a replay that would fire where the run
  held fire goes unnoticed unless it happens at the time of a recorded decision.
- The other tracks' engagement inputs. An evaluation also counts, for every confirmed track, the
  interceptors in flight at it and the shots fired at it; decisions.jsonl records them for the decided
  track only. Replay rebuilds the others from events.csv (launch, kill and miss rows) in the virtual-time
  loop's order: a launch counts from the evaluation after its decision's, an interceptor stops counting
  as in flight at the first evaluation more than one loop tick (5 ms) after its kill or miss time. The
  decided tracks use the recorded values; a "call": {"engaged": {track: [in_flight, shots_fired]}} of
  every engaged track, when a run records it, replaces the rebuilding. Likewise kill assessment: a track
  is under assessment when the call's "assessing_tracks" lists it (when the run records that list), else
  only the decided tracks' own "assessing" flags are known and the other tracks are taken as not assessed.
- Which polls precede an evaluation. Replay evaluates a decision after the polls received up to its t_s:
  exact in virtual time, where polls and evaluation share the loop's time (whole milliseconds, so t_s
  rounded to the µs is the loop's own value). In a real-time run t_s is the loop's wake-up, taken just
  before that iteration's polls, and rounded to the µs: a poll received within 2 ms after it is taken as
  the decision's own iteration unless the tracker already holds the decided tracks with the variance the
  run recorded, and variances are compared to 1e-5 of themselves (the rounding moves them ~1e-7). The
  report says so. A decision record carrying the loop's poll count and unrounded time ("call": {"poll",
  "t_s"}) is placed and compared exactly.
- A recording without plot-time annotations (made before RadarLink wrote them) is replayed with receive
  times as plot times and payloads grouped by equal receive time; the report says it is not exact.

A run that did not finish (killed: no summary.json, or its journal with "complete": false) replays too:
- the time origin is summary.json's start_host_ns, or else recovered exactly from plots.csv (whose times are
  written in full) and the recording's plot times; the time mode, when no summary says it, from the
  recording's timestamps (virtual time ticks in whole microseconds);
- its records (decisions.jsonl, events.csv) stop up to a second before the recording does: a fire command
  after the records' last time may have lost its decision with the kill, so it is counted, not reported;
- a recording whose last block is cut off ("recording ends mid-block at byte N") is replayed up to it, and
  decisions after its last frame are counted, not checked. Each of these is a note in the output.
An empty recording, one cut off inside its first block, or one that fails its own checks (a flipped bit
fails a packet's CRC-32 or a block's length) cannot be replayed: one line naming the file, exit status 2.

Records in decisions.jsonl with a "kind" other than "fire" (e.g. kill assessments) are not fire decisions
and are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import inspect
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hil.clock import LOOP_PERIOD_NS
from hil.drivers.asterix import Cat034Message, ServiceEvent
from hil.drivers.modbus_rtu import ModbusExceptionResponse, ModbusFrameError, decode_adu, parse_request
from hil.drivers.plot_batch import PlotBatch
from hil.drivers.radar_link import RadarLink
from hil.drivers.registers import FunctionCode, Holding
from hil.errors import HilError
from hil.ext.firecontrol_types import RefusalReason
from hil.host.fire_control import track_inputs
from hil.host.host import Host, RadarPoll, build_host
from hil.host.seams import EngagementInputs, FireControlInputs, LauncherInputs
from hil.records.recording import RecordedFrame, RecordingError, read_recording, recording_end

log = logging.getLogger("hil.records.replay")

MBAP_BYTES = 7
CONFIRMED = 2
BATCH_CAPACITY = inspect.signature(RadarLink).parameters["capacity"].default  # a fuller poll drops the rest
LOOP_TICK_S = LOOP_PERIOD_NS / 1e9  # the runtime's loop period
REAL_TIME_POLL_WINDOW_NS = 2_000_000  # a real-time iteration polls its radars well within this of waking
REAL_TIME_VAR_RTOL = 1e-5


class ReplayError(HilError):
    """A run folder or recording that cannot be replayed."""


# what hil run writes into every run folder, the recording aside (a killed run may lack summary.json)
RUN_FOLDER_FILES = ("summary.json", "decisions.jsonl", "events.csv")


@dataclass
class Poll:
    """The ASTERIX payloads the radar links received in one host loop iteration (one poll of each link)."""

    key: tuple[str, int]  # ("poll", count) when annotated, ("rx", host ns) otherwise
    host_ns: int  # the earliest receive time
    frames: list[tuple[int, RecordedFrame]] = field(default_factory=list)  # (radar index, frame), in order


@dataclass(frozen=True)
class FireCommand:
    """A write of FIRE_SEQ seen on a launcher link (the host commanding a launch)."""

    host_ns: int
    launcher: str
    track: int | None  # None when FIRE_TRACK was not written in the same request
    seq: int


@dataclass
class Finding:
    t_s: float
    track: int
    launcher: str
    problem: str


@dataclass
class ReplayResult:
    decisions: int = 0
    evaluations: int = 0  # fire-control calls re-run (decisions at one t_s are one call)
    refusals_checked: int = 0  # protection and kill-assessment refusals the run recorded, asked again
    fire_commands: int = 0
    polls: int = 0
    payloads: int = 0
    plots: int = 0
    rejected_blocks: int = 0
    rejected_modbus: int = 0
    unchecked_decisions: int = 0  # after the end of a cut-off recording or of an unfinished run's recording
    unchecked_commands: int = 0  # fire commands after an unfinished run's records end (their decision lost)
    exact: bool = True  # plot times and iterations from the recording's annotations, not inferred
    rebuilt_mismatches: int = 0  # decided tracks whose engagement inputs rebuilt from events.csv were wrong
    host: dict[str, str] = field(default_factory=dict)  # the tracker and fire control replayed
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # where replay and the run differ
    # decisions that never became a fire command: not a replay difference (the run decided them), but a
    # sign the run's fire control was told a launcher could fire when its link knew better
    uncommanded: list[Finding] = field(default_factory=list)


# ---- the recording --------------------------------------------------------------------------------------


def radar_polls(recording: Path, radar_names: list[str]) -> Iterator[Poll]:
    """The ASTERIX payloads the radar links received, grouped by host loop iteration, in recording order."""
    index = {name: i for i, name in enumerate(radar_names)}
    current: Poll | None = None
    for frame in read_recording(recording):
        if frame.kind != "asterix" or frame.direction != "rx" or frame.link_name not in index:
            continue
        poll = (frame.annotation or {}).get("poll")
        key = ("poll", poll) if isinstance(poll, int) else ("rx", frame.host_ns)
        if current is None or key != current.key:
            # one iteration's payloads are recorded together (the loop polls the links back to back)
            if current is not None:
                yield current
            current = Poll(key, frame.host_ns)
        current.frames.append((index[frame.link_name], frame))
    if current is not None:
        yield current


def fire_commands(recording: Path, result: ReplayResult | None = None) -> list[FireCommand]:
    """Every request that wrote FIRE_SEQ, on any launcher link (Modbus RTU or TCP), in recording order."""
    out = []
    for frame in read_recording(recording):
        if frame.direction != "tx" or frame.kind not in ("modbus_rtu", "modbus_tcp"):
            continue
        try:
            pdu = decode_adu(frame.payload)[1] if frame.kind == "modbus_rtu" else frame.payload[MBAP_BYTES:]
            req = parse_request(pdu)
        except (ModbusFrameError, ModbusExceptionResponse) as e:
            log.debug("replay: %s request unreadable: %s", frame.link_name, e)
            if result is not None:
                result.rejected_modbus += 1
            continue
        if req.function_code not in (FunctionCode.WRITE_SINGLE, FunctionCode.WRITE_MULTIPLE):
            continue
        regs = {req.address + k: v for k, v in enumerate(req.values)}
        if Holding.FIRE_SEQ in regs:
            track = regs.get(Holding.FIRE_TRACK)
            out.append(FireCommand(frame.host_ns, frame.link_name, track, regs[Holding.FIRE_SEQ]))
    return out


class PollDecoder:
    """Decodes one iteration's payloads as the radar links did, with the plot times they recorded."""

    def __init__(self, site_z_m: list[float], result: ReplayResult) -> None:
        from hil.ext.decode import LinkDecoder

        self.decoders = [LinkDecoder(i, float(z), False) for i, z in enumerate(site_z_m)]
        self.batches = [PlotBatch.empty(BATCH_CAPACITY) for _ in site_z_m]
        self.result = result

    def decode(self, poll: Poll) -> tuple[list[tuple[int, PlotBatch]], list[tuple[float, int, float]], list[str]]:
        """(radar index, plots) per radar that sent any, the sweeps (t_s, radar, sector azimuth) and problems."""
        problems: list[str] = []
        out = []
        sweeps = []
        for i in sorted({i for i, _ in poll.frames}):
            frames = [f for j, f in poll.frames if j == i]
            batch = self.batches[i]
            batch.clear()
            services: list[Cat034Message] = []
            decoder = self.decoders[i]
            for frame in frames:
                ok = decoder.counters["asterix_ok"]
                events = decoder.feed_datagram(frame.payload, frame.host_ns, batch)
                if decoder.counters["asterix_ok"] == ok:
                    self.result.rejected_blocks += 1  # the live decoder rejected it too: same outcome
                services += [ev.message for ev in events if isinstance(ev, ServiceEvent)]
            self.result.payloads += len(frames)
            plot_t, sector_t = self._times(frames, batch.n, len(services), problems, i)
            batch.t_s[: batch.n] = plot_t
            for t, m in zip(sector_t, services, strict=True):
                # as RadarLink reports a north marker without a sector azimuth
                az = 0.0 if math.isnan(m.sector_azimuth_rad) and m.is_north else m.sector_azimuth_rad
                sweeps.append((t, i, az))
            if batch.n:
                out.append((i, batch))
        return out, sweeps, problems

    def _times(self, frames: list[RecordedFrame], n_plots: int, n_sectors: int, problems: list[str],
               radar: int) -> tuple[np.ndarray, list[float]]:
        note = next((f.annotation for f in frames if f.annotation and "plots_t_s" in f.annotation), None)
        if note is None:
            self.result.exact = False
            return np.full(n_plots, frames[0].host_ns / 1e9), [frames[0].host_ns / 1e9] * n_sectors
        runs = note.get("plots_t_s") or []
        plot_t = np.repeat(np.array([float(t) for t, _ in runs], dtype=np.float64),
                           np.array([int(k) for _, k in runs], dtype=np.int64))
        sector_t = [float(t) for t in note.get("sectors_t_s") or []]
        if len(plot_t) != n_plots or len(sector_t) != n_sectors:
            problems.append(f"radar {radar}: the recording decodes to {n_plots} plots and {n_sectors} sector "
                            f"crossings where the link recorded times for {len(plot_t)} and {len(sector_t)}")
            self.result.exact = False
            fill = frames[0].host_ns / 1e9
            plot_t = np.resize(plot_t, n_plots) if len(plot_t) else np.full(n_plots, fill)
            sector_t = (sector_t + [fill] * n_sectors)[:n_sectors]
        return plot_t, sector_t


# ---- the run's decisions and engagements -----------------------------------------------------------------


def read_decisions(path: Path, kinds: tuple[str, ...] = ("fire",)) -> list[dict[str, Any]]:
    """decisions.jsonl: the run's decisions of these kinds ("fire"; "refusal": the protection and kill-assessment
    refusals), each with t_s, track and launchers (time order)."""
    out = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise ReplayError(f"{path}: no decisions.jsonl in the run folder") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except ValueError as e:
            if number == len(lines):
                log.info("%s: last line cut off (a run that was killed?)", path)
                break
            raise ReplayError(f"{path}:{number}: not JSON ({e})") from None
        if isinstance(d, dict) and d.get("kind", "fire") not in kinds:
            continue  # another record of the run (a kill assessment)
        if not isinstance(d, dict) or not {"t_s", "track", "launchers"} <= d.keys() \
                or not isinstance(d["launchers"], list) or not isinstance(d.get("call", {}), dict):
            raise ReplayError(f"{path}:{number}: a decision needs t_s, track and launchers")
        out.append(d)
    return sorted(out, key=lambda d: float(d["t_s"]))


@dataclass
class Engagements:
    """Launches and interceptor ends of the run (events.csv), to rebuild per-track engagement inputs."""

    launches: list[tuple[float, int]] = field(default_factory=list)  # (counted from after this t_s, track)
    ends: list[tuple[float, int]] = field(default_factory=list)  # (kill or miss t_s, track)

    @classmethod
    def from_events(cls, events: dict[str, list[str]] | None, decisions: list[dict[str, Any]]) -> Engagements:
        out = cls()
        if not events:
            return out
        decided = sorted((float(d["t_s"]), int(d["track"])) for d in decisions)
        for t_txt, kind, track_txt in zip(events.get("time_s", []), events.get("event", []),
                                          events.get("track", []), strict=False):
            try:
                t, track = float(t_txt), int(track_txt)
            except ValueError:
                continue
            if kind == "launch":
                # registered after its decision's evaluation: the latest decision on that track by the launch
                # (the board's accept time, rounded to 0.1 ms, can read a hair before the decision)
                before = [td for td, tid in decided if tid == track and td <= t + 0.0025]
                out.launches.append((before[-1] if before else t, track))
            elif kind in ("kill", "miss"):
                out.ends.append((t, track))
        return out

    def inputs(self, t_s: float, track_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(in_flight, shots_fired) per track as the loop counted them when evaluating at t_s."""
        index = {int(tid): k for k, tid in enumerate(track_ids.tolist())}
        in_flight = np.zeros(len(index), np.int32)
        shots = np.zeros(len(index), np.int32)
        for t, track in self.launches:
            if track in index and t < t_s - 1e-9:
                shots[index[track]] += 1
                in_flight[index[track]] += 1
        for t, track in self.ends:
            # the loop steps the engagement after fire control: an end is seen by the next tick's evaluation
            if track in index and t <= t_s - LOOP_TICK_S + 1e-9:
                in_flight[index[track]] -= 1
        return np.maximum(in_flight, 0), shots


# ---- the checks -----------------------------------------------------------------------------------------


def _call_time(call: list[dict[str, Any]]) -> float:
    """The evaluation's time: unrounded when the record has it, else the decision's t_s (rounded to the µs)."""
    return float((call[0].get("call") or {}).get("t_s", call[0]["t_s"]))


class Evaluator:
    """Fire control asked again, at a recorded decision's time, with its recorded launcher inputs."""

    def __init__(self, host: Host, engagements: Engagements, result: ReplayResult, var_rtol: float = 0.0) -> None:
        self.var_rtol = var_rtol  # 0: bit for bit (the evaluation's time is known exactly)
        self.host = host
        self.launcher_names = [s.name for s in host.scenario.launchers]
        self.friendly_codes = host.friendly_codes
        self.engagements = engagements
        self.result = result

    def _same_var(self, ours: float, run: float) -> bool:
        return ours == run if self.var_rtol == 0.0 else abs(ours - run) <= self.var_rtol * abs(run)

    def holds(self, tracker: Any, call: list[dict[str, Any]]) -> bool:
        """Does the replayed tracker already hold every decided track as the run saw it (position variance)?"""
        t = _call_time(call)
        snap = tracker.tracks(t)
        pos_var, _ = track_inputs(snap, self.friendly_codes)
        row = {int(tid): k for k, tid in enumerate(snap.track_id.tolist())}
        for d in _fires(call):
            k = row.get(int(d["track"]))
            c = d.get("call") or {}
            if k is None or snap.status[k] != CONFIRMED or not self._same_var(float(pos_var[k]),
                                                                               float(c.get("pos_var_m2", math.nan))):
                return False
        return True

    def check(self, tracker: Any, call: list[dict[str, Any]]) -> None:
        """One evaluation (the decisions of one t_s): replay it and report what differs."""
        self.result.evaluations += 1
        first = call[0]
        rec = first.get("call") or {}
        t = _call_time(call)
        # what the run's fire control was given (Host.fire_control_view): the confirmed tracks, and every
        # friendly or neutral one, tentative too, as protected tracks
        every = tracker.tracks(t)
        view = self.host.fire_control_view(t)
        if view is None:
            tracks, inputs = every, None
        else:
            tracks, inputs = view
        row = {int(tid): k for k, tid in enumerate(tracks.track_id.tolist())} if inputs is not None else {}
        confirmed = {int(tid) for tid in tracks.track_id[tracks.status == CONFIRMED].tolist()}
        live = {(int(d["track"]), str(name)) for d in _fires(call) for name in d["launchers"]}
        findings = self.result.findings
        for d in _fires(call):
            tid = int(d["track"])
            for name in d["launchers"]:
                if tid not in confirmed:
                    held = "tentative" if tid in every.track_id.tolist() else "not held"
                    findings.append(Finding(t, tid, str(name), f"track {held} in replay: no fire"))
        if not row or inputs is None:
            return
        pos_var, friendly = inputs.pos_var_m2, inputs.friendly
        in_flight, shots = self.engagements.inputs(t, tracks.track_id)
        # tracks under kill assessment: the run records the list when it can, else only each decided track's flag
        assessing = np.zeros(len(row), bool)
        for tid in rec.get("assessing_tracks") or []:
            if int(tid) in row:
                assessing[row[int(tid)]] = True
        engaged = rec.get("engaged")
        if isinstance(engaged, dict):  # every engaged track's [in_flight, shots_fired], when the run recorded them
            in_flight[:], shots[:] = 0, 0
            for tid_txt, (flying, fired) in engaged.items():
                if int(tid_txt) in row:
                    in_flight[row[int(tid_txt)]], shots[row[int(tid_txt)]] = int(flying), int(fired)
        for d in call:
            tid = int(d["track"])
            if tid not in row or not isinstance(d.get("call"), dict):
                continue
            k, c = row[tid], d["call"]
            where = ", ".join(d["launchers"])
            run_var, our_var = float(c.get("pos_var_m2", math.nan)), float(pos_var[k])
            if "pos_var_m2" in c and not self._same_var(our_var, run_var):
                # bit for bit or not at all: the same plots at the same times give the same numbers
                findings.append(Finding(t, tid, where,
                                        f"replayed track differs: position variance {our_var!r} m², "
                                        f"the run's {run_var!r} (relative {our_var / run_var - 1:+.1e})"))
            if "friendly" in c and bool(c["friendly"]) != bool(friendly[k]):
                findings.append(Finding(t, tid, where, f"replayed track is {'' if friendly[k] else 'not '}friendly"))
            if "neutral" in c and bool(c["neutral"]) != bool(inputs.neutral[k]):
                findings.append(Finding(t, tid, where,
                                        f"replayed track is {'' if inputs.neutral[k] else 'not '}neutral"))
            if "assessing" in c:
                assessing[k] = bool(c["assessing"])
            # the decided track's engagement inputs are recorded: they win over the rebuilt ones, and show how
            # far the rebuilding (used for every other track) can be trusted
            recorded = (int(c.get("in_flight", in_flight[k])), int(c.get("shots_fired", shots[k])))
            if recorded != (int(in_flight[k]), int(shots[k])):
                self.result.rebuilt_mismatches += 1
            in_flight[k], shots[k] = recorded
        try:
            launchers = LauncherInputs(
                np.asarray(rec["armed"], bool), np.asarray(rec["ready"], bool), np.asarray(rec["rounds"], np.int32),
                np.asarray(rec["reload_left_s"], np.float64),
                np.asarray(rec.get("channels_in_use", [0] * len(self.launcher_names)), np.int32))
            out = self.host.fire_control.decide(FireControlInputs(
                t, tracks, inputs, EngagementInputs(in_flight, shots, assessing), launchers))
        except (KeyError, ValueError, TypeError) as e:
            raise ReplayError(f"decision at t={first['t_s']}: its launcher inputs cannot be used ({e})") from None
        a = out.assignments
        replayed = {(int(tracks.track_id[int(a.track_index[j])]), self.launcher_names[int(a.launcher_index[j])])
                    for j in range(len(a.track_index))}
        for tid, name in sorted(live - replayed):
            if tid in row:
                why = out.explain(row[tid])
                chosen = ", ".join(why["launchers"]) or why["decision"]
                findings.append(Finding(t, tid, name, f"the run fired, replay does not (replay: {chosen})"))
        for tid, name in sorted(replayed - live):
            findings.append(Finding(t, tid, name, "replay fires, the run did not"))
        for d in call:
            if d.get("kind") == "refusal":
                self._check_refusal(t, d, out, tracks, row)

    def _check_refusal(self, t: float, d: dict[str, Any], out: Any, tracks: Any, row: dict[int, int]) -> None:
        """A protection or kill-assessment refusal the run recorded: replay must refuse the same track for the same
        reason (on the same launcher) and, for a protection, name the same protected track."""
        self.result.refusals_checked += 1
        tid, reason, launcher = int(d["track"]), str(d.get("reason")), d.get("launcher")
        where = launcher or ""
        if tid not in row:
            self.result.findings.append(Finding(t, tid, where, f"the run refused {reason}; replay has no such track"))
            return
        r = out.refusals
        match = [j for j in range(len(r.track_index))
                 if int(r.track_index[j]) == row[tid] and RefusalReason(int(r.reason[j])).name == reason
                 and (launcher is None or int(r.launcher_index[j]) < 0
                      or self.launcher_names[int(r.launcher_index[j])] == launcher)]
        if not match:
            why = out.explain(row[tid])
            self.result.findings.append(Finding(t, tid, where, f"the run refused {reason}, replay does not "
                                                               f"(replay: {why['decision']})"))
            return
        protected = d.get("protected_track")
        if protected is not None:
            ids = {int(tracks.track_id[int(r.protected_index[j])]) for j in match if int(r.protected_index[j]) >= 0}
            if int(protected) not in ids:
                self.result.findings.append(Finding(t, tid, where, f"the run's refusal protected track {protected}, "
                                                                   f"replay's protects {sorted(ids) or 'none'}"))


def _fires(call: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in call if d.get("kind", "fire") == "fire"]


def _check_commands(decisions: list[dict[str, Any]], commands: list[FireCommand], start_ns: int,
                    result: ReplayResult, records_end_s: float = math.inf) -> None:
    """Pair each decision with the fire write of its track on its launcher, sent after the decision and before
    that launcher's next decision (the runtime holds a launcher busy until its fire is done); what is left
    over is reported: decisions as uncommanded, writes as fire commands without a decision."""
    open_cmds: dict[str, list[FireCommand]] = {}
    for c in commands:
        open_cmds.setdefault(c.launcher, []).append(c)
    per_launcher: dict[str, list[tuple[float, int]]] = {}
    for d in decisions:
        for launcher in d["launchers"]:
            per_launcher.setdefault(str(launcher), []).append((float(d["t_s"]), int(d["track"])))
    for launcher, decided in per_launcher.items():
        queue = open_cmds.get(launcher, [])
        for j, (t, track) in enumerate(decided):
            t_next = next((t2 for t2, _ in decided[j + 1:] if t2 > t), math.inf)
            match = next((c for c in queue
                          if c.track == track and t - 1e-6 <= (c.host_ns - start_ns) / 1e9 < t_next - 1e-6), None)
            if match is None:
                result.uncommanded.append(Finding(t, track, launcher, "no fire command on the wire"))
            else:
                queue.remove(match)
    for launcher, queue in open_cmds.items():
        for c in queue:
            if (c.host_ns - start_ns) / 1e9 > records_end_s - 1e-6:
                result.unchecked_commands += 1  # its decision may have been written after the last flush
                continue
            result.findings.append(Finding((c.host_ns - start_ns) / 1e9, -1 if c.track is None else c.track, launcher,
                                           f"fire command seq {c.seq} without a decision"))


# ---- the replay ----------------------------------------------------------------------------------------


def _recording_cut(rec: Path) -> str | None:
    """The recording's truncation line, if any; ReplayError for a recording with nothing to replay."""
    try:
        if rec.stat().st_size == 0:
            raise ReplayError(f"{rec}: empty file (0 bytes): nothing was recorded (the run died before its "
                              "first frame?)")
        cut = recording_end(rec)
    except RecordingError as e:
        raise ReplayError(str(e)) from None
    except OSError as e:
        raise ReplayError(f"{rec}: cannot read ({e.strerror or e})") from None
    if cut and cut.endswith(" at byte 0"):
        raise ReplayError(f"{cut}: not even its section header ({rec.stat().st_size} bytes), nothing to replay")
    return cut


def time_origin_ns(plots_csv: Path, polls: list[Poll]) -> tuple[int, str]:
    """The run's start_host_ns from its first plot: plots.csv has it relative to the start, the recording's
    annotations absolute, and the runtime subtracted start_host_ns / 1e9 from the one to get the other.

    Exact when plots.csv carries the time in full (as RunWriter writes it): the candidate that gives back
    plots.csv's time bit for bit is the one. Returns (ns, how it was found) or raises ReplayError saying why not.
    """
    first_abs = None
    for poll in polls:  # the first iteration with plots: its earliest plot is plots.csv's first row
        times = [float(t) for _, f in poll.frames for t, _ in (f.annotation or {}).get("plots_t_s") or []]
        if times:
            first_abs = min(times)
            break
    if first_abs is None:
        raise ReplayError("no summary.json start_host_ns, and the recording has no plot-time annotations to recover "
                          "the run's time origin from: cannot replay")
    try:
        with open(plots_csv, newline="") as f:
            rows = csv.reader(f)
            next(rows, None)
            first = next(rows, None)
        first_rel = float(first[0]) if first else math.nan
    except (OSError, ValueError, IndexError):
        first_rel = math.nan
    if not math.isfinite(first_rel):
        raise ReplayError(f"{plots_csv}: no plot to recover the run's time origin from (and no start_host_ns in "
                          "a summary.json): cannot replay")
    estimate = round((first_abs - first_rel) * 1e9)
    for delta in sorted(range(-8, 9), key=abs):
        if first_abs - (estimate + delta) / 1e9 == first_rel:
            return estimate + delta, "plots.csv and the recording's plot times (exact)"
    return estimate, "plots.csv and the recording's plot times (to the µs: plots.csv rounds its times)"


def _records_end_s(run: Any, decisions: list[dict[str, Any]]) -> float:
    """The latest run time in an unfinished run's records: every record file is flushed at the same moment."""
    ends = [float(d["t_s"]) for d in decisions[-1:]]
    for table in (run.gospa, run.events):
        times = (table or {}).get("time_s") or []
        with contextlib.suppress(ValueError):
            ends.append(max(float(t) for t in times) if times else -math.inf)
    return max(ends, default=-math.inf)


def replay(run_dir: str | Path, recording: str | Path | None = None, tracker: str | None = None,
           fire_control: str | None = None) -> ReplayResult:
    """Replay a run folder's recording through a fresh host (see the module doc): the tracker and fire control
    the run used (summary.json's "host"), or the ones chosen here (hil.host.plugins)."""
    from hil.records.report import ReportError, load_run_folder

    folder = Path(run_dir)
    rec = Path(recording) if recording else folder / "recording.pcapng"
    if not folder.is_dir():
        raise ReplayError(f"{folder}: no such run folder")
    if not any((folder / name).is_file() for name in RUN_FOLDER_FILES):
        raise ReplayError(f"{folder}: not a run folder (none of {', '.join(RUN_FOLDER_FILES)} in it)")
    if not rec.is_file():
        raise ReplayError(f"{rec}: no such recording (a run made with --no-record has none)")
    try:
        run = load_run_folder(folder, require_summary=False)
    except ReportError as e:
        raise ReplayError(str(e)) from None
    if run.scenario is None:
        raise ReplayError(f"{run_dir}: the run's scenario file was not found ({'; '.join(run.notes)})")
    sc = run.scenario
    result = ReplayResult()
    summary = run.summary
    if summary.get("scored") == "plant":
        raise ReplayError(f"{folder}: the run folder of a hil plant, whose host ran elsewhere: replay the host's run "
                          "folder (hil host --out) instead")
    finished = bool(summary) and summary.get("complete") is not False  # older runs have no "complete": finished
    if not summary:
        result.notes.append("no summary.json (the run did not finish?): replayed from the recording and the "
                            "other run files")
    elif not finished:
        result.notes.append("summary.json is the journal of a run that did not finish (killed?)")
    cut = _recording_cut(rec)
    if cut:
        result.notes.append(f"{cut} (the run was killed?): replayed the frames before it")
    decisions = read_decisions(run.path / "decisions.jsonl")
    refusals = read_decisions(run.path / "decisions.jsonl", ("refusal",))
    try:
        commands = fire_commands(rec, result)
        polls = list(radar_polls(rec, [r.name for r in sc.radars]))
    except RecordingError as e:
        raise ReplayError(str(e)) from None
    start_ns = summary.get("start_host_ns")
    ticks = [f.host_ns for p in polls for _, f in p.frames] + [c.host_ns for c in commands]  # the recording's times
    _check_same_run(rec, folder, start_ns, summary.get("duration_s"), ticks)
    if not isinstance(start_ns, int):
        start_ns, how = time_origin_ns(run.path / "plots.csv", polls)
        result.notes.append(f"the run's time origin comes from {how}")
    time_mode = summary.get("time_mode")
    if time_mode not in ("real", "virtual"):
        time_mode = "virtual" if ticks and all(t % 1000 == 0 for t in ticks) else "real"
        result.notes.append(f"time mode taken as {time_mode} from the recording's timestamps")
    real_time = time_mode == "real"
    records_end_s = math.inf
    if not finished or cut:
        # what the recording holds bounds what can be checked: a decision after its last frame had no plots here
        last_ns = max([p.host_ns for p in polls] + [c.host_ns for c in commands], default=start_ns)
        recording_end_s = (last_ns - start_ns) / 1e9
        kept = [d for d in decisions if float(d["t_s"]) <= recording_end_s]
        result.unchecked_decisions = len(decisions) - len(kept)
        decisions = kept
        refusals = [d for d in refusals if float(d["t_s"]) <= recording_end_s]
        if result.unchecked_decisions:
            result.notes.append(f"{result.unchecked_decisions} decisions after the recording's last frame "
                                f"(t = {recording_end_s:.3f} s) not checked")
    if not finished:
        records_end_s = _records_end_s(run, decisions)
    result.decisions = len(decisions)
    result.fire_commands = len(commands)

    used: dict[str, Any] = (summary or {}).get("host") or {}
    result.host = {"tracker": tracker or used.get("tracker") or sc.tracker,
                   "fire_control": fire_control or used.get("fire_control") or sc.fire_control}
    host = build_host(sc, result.host["tracker"], result.host["fire_control"], start_ns=start_ns)
    tracker_used = host.tracker
    decoder = PollDecoder([r.site[2] for r in sc.radars], result)
    exact_t = not real_time or all("t_s" in (d.get("call") or {}) for d in decisions)
    by_poll = all(isinstance((d.get("call") or {}).get("poll"), int) for d in decisions)
    # a real-time t_s rounded to the µs moves a predicted variance by ~1e-7 of itself
    evaluator = Evaluator(host, Engagements.from_events(run.events, decisions), result,
                          var_rtol=0.0 if exact_t else REAL_TIME_VAR_RTOL)
    calls: list[list[dict[str, Any]]] = []
    # one evaluation per t_s: its fire decisions, and the refusals recorded then (checked in the same evaluation)
    for d in sorted(decisions + refusals, key=lambda d: float(d["t_s"])):
        if calls and float(calls[-1][0]["t_s"]) == float(d["t_s"]):
            calls[-1].append(d)
        else:
            calls.append([d])
    pending = iter(calls)
    call = next(pending, None)

    def due(call: list[dict[str, Any]], poll: Poll) -> bool:
        """Was this evaluation made before this poll's iteration?"""
        if by_poll and poll.key[0] == "poll":
            return int(call[0]["call"]["poll"]) < poll.key[1]
        after_ns = poll.host_ns - start_ns - round(float(call[0]["t_s"]) * 1e9)
        if not real_time or after_ns > REAL_TIME_POLL_WINDOW_NS:
            return after_ns > 0
        # real time: t_s is the loop's wake-up, just before its own polls; a poll this soon after it is the
        # decision's own iteration unless the tracker already holds the decided tracks as the run saw them
        return after_ns > 0 and evaluator.holds(tracker_used, call)

    for poll in polls:
        while call is not None and due(call, poll):
            evaluator.check(tracker_used, call)
            call = next(pending, None)
        polled, sweeps, problems = decoder.decode(poll)
        for p in problems:
            result.findings.append(Finding((poll.host_ns - start_ns) / 1e9, -1, "", f"recording: {p}"))
        # the host takes this iteration's plots and sweeps exactly as it did in the run
        batch_of = dict(polled)
        radars = sorted(set(batch_of) | {i for _, i, _ in sweeps})
        host.take_plots([RadarPoll(i, batch_of.get(i), [(t, az) for t, j, az in sweeps if j == i], 0.0)
                         for i in radars])
        result.plots += sum(b.n for _, b in polled)
        result.polls += 1
    while call is not None:
        evaluator.check(tracker_used, call)
        call = next(pending, None)
    _check_commands(decisions, commands, start_ns, result, records_end_s)
    if result.unchecked_commands:
        result.notes.append(f"{result.unchecked_commands} fire commands after the run's records end "
                            f"(t = {records_end_s:.3f} s) not checked: their decisions may have died with the run")
    if not result.exact:
        result.notes.append("the recording lacks some plot-time annotations: plot times are receive times there, "
                            "not the ones the run's tracker used")
    if result.rebuilt_mismatches:
        result.notes.append(f"for {result.rebuilt_mismatches} decided tracks the interceptors in flight and shots "
                            "fired rebuilt from events.csv differ from the recorded ones: the other tracks' may too")
    if real_time and calls and not (by_poll and exact_t):
        result.notes.append("a real-time run: which polls came before each decision is inferred (its t_s is the "
                            "loop's wake-up, rounded to the µs) and variances are compared to "
                            f"{REAL_TIME_VAR_RTOL:g} of themselves, not bit for bit")
    result.findings.sort(key=lambda f: (f.t_s, f.track, f.launcher))
    result.uncommanded.sort(key=lambda f: (f.t_s, f.track, f.launcher))
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", type=Path, metavar="RUN",
                        help="a run folder, or the recording.pcapng of a run (its run folder is its directory)")
    parser.add_argument("--tracker", default=None, metavar="CHOICE",
                        help="replay through this tracker (docs/PLUGINS.md; default: the one the run used)")
    parser.add_argument("--fire-control", default=None, metavar="CHOICE",
                        help="replay through this fire control (default: the one the run used)")
    parser.add_argument("--run", type=Path, default=None,
                        help="run folder with summary.json and decisions.jsonl (default: the recording's folder)")


def main(args: argparse.Namespace) -> int:
    if not args.recording.exists():
        raise ReplayError(f"{args.recording}: no such run folder or recording")
    if args.recording.is_dir():
        run_dir, recording = args.run or args.recording, args.recording / "recording.pcapng"
    else:
        run_dir, recording = args.run or args.recording.parent, args.recording
    result = replay(run_dir, recording, tracker=args.tracker, fire_control=args.fire_control)
    print(f"replayed {result.plots} plots from {result.payloads} ASTERIX payloads in {result.polls} polls "
          f"({result.rejected_blocks} rejected); {result.decisions} decisions in {result.evaluations} fire-control "
          f"evaluations, {result.fire_commands} fire commands, {result.refusals_checked} protection and "
          f"kill-assessment refusals; tracker {result.host['tracker']}, fire control {result.host['fire_control']}")
    for note in result.notes:
        print(f"note: {note}")
    if result.uncommanded:
        print(f"{len(result.uncommanded)} decisions of the run that no fire command followed "
              "(the launcher link refused them?):")
        _table(result.uncommanded)
    if not result.findings:
        print("every decision reproduced: same tracks, same fire-control decisions, no fire command without one")
        return 0
    print(f"{len(result.findings)} differences:")
    _table(result.findings)
    return 1


def _check_same_run(rec: Path, folder: Path, start_ns: Any, duration_s: Any, ticks: list[int]) -> None:
    """ReplayError when the recording's frames (ticks: their host ns) are not of the run the folder describes (its
    time on the host's clock, from a minute before its start to a minute after its end: bring-up and shutdown both
    fit)."""
    if not isinstance(start_ns, int) or not isinstance(duration_s, int | float):
        return
    if not ticks:
        return
    margin_ns = 60_000_000_000
    if max(ticks) < start_ns - margin_ns or min(ticks) > start_ns + int(duration_s * 1e9) + margin_ns:
        raise ReplayError(f"{rec} is not the recording of the run in {folder}: its frames are "
                          f"{(min(ticks) - start_ns) / 1e9:+.0f} s from that run's start")


def _table(rows: list[Finding]) -> None:
    print(f"{'t (s)':>9}  {'track':>6}  {'launcher':<16} problem")
    for f in rows:
        print(f"{f.t_s:9.3f}  {f.track:6d}  {f.launcher:<16} {f.problem}")
