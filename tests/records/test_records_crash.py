"""Records survive a crash: flushed as the run goes, a journal of the summary, replay of a killed run."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.commands.cli import main as hil_main
from hil.errors import ConfigError
from hil.measure.latency import StageLatency
from hil.records.recording import Recorder, RecordingError, read_recording, recording_end
from hil.records.replay import fire_commands, replay
from hil.records.report import render_report
from hil.records.runfolder import FLUSH_PERIOD_S, JOURNAL_ITEMS_PER_STAGE, JOURNAL_WRITE_BYTES, RunWriter
from hil.rig import Rig
from hil.runtime import RunOptions, run_chain
from hil.scenario import Scenario
from tests.helpers import RAID, REPO, all_stages

RECORD_FILES = ("events.csv", "truth.csv", "tracks.csv", "gospa.csv", "plots.csv")


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def on_disk(path: Path) -> list[str]:
    return path.read_text().splitlines()


def metrics_args(t: float) -> tuple[Any, ...]:
    snap = SimpleNamespace(index=np.array([0]), state=np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]))
    tracks = SimpleNamespace(track_id=np.array([7]), state=np.array([[1.5, 2.5, 3.5, 4.0, 5.0, 6.0]]))
    g = SimpleNamespace(total=12.0, localisation=2.0, missed=10.0, false=0.0)
    return t, snap, tracks, np.array([True]), g


def event(t: float, kind: str = "launch") -> dict[str, Any]:
    return {"time_s": t, "event": kind, "track": 7, "target": "bomber-1", "launcher": "north", "detail": ""}


@pytest.fixture
def writer(tmp_path: Path) -> tuple[RunWriter, FakeClock]:
    clock = FakeClock()
    return RunWriter(tmp_path / "run", Scenario.load(RAID), report=False, clock=clock), clock


# ---- the writer -----------------------------------------------------------------------------------------


def test_rows_reach_their_files_within_the_flush_period(writer: tuple[RunWriter, FakeClock]) -> None:
    w, clock = writer
    run = w.dir
    assert on_disk(run / "events.csv") == ["time_s,event,track,target,launcher,detail"]  # the header at once
    w.event(event(1.0))
    w.decision({"t_s": 1.0, "track": 7, "launchers": ["north"]})
    w.metrics(*metrics_args(1.0))
    clock.t += FLUSH_PERIOD_S * 0.9
    w.event(event(1.5, "kill"))
    assert len(on_disk(run / "events.csv")) == 1, "no write of its own per row: rows wait for the period"
    clock.t += FLUSH_PERIOD_S * 0.2
    w.event(event(2.0, "miss"))  # the first write after the period takes every file's rows to disk
    assert [r[1] for r in csv.reader((run / "events.csv").open())][1:] == ["launch", "kill", "miss"]
    assert json.loads(on_disk(run / "decisions.jsonl")[0])["track"] == 7
    for name in ("truth.csv", "tracks.csv", "gospa.csv"):
        assert len(on_disk(run / name)) == 2, name
    assert all((run / n).read_bytes().endswith(b"\n") for n in RECORD_FILES)  # whole rows only
    w.close()


def test_plot_times_are_written_in_full(writer: tuple[RunWriter, FakeClock]) -> None:
    w, _ = writer
    t = 12.000000123456789  # replay recovers the run's time origin from this and the recording's plot times
    w.plots(np.array([t]), np.array([0]), np.array([1e4]), np.array([0.1]), np.array([0.01]), np.array([np.nan]))
    w.flush()
    row = on_disk(w.dir / "plots.csv")[1].split(",")
    assert float(row[0]) == t and row[-1] == ""
    w.close()


def test_a_journal_written_in_stages_is_json_dumps_own_text(writer: tuple[RunWriter, FakeClock]) -> None:
    w, _ = writer
    summary = {"scenario": "raid", "refusals": [{"track": k, "reason": "NOT_CONFIRMED", "time_s": k / 7}
                                                for k in range(2 * JOURNAL_ITEMS_PER_STAGE + 3)],
               "engagements": [{"target": "a"}], "empty": [], "complete": True}
    stages = sum(1 for _ in w.journal_in_stages(summary))
    assert stages >= 3  # the long list a part at a time
    on_file = (w.dir / "summary.json").read_text()
    assert on_file == json.dumps({**summary, "complete": False}) + "\n"
    w.close()


def test_a_long_journal_writes_its_file_in_stages_and_the_old_one_stays_whole_until_the_rename(
        writer: tuple[RunWriter, FakeClock]) -> None:
    """At 300 targets the summary is half a megabyte: the journal writes it a part a stage, and until its rename a
    reader (or a run killed then) finds the previous summary whole; nothing of the journal's is left behind."""
    w, _ = writer
    w.journal({"scenario": "raid", "launches": 1})
    big = {"scenario": "raid", "launches": 2, "refusals": ["x" * 1000] * (3 * JOURNAL_WRITE_BYTES // 1000)}
    stages = w.journal_in_stages(big)
    seen = []
    for _ in stages:
        seen.append(json.loads((w.dir / "summary.json").read_text())["launches"])
    assert seen.count(1) >= 3, "the new file is written over several stages, the old one read meanwhile"
    assert json.loads((w.dir / "summary.json").read_text()) == {**big, "complete": False}
    assert sorted(p.name for p in w.dir.iterdir() if p.name.startswith(".")) == []
    w.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=True) | st.text(max_size=5)
    | st.builds(np.int64, st.integers(-1000, 1000)) | st.builds(np.float64, st.floats(-1e6, 1e6)),
    lambda inner: st.lists(inner, max_size=9) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    | st.dictionaries(st.integers(0, 9), inner, max_size=2),
    max_leaves=60)


@given(value=json_values)
@settings(max_examples=300, deadline=None)
def test_the_journal_encodes_a_long_list_anywhere_in_stages_as_json_dumps_does(value: Any) -> None:
    """A long list deep in the summary (a long run's plant holds thousands of rounds) is encoded a part at a time
    (3 items a stage here), and the text is json.dumps' own, whatever the nesting, keys or values."""
    from hil.records import runfolder

    with pytest.MonkeyPatch.context() as m:
        m.setattr(runfolder, "JOURNAL_ITEMS_PER_STAGE", 3)
        text, count = all_stages(runfolder._json_in_stages(value))
    assert text == json.dumps(value, default=runfolder._json_default)
    deepest_long = [v for v in _walk(value) if isinstance(v, list) and len(v) > 3]
    assert count >= sum(-(-len(v) // 3) for v in deepest_long if _reachable(value, v))


def test_the_journal_encodes_the_summary_while_the_run_adds_to_it() -> None:
    """Between the journal's stages the run goes on, adding to dicts and lists the summary holds: each is encoded as
    it was when its encoding started, and the text is JSON."""
    from hil.records import runfolder

    live: dict[str, Any] = {"boards": {f"b{k}": k for k in range(5)}, "rounds": [{"k": k} for k in range(7)],
                            "deep": {"list": list(range(8)), "more": {"x": 1}}}
    with pytest.MonkeyPatch.context() as m:
        m.setattr(runfolder, "JOURNAL_ITEMS_PER_STAGE", 3)
        added = iter(range(1, 1000))

        def the_run_goes_on() -> None:
            k = next(added)
            live["boards"][f"new{k}"] = k
            live["deep"][f"x{k}"] = k
            live["deep"]["list"].append(k)
            live["rounds"].append({"k": 100 + k})

        text, k = all_stages(runfolder._json_in_stages(live), the_run_goes_on)
    decoded = json.loads(text)
    assert k >= 5 and [r["k"] for r in decoded["rounds"]] == list(range(7))
    assert decoded["deep"]["list"][:8] == list(range(8))


def _walk(value: Any) -> list[Any]:
    out = [value]
    for child in value.values() if isinstance(value, dict) else value if isinstance(value, list) else []:
        out += _walk(child)
    return out


def _reachable(value: Any, target: Any) -> bool:
    """Whether target is reached through dicts with str keys only (where the stages go)."""
    if value is target:
        return True
    if isinstance(value, dict) and all(type(k) is str for k in value):
        return any(_reachable(v, target) for v in value.values())
    return False


def test_journal_replaces_the_summary_atomically(writer: tuple[RunWriter, FakeClock],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    w, _ = writer
    first = json.loads((w.dir / "summary.json").read_text())
    assert first["complete"] is False and first["scenario"] == "raid"  # a run killed at once still says so
    w.event(event(3.0))
    w.journal({"scenario": "raid", "launches": 1, "start_host_ns": 5})
    assert json.loads((w.dir / "summary.json").read_text()) == {
        "scenario": "raid", "launches": 1, "start_host_ns": 5, "complete": False}
    assert len(on_disk(w.dir / "events.csv")) == 2, "the journal flushes the records it summarises"
    assert sorted(p.name for p in w.dir.iterdir() if p.name.startswith(".")) == []

    def killed_before_rename(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", killed_before_rename)
    w.journal({"scenario": "raid", "launches": 2})  # a journal that fails is a warning, never the run's end
    assert json.loads((w.dir / "summary.json").read_text())["launches"] == 1  # the old one, whole
    assert "no journal of the summary" in caplog.text
    monkeypatch.undo()
    w.close()


def test_finish_marks_the_summary_complete_and_interrupted(tmp_path: Path) -> None:
    w = RunWriter(tmp_path / "run", Scenario.load(RAID), report=True)
    w.event(event(1.0))
    w.journal({"scenario": "raid", "seed": 3, "time_mode": "real"})
    w.finish({"scenario": "raid", "seed": 3, "time_mode": "real", "signal": "SIGINT"}, StageLatency(),
             interrupted=True)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["complete"] is True and summary["interrupted"] is True
    page = (tmp_path / "run" / "report.html").read_text()
    assert 'id="interrupted"' in page and "interrupted by SIGINT" in page
    w.journal({"late": True})  # after finish() a journal changes nothing
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["complete"] is True


def test_report_renders_a_run_that_only_left_its_journal(writer: tuple[RunWriter, FakeClock]) -> None:
    w, clock = writer
    for k in range(3):
        w.metrics(*metrics_args(float(k)))
        w.event(event(float(k)))
        clock.t += 1.0
    w.journal({"scenario": "raid", "seed": 1, "time_mode": "real", "launches": 3})
    with (w.dir / "gospa.csv").open("a") as f:
        f.write("3.000,12.3")  # a row cut off by the kill: not a number the plot may take
    page = render_report(w.dir).read_text()
    assert 'id="incomplete"' in page and "did not finish" in page
    assert "No data for this plot" not in page.split("GOSPA over time")[1][:200]
    w.close()


@pytest.mark.parametrize("where", ["proc", "file", "under_file", "read_only"])
def test_an_unwritable_run_folder_is_one_config_error(tmp_path: Path, where: str) -> None:
    target = {"proc": Path("/proc/hil-run"), "file": tmp_path / "taken", "under_file": tmp_path / "taken" / "run",
              "read_only": tmp_path / "ro" / "run"}[where]
    (tmp_path / "taken").write_text("a file where the run folder would go")
    (tmp_path / "ro").mkdir(mode=0o555)
    if where == "read_only" and os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder")
    with pytest.raises(ConfigError) as err:
        RunWriter(target, Scenario.load(RAID), report=False)
    message = str(err.value)
    assert message.startswith(f"--out: {target}: ") and "\n" not in message
    assert "not a folder" in message if where == "file" else "cannot write" in message


def test_hil_run_with_an_unwritable_out_prints_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert hil_main(["run", "--time", "virtual", "--duration", "1", "--quiet", "--out", "/proc/hil-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hil: --out: /proc/hil-run: cannot write"), err


# ---- the recording --------------------------------------------------------------------------------------


def small_recording(path: Path) -> bytes:
    with Recorder(path) as rec:
        for k in range(20):
            rec.record("radar", "rx", bytes([48, 0, 8, k, k, k, k, k]), 1_000_000 * k, "asterix")
    return path.read_bytes()


def test_the_recording_says_where_it_was_cut(tmp_path: Path) -> None:
    full = small_recording(tmp_path / "full.pcapng")
    assert recording_end(tmp_path / "full.pcapng") is None
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(full[: len(full) // 2])
    line = recording_end(cut)
    assert line is not None and line.startswith(f"{cut}: recording ends mid-block at byte ")
    n = int(line.rsplit(" ", 1)[1])
    frames = list(read_recording(cut))
    assert 0 < len(frames) < 20 and n <= len(full) // 2
    cut.write_bytes(full[:n])  # everything before the cut is whole blocks
    assert recording_end(cut) is None and len(list(read_recording(cut))) == len(frames)
    cut.write_bytes(full[:20])
    assert recording_end(cut) == f"{cut}: recording ends mid-block at byte 0"
    cut.write_bytes(b"")
    assert recording_end(cut) is None and list(read_recording(cut)) == []


def test_a_flipped_bit_in_a_packet_names_the_file_and_the_block(tmp_path: Path) -> None:
    path = tmp_path / "flip.pcapng"
    blob = bytearray(small_recording(path))
    blob[-40] ^= 0x04  # inside the last packet's bytes: only its CRC-32 can tell
    path.write_bytes(bytes(blob))
    with pytest.raises(RecordingError, match=rf"^{path}: block at byte \d+: .*CRC-32"):
        list(read_recording(path))


# ---- replay of a run that did not finish ----------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("finished")
    summary = run_chain(RunOptions(scenario=Scenario.load(RAID), rig=Rig.load(), seed=1, time_mode="virtual",
                                   out_dir=out, duration_s=25, report=False))
    assert summary["decisions"] >= 3 and summary["complete"] is True
    return out, summary


def replay_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = hil_main(["replay", *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_replay_without_summary_json_is_exact(finished_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    run = Path(shutil.copytree(finished_run[0], tmp_path / "run"))
    (run / "summary.json").unlink()
    result = replay(run)
    assert result.findings == [] and result.decisions == finished_run[1]["decisions"]
    assert result.plots == finished_run[1]["plots"]
    assert any("time origin comes from plots.csv" in n and "(exact)" in n for n in result.notes), result.notes
    assert any("time mode taken as virtual" in n for n in result.notes)


def test_replay_of_a_killed_run_checks_what_its_records_hold(finished_run: tuple[Path, dict[str, Any]],
                                                             tmp_path: Path) -> None:
    """Records stop a flush before the kill, the recording a few frames later: nothing reported as a difference."""
    run = Path(shutil.copytree(finished_run[0], tmp_path / "run"))
    lines = (run / "decisions.jsonl").read_text().splitlines()
    cut_t = json.loads(lines[len(lines) // 2])["t_s"]  # the records' last flush
    (run / "decisions.jsonl").write_text("".join(x + "\n" for x in lines if json.loads(x)["t_s"] <= cut_t))
    for name in ("events.csv", "gospa.csv"):
        rows = list(csv.reader((run / name).open()))
        with (run / name).open("w", newline="") as f:
            csv.writer(f).writerows([rows[0], *(r for r in rows[1:] if float(r[0]) <= cut_t)])
    summary = {**finished_run[1], "complete": False}
    (run / "summary.json").write_text(json.dumps(summary))
    start_ns = summary["start_host_ns"]
    late = [c for c in fire_commands(run / "recording.pcapng") if (c.host_ns - start_ns) / 1e9 > cut_t + 1e-3]
    assert late, "the run fired after its middle decision"
    # the recording goes on to just after the next fire command: its decision died unflushed with the run
    frames = [f for f in read_recording(run / "recording.pcapng") if f.host_ns <= late[0].host_ns + 50_000_000]
    with Recorder(run / "recording.pcapng") as rec:
        for frame in frames:
            rec.record(frame.link_name, frame.direction, frame.payload, frame.host_ns, frame.kind, frame.annotation)
    result = replay(run)
    assert result.findings == [], [f.problem for f in result.findings]
    assert 0 < result.decisions < finished_run[1]["decisions"]
    assert result.unchecked_commands >= 1, "the fire command whose decision died with the run is not a finding"
    assert any("did not finish" in n for n in result.notes)


def test_replay_names_each_broken_recording_in_one_line(finished_run: tuple[Path, dict[str, Any]], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    run = Path(shutil.copytree(finished_run[0], tmp_path / "run"))
    rec = run / "recording.pcapng"
    full = rec.read_bytes()

    rec.write_bytes(b"")
    status, out, err = replay_line([str(rec)], capsys)
    assert status == 2 and err.strip() == f"hil: {rec}: empty file (0 bytes): nothing was recorded (the run died " \
                                          "before its first frame?)"
    rec.write_bytes(full[:20])
    status, out, err = replay_line([str(rec)], capsys)
    assert status == 2 and err.strip() == f"hil: {rec}: recording ends mid-block at byte 0: not even its section " \
                                          "header (20 bytes), nothing to replay"
    rec.write_bytes(full[: len(full) // 2])
    status, out, err = replay_line([str(rec)], capsys)
    assert status == 0, out + err  # the half that is there reproduces the run
    line = next(x for x in out.splitlines() if "recording ends mid-block" in x)
    n = int(line.split("mid-block at byte ")[1].split()[0])
    assert n <= len(full) // 2 and "decisions after the recording's last frame" in out and err == ""
    flipped = bytearray(full)
    payload = next(f.payload for f in read_recording(run / "recording.pcapng") if f.kind == "asterix")
    flipped[full.index(payload) + 5] ^= 0x10  # ASTERIX has no check of its own: the packet's CRC-32 catches it
    rec.write_bytes(bytes(flipped))
    status, out, err = replay_line([str(rec)], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and err.startswith(f"hil: {rec}: ")


# ---- a real run killed with SIGKILL ---------------------------------------------------------------------


def rows_up_to_the_last_whole_one(path: Path) -> list[list[str]]:
    text = path.read_text()
    assert text, f"{path.name} is empty"
    rows = list(csv.reader(text[: text.rfind("\n") + 1].splitlines()))
    header = rows[0]
    assert all(len(r) == len(header) for r in rows[1:]), path.name
    return rows[1:]


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`hil run --time real` on the mock rig, SIGKILLed (the whole process group) after a launch or 8 s of its
    loop, and after the runtime's first journal (at most 12 s)."""
    out = tmp_path_factory.mktemp("killed") / "run"
    log = out.parent / "stderr.txt"
    with log.open("wb") as stderr:
        child = subprocess.Popen([sys.executable, "-m", "hil", "run", "--time", "real", "--duration", "20",
                                  "--quiet", "--out", str(out)], cwd=REPO, start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 60.0  # bring-up included
        started = None
        while time.monotonic() < deadline and child.poll() is None:
            if started is None and (out / "gospa.csv").is_file() and len(on_disk(out / "gospa.csv")) > 1:
                started = time.monotonic()  # the loop is running: give it about 8 s or a launch
            events = out / "events.csv"
            launched = events.is_file() and ",launch," in events.read_text()
            # the runtime journals every few seconds: wait for one with plots in it (bounded), so the journal is more
            # than the opening summary (which has start_host_ns already: waiting for that raced the first journal)
            journalled = bool(started) and json.loads((out / "summary.json").read_text()).get("plots", 0) > 0
            if started and (time.monotonic() - started > 8.0 or launched) and \
                    (journalled or time.monotonic() - started > 12.0):
                break
            time.sleep(0.2)
        time.sleep(1.5)  # past a flush and a journal after what we saw
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    err = log.read_text(errors="replace")
    assert child.returncode == -signal.SIGKILL, f"the run ended by itself ({child.returncode}): {err[-2000:]}"
    return out


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_sigkilled_run_leaves_readable_records(killed_run: Path) -> None:
    run = killed_run
    gospa = rows_up_to_the_last_whole_one(run / "gospa.csv")
    assert len(gospa) >= 3 and all(float(r[1]) >= 0 for r in gospa)
    assert rows_up_to_the_last_whole_one(run / "truth.csv")
    for name in ("events.csv", "tracks.csv", "plots.csv"):
        rows = rows_up_to_the_last_whole_one(run / name)
        assert all(float(r[0]) >= -1.0 for r in rows), name
    assert rows_up_to_the_last_whole_one(run / "tracks.csv"), "confirmed tracks within the first seconds"
    decisions = (run / "decisions.jsonl").read_text()
    assert all(isinstance(json.loads(line), dict) for line in decisions.splitlines())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["complete"] is False
    assert not (run / "report.html").exists() and not (run / "latency.json").exists()
    cut = recording_end(run / "recording.pcapng")  # a kill between two writes leaves whole blocks: no cut
    assert cut is None or "recording ends mid-block" in cut
    assert len(list(read_recording(run / "recording.pcapng"))) > 100


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_hil_replay_works_on_the_killed_run(killed_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = replay_line([str(killed_run / "recording.pcapng")], capsys)
    assert err == "" and status in (0, 1), err
    assert out.startswith("replayed ") and "did not finish" in out
    summary = json.loads((killed_run / "summary.json").read_text())
    if "start_host_ns" not in summary:
        assert "time origin comes from plots.csv" in out
    assert status == 0, out


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_killed_runs_journal_holds_the_summary_so_far(killed_run: Path) -> None:
    """The runtime journals every few seconds: a killed run's summary.json is more than the opening one."""
    summary = json.loads((killed_run / "summary.json").read_text())
    assert summary["complete"] is False and summary["time_mode"] == "real"
    assert isinstance(summary["start_host_ns"], int) and summary["plots"] > 0
