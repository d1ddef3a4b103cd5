"""Replay: a recorded run fed back through the tracker reproduces its decisions; tampering is reported."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import WriteMultipleRegistersRequest, WriteMultipleRegistersResponse

from hil.cli import main as hil_main
from hil.drivers.asterix import encode_cat034, encode_cat048_block
from hil.drivers.registers import Holding
from hil.emulators.radar_model import scan_plots
from hil.kernels import build_tracker
from hil.recording import Recorder
from hil.replay import ReplayError, fire_commands, radar_batches, replay
from hil.scenario import Scenario

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "raid.toml"
RTU = FramerRTU(DecodePDU(False))
START_NS = 5_000_000_000
STEP_S = 0.01  # one "dwell" per radar every 10 ms, received at its end
RUN_S = 30.0


def _ns(t: float) -> int:
    return START_NS + round(t * 1e9)


def make_recorded_run(out: Path, tamper: bool = False) -> dict[str, Any]:
    """A run folder whose recording and decisions come from one live pass of the tracker, as the runtime makes."""
    sc = Scenario.load(SCENARIO)
    out.mkdir(parents=True, exist_ok=True)
    tracker = build_tracker(sc)
    sector_az = [math.nan] * len(sc.radars)
    decisions: list[dict[str, Any]] = []
    decided: set[int] = set()
    seq = 0
    plot_no = 0
    with Recorder(out / "recording.pcapng", tsoffset_s=0) as rec:
        rec.record(sc.radars[0].name, "tx", b"\x7e\x03config\x7e", START_NS, "frame")
        next_decision = 8.0
        for t_end, i, plots, crossings in scan_plots(sc, step_s=STEP_S):
            if t_end > RUN_S:
                break
            radar = sc.radars[i]
            n = len(plots)
            if n:
                rng = plots.range_m
                height = radar.site[2] + rng * np.sin(plots.elevation_rad)
                # I120 holds +-511 m/s: faster closing speeds go without Doppler, live and in replay alike
                rr = np.where(np.abs(plots.range_rate_mps) <= 511.0, plots.range_rate_mps, np.nan)
                block = encode_cat048_block(radar.sac, radar.sic, plots.t_s, rng, plots.azimuth_rad, height,
                                            rr, plots.mode3a, np.arange(plot_no, plot_no + n))
                plot_no += n
                rec.record(radar.name, "rx", block, _ns(t_end), "asterix")
                # the live host: plots go to the tracker at their receive time (as replay will)
                tracker.update(np.full(n, t_end), np.full(n, i, np.int32), rng, plots.azimuth_rad,
                               plots.elevation_rad, rr, plots.mode3a)
            for c in crossings:
                rec.record(radar.name, "rx", encode_cat034(radar.sac, radar.sic, 2 if c.sector else 1, c.t_s,
                                                           c.azimuth_rad, radar.scan_period_s), _ns(t_end), "asterix")
                if not math.isnan(sector_az[i]):
                    tracker.sector_swept(i, t_end, sector_az[i], c.azimuth_rad)
                sector_az[i] = c.azimuth_rad
            if i == len(sc.radars) - 1 and t_end >= next_decision:
                next_decision += 4.0
                snap = tracker.tracks(t_end + 1e-4)
                fresh = [k for k in np.nonzero(snap.status == 2)[0] if int(snap.track_id[k]) not in decided]
                for k in fresh[:2]:
                    tid = int(snap.track_id[k])
                    decided.add(tid)
                    launcher = sc.launchers[len(decisions) % len(sc.launchers)].name
                    decisions.append({"t_s": t_end + 1e-4, "track": tid, "launcher": launcher,
                                      "inputs": {"position_enu_m": snap.state[k, :3].round(2).tolist()}})
                    seq += 1
                    write = WriteMultipleRegistersRequest(dev_id=1, address=Holding.FIRE_TRACK,
                                                          registers=[tid, 4500, 1000, seq])
                    rec.record(launcher, "tx", RTU.buildFrame(write), _ns(t_end + 0.002), "modbus_rtu")
                    answer = WriteMultipleRegistersResponse(dev_id=1, address=Holding.FIRE_TRACK, count=4)
                    rec.record(launcher, "rx", RTU.buildFrame(answer), _ns(t_end + 0.003), "modbus_rtu")
        if tamper:
            rec.record(sc.launchers[0].name, "tx", RTU.buildFrame(WriteMultipleRegistersRequest(
                dev_id=1, address=Holding.FIRE_TRACK, registers=[777, 0, 0, 99])), _ns(RUN_S - 1), "modbus_rtu")
    if tamper:
        decisions[0]["inputs"]["position_enu_m"][0] += 2_000.0  # the run "saw" the target elsewhere
        decisions.append({"t_s": 20.5, "track": 9999, "launcher": sc.launchers[1].name})
    (out / "decisions.jsonl").write_text("".join(json.dumps(d) + "\n" for d in decisions))
    (out / "summary.json").write_text(json.dumps({"scenario": sc.name, "scenario_file": str(SCENARIO), "seed": 1,
                                                  "start_host_ns": START_NS}))
    return {"decisions": decisions, "plots": plot_no}


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("run")
    return out, make_recorded_run(out)


def test_replay_reproduces_every_decision(recorded_run: tuple[Path, dict[str, Any]]) -> None:
    run, made = recorded_run
    assert len(made["decisions"]) >= 3, "the fixture run should have fired a few times"
    result = replay(run)
    assert result.plots == made["plots"]
    assert result.decisions == result.fire_commands == len(made["decisions"])
    assert result.findings == []


def test_replay_is_deterministic(recorded_run: tuple[Path, dict[str, Any]]) -> None:
    run, _ = recorded_run
    assert replay(run) == replay(run)


def test_replay_reports_what_differs(tmp_path: Path) -> None:
    made = make_recorded_run(tmp_path / "run", tamper=True)
    result = replay(tmp_path / "run")
    problems = [(f.track, f.problem) for f in result.findings]
    first = made["decisions"][0]["track"]
    assert any(t == first and "m from the decided one" in p for t, p in problems)
    assert (9999, "track not held by the replayed tracker") in problems
    assert (9999, "no fire command in the recording") in problems
    assert (777, "fire command seq 99 without a decision") in problems
    assert len(problems) == 4


def test_command_line_exit_codes(recorded_run: tuple[Path, dict[str, Any]], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = recorded_run
    assert hil_main(["replay", str(run / "recording.pcapng")]) == 0
    assert "every decision reproduced" in capsys.readouterr().out
    make_recorded_run(tmp_path / "bad", tamper=True)
    assert hil_main(["replay", str(tmp_path / "bad" / "recording.pcapng"), "--run", str(tmp_path / "bad")]) == 1
    assert "4 differences" in capsys.readouterr().out
    assert hil_main(["replay", str(tmp_path / "missing.pcapng")]) == 2  # a clear error, no traceback


def test_recorded_plots_and_fire_commands_decode(tmp_path: Path) -> None:
    path = tmp_path / "r.pcapng"
    with Recorder(path) as rec:
        rec.record("west", "rx", encode_cat048_block(1, 1, [1.0], [18520.0], [math.radians(30)], [1000.0],
                                                     [-50.0], [0o4521], [7]), 10, "asterix")
        rec.record("west", "rx", b"\x30\x00\x09garbage", 11, "asterix")  # a block the live decoder rejected too
        rec.record("l1", "tx", RTU.buildFrame(WriteMultipleRegistersRequest(
            dev_id=1, address=Holding.FIRE_TRACK, registers=[42, 100, 200, 5])), 12, "modbus_rtu")
        rec.record("l1", "tx", b"\x01\x10\x00", 13, "modbus_rtu")  # torn: no CRC
    batches = list(radar_batches(path, ["west"], [0.0]))
    assert len(batches) == 1
    b = batches[0]
    assert b.range_m.tolist() == [18520.0] and b.mode3a.tolist() == [0o4521]
    assert math.isclose(b.elevation_rad[0], math.asin(1000.0 / 18520.0), abs_tol=1e-3)
    cmds = fire_commands(path)
    assert [(c.launcher, c.track, c.seq) for c in cmds] == [("l1", 42, 5)]


def test_bad_decisions_file_names_the_line(recorded_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    run, _ = recorded_run
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("recording.pcapng", "summary.json"):
        (bad / name).write_bytes((run / name).read_bytes())
    (bad / "decisions.jsonl").write_text('{"t_s": 1, "track": 2, "launcher": "x"}\n{"t_s": 3}\n{}\n')
    with pytest.raises(ReplayError, match=r"decisions\.jsonl:2: a decision needs"):
        replay(bad)
