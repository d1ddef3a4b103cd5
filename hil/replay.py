"""`hil replay`: feed a run's recorded radar plots back through the tracker and check the run's decisions.

What it does, deterministically (same recording, same kernels: same report):
1. reads the ASTERIX data blocks each radar link received (recording.pcapng), decodes them with the host's
   decoder and feeds them, with the CAT034 sector crossings, through a fresh tracker built for the run's
   scenario (hil.kernels.build_tracker);
2. at the time of every fire-control decision in decisions.jsonl, checks that the replayed tracker holds
   the track the run fired at, confirmed, within ``--tolerance-m`` of the position the decision used;
3. checks that every decision has its fire command on the launcher's Modbus link in the recording (the
   FC16/FC6 write of FIRE_SEQ with the track number), and that no fire command went out without one.

Plot times are the host's receive times in the recording (the recording carries no board envelope), so
replayed tracks can trail the live ones by up to one host loop tick; the tolerance covers that.
What it does not do yet: re-run the fire-control kernel, because decisions.jsonl does not record the
launcher inputs (armed, ready, rounds, reload) and in-flight counts the live call used.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hil.drivers.asterix import AsterixError, Cat034Message, Cat048Plot, decode_blocks
from hil.drivers.modbus_rtu import ModbusExceptionResponse, ModbusFrameError, decode_adu, parse_request
from hil.drivers.registers import FunctionCode, Holding
from hil.errors import HilError
from hil.plots import elevation_from_height
from hil.recording import RecordingError, read_recording

log = logging.getLogger("hil.replay")

MBAP_BYTES = 7
CONFIRMED = 2


class ReplayError(HilError):
    """A run folder or recording that cannot be replayed."""


@dataclass
class RadarBatch:
    """Plots of one received ASTERIX datagram or frame, in SI (the tracker's inputs)."""

    host_ns: int
    sensor: int
    range_m: np.ndarray
    azimuth_rad: np.ndarray
    elevation_rad: np.ndarray
    range_rate_mps: np.ndarray
    mode3a: np.ndarray
    sweeps: list[float] = field(default_factory=list)  # CAT034 sector azimuths in the same datagram


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
    fire_commands: int = 0
    batches: int = 0
    plots: int = 0
    rejected_blocks: int = 0
    rejected_modbus: int = 0
    findings: list[Finding] = field(default_factory=list)


def radar_batches(recording: Path, radar_names: list[str], site_z_m: list[float],
                  result: ReplayResult | None = None) -> Iterator[RadarBatch]:
    """Decoded plots of every ASTERIX block a radar link received, in recording order."""
    index = {name: i for i, name in enumerate(radar_names)}
    for frame in read_recording(recording):
        if frame.kind != "asterix" or frame.direction != "rx" or frame.link_name not in index:
            continue
        sensor = index[frame.link_name]
        try:
            records = decode_blocks(frame.payload)
        except AsterixError as e:  # the live decoder rejected it too: same outcome, counted
            log.debug("replay: %s block rejected: %s", frame.link_name, e)
            if result is not None:
                result.rejected_blocks += 1
            continue
        plots = [r for r in records if isinstance(r, Cat048Plot)]
        rng = np.array([p.range_m for p in plots], dtype=np.float64)
        yield RadarBatch(
            host_ns=frame.host_ns, sensor=sensor, range_m=rng,
            azimuth_rad=np.array([p.azimuth_rad for p in plots], dtype=np.float64),
            elevation_rad=elevation_from_height(np.array([p.height_m for p in plots], dtype=np.float64), rng,
                                                site_z_m[sensor]),
            range_rate_mps=np.array([p.range_rate_mps for p in plots], dtype=np.float64),
            mode3a=np.array([p.mode3a for p in plots], dtype=np.int32),
            sweeps=[r.sector_azimuth_rad for r in records if isinstance(r, Cat034Message)],
        )


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


def read_decisions(path: Path) -> list[dict[str, Any]]:
    """decisions.jsonl: the fire decisions of the run, each with t_s, track and launcher."""
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
        if not isinstance(d, dict) or not {"t_s", "track", "launcher"} <= d.keys():
            raise ReplayError(f"{path}:{number}: a decision needs t_s, track and launcher")
        out.append(d)
    return sorted(out, key=lambda d: float(d["t_s"]))


def _launcher_name(value: Any, names: list[str]) -> str:
    if isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    return str(value)


def _check_decision(tracker: Any, decision: dict[str, Any], tolerance_m: float, result: ReplayResult,
                    names: list[str]) -> None:
    t = float(decision["t_s"])
    track = int(decision["track"])
    launcher = _launcher_name(decision["launcher"], names)
    snap = tracker.tracks(t)
    hit = np.nonzero(snap.track_id == track)[0]
    if not len(hit):
        result.findings.append(Finding(t, track, launcher, "track not held by the replayed tracker"))
        return
    k = int(hit[0])
    if int(snap.status[k]) != CONFIRMED:
        result.findings.append(Finding(t, track, launcher, "track not confirmed in replay"))
    used = (decision.get("inputs") or {}).get("position_enu_m")
    if used is not None:
        d = float(np.linalg.norm(np.asarray(snap.state[k, :3]) - np.asarray(used, dtype=np.float64)))
        if d > tolerance_m:
            result.findings.append(Finding(t, track, launcher, f"replayed track {d:.0f} m from the decided one"))


def _check_commands(decisions: list[dict[str, Any]], commands: list[FireCommand], start_ns: int,
                    names: list[str], result: ReplayResult) -> None:
    """Pair decisions with fire writes per launcher, in order; report either side left over."""
    open_cmds: dict[str, list[FireCommand]] = {}
    for c in commands:
        open_cmds.setdefault(c.launcher, []).append(c)
    for d in decisions:
        launcher = _launcher_name(d["launcher"], names)
        t = float(d["t_s"])
        queue = open_cmds.get(launcher, [])
        match = next((c for c in queue if c.track == int(d["track"]) and (c.host_ns - start_ns) / 1e9 >= t - 1e-3),
                     None)
        if match is None:
            result.findings.append(Finding(t, int(d["track"]), launcher, "no fire command in the recording"))
        else:
            queue.remove(match)
    for launcher, queue in open_cmds.items():
        for c in queue:
            result.findings.append(Finding((c.host_ns - start_ns) / 1e9, -1 if c.track is None else c.track, launcher,
                                           f"fire command seq {c.seq} without a decision"))


def replay(run_dir: str | Path, recording: str | Path | None = None, tolerance_m: float = 150.0) -> ReplayResult:
    """Replay a run folder's recording through a fresh tracker and check its decisions (see module doc)."""
    from hil.kernels import build_tracker
    from hil.report import load_run_folder

    run = load_run_folder(run_dir)
    if run.scenario is None:
        raise ReplayError(f"{run_dir}: the run's scenario file was not found ({'; '.join(run.notes)})")
    rec = Path(recording) if recording else run.path / "recording.pcapng"
    if not rec.is_file():
        raise ReplayError(f"{rec}: no recording")
    names = [r.name for r in run.scenario.radars]
    launcher_names = [s.name for s in run.scenario.launchers]
    result = ReplayResult()
    decisions = read_decisions(run.path / "decisions.jsonl")
    result.decisions = len(decisions)
    try:
        commands = fire_commands(rec, result)
        batches = list(radar_batches(rec, names, [r.site[2] for r in run.scenario.radars], result))
        start_ns = run.summary.get("start_host_ns")
        if start_ns is None:
            first = next(read_recording(rec), None)
            start_ns = first.host_ns if first else 0
    except RecordingError as e:
        raise ReplayError(str(e)) from None
    result.fire_commands = len(commands)
    tracker = build_tracker(run.scenario)
    sector_az = [math.nan] * len(names)
    pending = iter(decisions)
    decision = next(pending, None)
    # batches received at the same host instant were one poll: merged in time order as the runtime does
    k = 0
    while k < len(batches):
        host_ns = batches[k].host_ns
        group = []
        while k < len(batches) and batches[k].host_ns == host_ns:
            group.append(batches[k])
            k += 1
        t = (host_ns - int(start_ns)) / 1e9
        while decision is not None and float(decision["t_s"]) < t:
            _check_decision(tracker, decision, tolerance_m, result, launcher_names)
            decision = next(pending, None)
        n = sum(len(b.range_m) for b in group)
        if n:
            cat = {name: np.concatenate([getattr(b, name) for b in group])
                   for name in ("range_m", "azimuth_rad", "elevation_rad", "range_rate_mps", "mode3a")}
            sensor = np.concatenate([np.full(len(b.range_m), b.sensor, np.int32) for b in group])
            tracker.update(np.full(n, t), sensor, cat["range_m"], cat["azimuth_rad"], cat["elevation_rad"],
                           cat["range_rate_mps"], cat["mode3a"])
            result.plots += n
        for b in group:
            for az in b.sweeps:
                if not math.isnan(sector_az[b.sensor]):
                    tracker.sector_swept(b.sensor, t, sector_az[b.sensor], az)
                sector_az[b.sensor] = az
        result.batches += len(group)
    while decision is not None:
        _check_decision(tracker, decision, tolerance_m, result, launcher_names)
        decision = next(pending, None)
    _check_commands(decisions, commands, int(start_ns), launcher_names, result)
    result.findings.sort(key=lambda f: (f.t_s, f.track))
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", type=Path, help="recording.pcapng of a run (its run folder is its directory)")
    parser.add_argument("--run", type=Path, default=None,
                        help="run folder with summary.json and decisions.jsonl (default: the recording's folder)")
    parser.add_argument("--tolerance-m", type=float, default=150.0,
                        help="how far a replayed track may lie from the position a decision used (default 150 m)")


def main(args: argparse.Namespace) -> int:
    run_dir = args.run or args.recording.parent
    result = replay(run_dir, args.recording, tolerance_m=args.tolerance_m)
    print(f"replayed {result.plots} plots in {result.batches} blocks ({result.rejected_blocks} rejected); "
          f"{result.decisions} decisions, {result.fire_commands} fire commands")
    if not result.findings:
        print("every decision reproduced: track held and confirmed, fire command on the wire")
        return 0
    print(f"{len(result.findings)} differences:")
    print(f"{'t (s)':>9}  {'track':>6}  {'launcher':<16} problem")
    for f in result.findings:
        print(f"{f.t_s:9.3f}  {f.track:6d}  {f.launcher:<16} {f.problem}")
    return 1
