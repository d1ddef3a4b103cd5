"""A run's life as a bench engineer sees it: launchers armed after their heartbeats run, re-armed by the rig's
policy after a watchdog trip, a run that always ends, signals that end it cleanly, and an exit status that tells
the truth about the rig. Real-time runs here are short and bounded; the machine may be loaded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.drivers.faults import LinkFault
from hil.rig import Rig
from hil.runtime import STAGED_AFTER_NS, STAGED_SKIPS_MAX, RunOptions, StagedWork, run_chain, staged_skips_after
from hil.scenario import Scenario
from tests.helpers import MOCK_RIG, RAID


def hil(*args: str, cwd: Path | None = None) -> list[str]:
    return [sys.executable, "-m", "hil", *args]


def events(folder: Path) -> list[list[str]]:
    return [line.split(",") for line in (folder / "events.csv").read_text().splitlines()[1:]]


def rig_with(tmp_path: Path, **fields: Any) -> Path:
    text = MOCK_RIG.read_text()
    for key, value in fields.items():
        text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{key} ="))
        text = f"{key} = {json.dumps(value)}\n" + text
    path = tmp_path / "rig.toml"
    path.write_text(text)
    return path


def test_a_watchdog_trip_is_seen_and_the_launcher_re_armed_then_fires_again(tmp_path: Path) -> None:
    summary = run_chain(RunOptions(
        scenario=Scenario.load(RAID), rig=Rig.load(MOCK_RIG), seed=1, time_mode="virtual", out_dir=tmp_path,
        duration_s=45.0, record=False, report=False, faults=(LinkFault.parse("launcher-north:silent@6+2"),)))
    rows = events(tmp_path)
    trip = [float(r[0]) for r in rows if r[1] == "watchdog_trip" and r[4] == "launcher-north"]
    rearm = [float(r[0]) for r in rows if r[1] == "rearm" and r[4] == "launcher-north"]
    assert trip and rearm, [r for r in rows if r[4] == "launcher-north"][:20]
    # the hold-off: at least rearm_holdoff_s of healthy link after the board answers again (at 8 s)
    assert rearm[0] >= 8.0 + Rig.load(MOCK_RIG).rearm_holdoff_s - 0.2
    north_fires = [float(r[0]) for r in rows if r[1] == "launch" and r[4] == "launcher-north"]
    assert not any(6.0 <= t < rearm[0] for t in north_fires), "a fire while the launcher was SAFE or held off"
    assert any(t > rearm[0] for t in north_fires), "no launch after the re-arm"
    health = summary["launcher_health"]["launcher-north"]
    assert health["watchdog_trips"] >= 1 and health["rearms"] >= 1 and health["armed_at_end"]
    assert summary["rig_ok"], summary["rig_problems"]


def test_a_launcher_safe_for_much_of_the_run_is_a_rig_problem_even_re_armed(tmp_path: Path) -> None:
    # silent from 6 s to 24 s: tripped, then re-armed, armed at the end; but it was SAFE for about half the run
    summary = run_chain(RunOptions(
        scenario=Scenario.load(RAID), rig=Rig.load(MOCK_RIG), seed=1, time_mode="virtual", out_dir=tmp_path,
        duration_s=40.0, record=False, report=False, faults=(LinkFault.parse("launcher-north:silent@6+18"),)))
    health = summary["launcher_health"]["launcher-north"]
    assert health["armed_at_end"] and health["rearms"] >= 1 and health["safe_s"] > 0.25 * 40.0
    assert not summary["rig_ok"]
    [problem] = summary["rig_problems"]
    assert problem.startswith(f"launcher launcher-north was SAFE for {health['safe_s']:.1f} s of the ")
    assert "after it first armed (1 watchdog trips)" in problem


def test_rearm_never_leaves_the_launcher_safe_and_the_run_exits_3(tmp_path: Path) -> None:
    rig = rig_with(tmp_path, rearm="never")
    out = tmp_path / "run"
    r = subprocess.run(hil("run", "--time", "virtual", "--rig", str(rig), "--duration", "20", "--quiet",
                           "--no-record", "--out", str(out), "--fault", "launcher-south:silent@5+2"),
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "RIG FAILED: launcher launcher-south was SAFE" in r.stdout
    # the rig's failure comes first, and no PASS stands over it
    lines = r.stdout.splitlines()
    verdict = next(i for i, line in enumerate(lines) if line.startswith("VERDICT"))
    assert lines[verdict - 1].startswith("RIG FAILED") and lines[verdict].startswith("VERDICT: NONE: the rig failed")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["launcher_health"]["launcher-south"]["rearms"] == 0
    assert not any(row[1] == "launch" and row[4] == "launcher-south" and float(row[0]) > 5.0 for row in events(out))


def test_a_launcher_that_cannot_be_reached_fails_bring_up_in_one_line_exit_3(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text('name = "dead"\n[defaults]\nradar_board = "mock"\n'
                   '[[launcher]]\nname = "launcher-north"\nboard = "tcp"\naddress = "127.0.0.1:9"\n'
                   '[[launcher]]\nname = "launcher-south"\nboard = "tcp"\naddress = "127.0.0.1:9"\n')
    r = subprocess.run(hil("run", "--time", "real", "--rig", str(rig), "--duration", "5", "--quiet", "--no-record",
                           "--out", str(tmp_path / "run")), capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "hil: the rig failed: launcher-north did not come up" in r.stderr


def test_sigterm_ends_a_virtual_run_cleanly_with_143(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(hil("run", "--time", "virtual", "--duration", "3000", "--quiet", "--out", str(out)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out / "events.csv").exists():
            time.sleep(0.2)
        time.sleep(2.0)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, stdout + stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["signal"] == "SIGTERM"
    assert "INTERRUPTED by SIGTERM" in stdout and "Traceback" not in stderr
    assert (out / "report.html").exists()


@pytest.mark.slow
def test_sigint_ends_a_real_time_run_cleanly_with_130_and_its_records_replay(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(hil("run", "--time", "real", "--duration", "60", "--quiet", "--out", str(out)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if (out / "events.csv").exists() and ",launch," in (out / "events.csv").read_text():
                break
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
    assert proc.returncode == 130, stdout + stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["launches"] >= 1
    assert (out / "report.html").exists()
    replay = subprocess.run(hil("replay", str(out / "recording.pcapng")), capture_output=True, text=True, timeout=240)
    assert replay.returncode in (0, 1) and "Traceback" not in replay.stderr, replay.stderr[-2000:]


@pytest.mark.slow
def test_launchers_arm_fire_and_rearm_on_a_starved_machine(tmp_path: Path) -> None:
    """Busy processes on every core through bring-up and the run, no real-time options: the heartbeats run before
    arming and keep their own period, so the launchers arm and fire; a watchdog trip is re-armed."""
    burn = "import time\nend = time.monotonic() + 120\nwhile time.monotonic() < end: pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(os.cpu_count() or 2)]
    try:
        out = tmp_path / "run"
        r = subprocess.run(hil("run", "--time", "real", "--duration", "25", "--quiet", "--no-record", "--out",
                               str(out)), capture_output=True, text=True, timeout=200)
    finally:
        for hog in hogs:
            hog.kill()
    summary = json.loads((out / "summary.json").read_text())
    health = summary["launcher_health"]
    assert all(h["armed_once"] for h in health.values()), health
    assert summary["launches"] >= 1, r.stdout
    for name, h in health.items():
        assert h["watchdog_trips"] == 0 or h["rearms"] >= 1 or not h["armed_at_end"], (name, h)
    assert r.returncode in (0, 3), r.stdout + r.stderr[-2000:]


def test_staged_work_runs_one_stage_past_its_time_and_every_stage_before_it() -> None:
    done: list[int] = []

    def stages() -> Iterator[None]:
        for k in range(5):
            done.append(k)
            yield

    work = StagedWork()
    work.start(stages())
    work.step(until_ns=0)  # its time is up already: one stage, never none
    assert done == [0]
    work.step(until_ns=time.monotonic_ns() + 3_600_000_000_000)  # time for all of them
    assert done == [0, 1, 2, 3, 4]
    work.start(stages())
    work.start(stages())  # new work finishes the old first
    assert done == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]


def test_an_iteration_that_lost_its_cpu_is_not_put_down_to_compute(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Real time: an iteration whose plant step waits 30 ms without the CPU (as when another task or the hypervisor
    takes it) overruns, but the OS's doing; one that computes 8 ms on the CPU is compute's."""
    from hil.runtime import Chain

    plant = Chain._plant
    calls = [0]

    def stalling_plant(self: Chain, now_ns: int) -> None:
        calls[0] += 1
        # about a second into the run (every iteration is judged, whether its tick or radar bytes woke it)
        if calls[0] == 200:
            time.sleep(0.030)  # the thread sleeps: its CPU time stands still
        elif calls[0] == 260:
            cpu_end = time.thread_time_ns() + 8_000_000
            while time.thread_time_ns() < cpu_end:
                pass
        plant(self, now_ns)

    monkeypatch.setattr(Chain, "_plant", stalling_plant)
    summary = run_chain(RunOptions(
        scenario=Scenario.load(RAID), rig=Rig.load(MOCK_RIG), seed=1, time_mode="real", out_dir=tmp_path,
        duration_s=4.0, record=False, report=False))
    assert calls[0] > 260, "the run ended before the stalls"
    misses = summary["deadline_misses"]
    assert misses["os_in_compute"] >= 1, misses  # the stall: over the budget in wall time, not in CPU time
    assert misses["compute"] >= 1, misses  # the 8 ms computation
    assert misses["iterations"] > misses["ticks"] > 0  # radar bytes woke some: judged too
    assert misses["os"] >= misses["os_in_compute"]


def test_what_the_loop_calls_first_loads_no_module_in_a_loop_iteration() -> None:
    """numpy imports numpy.ma on np.unique's first call, and its bit generators on np.random's first use (8-11 ms
    each here): the runtime loads them, so the first GOSPA with ambiguous pairs (np.unique) or the first kill draw
    (np.random) is not a loop overrun."""
    probe = ("import sys, numpy as np\n"
             "import hil.runtime\n"
             "before = set(sys.modules)\n"
             "np.unique(np.array([2, 1, 2])); np.random.default_rng((1, 2)).random()\n"
             "print(sorted(set(sys.modules) - before))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_heavy_iteration_leaves_the_staged_work_to_a_later_one_but_never_forever() -> None:
    heavy, light = STAGED_AFTER_NS + 1, STAGED_AFTER_NS // 4
    assert staged_skips_after(light, 0) == 0  # runs its stages
    skips, ran = 0, []
    for k in range(3 * STAGED_SKIPS_MAX):
        skips = staged_skips_after(heavy, skips)
        if not skips:
            ran.append(k)
    assert ran == [STAGED_SKIPS_MAX, 2 * STAGED_SKIPS_MAX + 1]  # heavy all along: one in STAGED_SKIPS_MAX + 1 runs them
    assert staged_skips_after(light, 7) == 0  # a light one after heavy ones runs them
