"""The hil command as a user meets it: rig check on the mock rig, and one clear line for a bad file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import RAID, REPO, require_tool


def hil(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hil", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_rig_check_passes_on_the_mock_rig_with_a_table() -> None:
    r = hil("rig", "check")
    assert r.returncode == 0, r.stdout + r.stderr
    for board in ("radar-west", "radar-east", "launcher-north", "launcher-south"):
        assert board in r.stdout
    assert "hil-radar-py" in r.stdout and "hil-launcher-py" in r.stdout
    assert "FAIL" not in r.stdout and "SAFE" in r.stdout


def test_rig_check_fails_with_a_nonzero_exit_when_a_board_is_missing(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text('[defaults]\nradar_board = "mock"\n[[launcher]]\nname = "launcher-north"\nboard = "serial"\n'
                   'port = "/dev/serial/by-id/usb-no-such-board"\n[[launcher]]\nname = "launcher-south"\n'
                   'board = "mock"\n')
    r = hil("rig", "check", "--rig", str(rig), "--timeout", "0.5")
    assert r.returncode == 1
    assert "FAIL" in r.stdout and "launcher-north" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_a_typo_in_a_rig_file_is_one_line_naming_the_field(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text('[[radar]]\nname = "radar-west"\nbord = "mock"\n')
    r = hil("run", "--rig", str(rig), "--time", "virtual")
    assert r.returncode == 2
    assert "bord" in r.stderr and str(rig) in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_bad_cpu_list_is_a_usage_error_naming_its_option() -> None:
    for command, option, bad in (("run", "--cpus", "abc"), ("bench", "--board-cpus", "1-"), ("plant", "--cpus", "abc"),
                                 ("host", "--board-cpus", "1-")):
        r = hil(command, option, bad)
        assert r.returncode == 2, (command, r.stderr)
        assert "Traceback" not in r.stderr
        last = r.stderr.strip().splitlines()[-1]
        assert last.endswith(f"argument {option}: {bad!r} is not a CPU list such as 1 or 0,2 or 0-3"), last


def test_impossible_scenario_values_are_one_line(tmp_path: Path) -> None:
    text = RAID.read_text().replace("pd = 0.9", "pd = 1.9", 1)
    scenario = tmp_path / "bad.toml"
    scenario.write_text(text)
    r = hil("run", "--scenario", str(scenario), "--time", "virtual")
    assert r.returncode == 2 and "pd" in r.stderr and "Traceback" not in r.stderr


def test_help_answers_without_loading_the_numeric_stack() -> None:
    # what `hil --help` imports is what it costs: scipy and matplotlib alone take about a second to load
    code = ("import sys\nfrom hil.commands.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'matplotlib', 'numpy'}))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "LOADED []" in r.stdout
    for command in ("run", "bench", "replay", "track", "firmware", "schema", "rig"):
        assert command in r.stdout


def test_version_names_the_installed_package() -> None:
    from importlib.metadata import version

    r = hil("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"hil {version('hil')}"


def test_options_after_the_command_and_a_summary_that_reads(tmp_path: Path) -> None:
    r = hil("run", "--time", "virtual", "--duration", "4", "--no-record", "--out", str(tmp_path / "run"), "-v")
    assert r.returncode == 0, r.stderr
    assert " INFO " in r.stderr  # -v after the command took effect
    status = [line for line in r.stderr.splitlines() if line.startswith("t ")]
    assert status and all("confirmed tracks" in line and "kills" in line for line in status)
    assert not any("host p99" in line for line in status)  # virtual time: the host's steps take no time
    table = r.stdout
    assert not any(line.startswith("host_total") for line in table.splitlines()) and " µs" in table
    for word in ("killed", "leaked", "survived", "not_launched"):
        assert f"        {word}" in table or f"result: {word}" in table  # every outcome word defined
    assert "issue" not in (table + r.stderr).lower()
    assert hil("run", "--no-such-option").returncode == 2


SUMMARY = {
    "scenario": "raid", "seed": 3, "time_mode": "real", "rig": "mock", "duration_s": 60.0,
    "latency_us": {
        "decode": {"count": 5000, "p50": 107.007, "p90": 156.671, "p99": 4845.567, "p99_9": 6000.0, "max": 17236.0},
        "host_total": {"count": 12, "p50": 900.0, "p90": 1200.0, "p99": 10527.0, "p99_9": 10527.0, "max": 10527.0},
        "sensor_to_shooter": {"count": 12, "p50": 108855.3, "p90": 666894.3, "p99": 874512.4, "p99_9": 874512.4,
                              "max": 874512.4, "uncertainty_us": 1511.2},
    },
    "floor_us": {"count": 60000, "p50": 62.0, "p90": 80.0, "p99": 310.0, "p99_9": 2100.0, "max": 18020.0},
    "plots": 3250, "tracks": 2392, "confirmed_tracks": 10, "gospa_mean_m": 647.14, "launches": 2,
    "friendly_engagements": 0, "deadline_misses": {"iterations": 12000, "overruns": 35, "compute": 5, "os": 30,
                                                   "period_us": 5000.0, "lateness_p99_us": 812.4,
                                                   "lateness_max_us": 17236.0},
    "engagements": [
        {"target": "bomber-1", "kind": "aircraft", "allegiance": "hostile", "engaged": True, "first_launch_s": 2.871,
         "launcher": "launcher-north", "shots": 1, "result": "killed", "refusal_reasons": [], "tracked": True},
        {"target": "cruise-1", "kind": "missile", "allegiance": "hostile", "engaged": True, "first_launch_s": 4.3,
         "launcher": "launcher-south", "shots": 1, "result": "leaked", "refusal_reasons": [], "tracked": True},
        {"target": "blue-1", "kind": "aircraft", "allegiance": "friendly", "engaged": False, "first_launch_s": None,
         "launcher": None, "shots": 0, "result": "survived", "refusal_reasons": ["FRIENDLY"], "tracked": True},
    ],
}


def test_summary_numbers_carry_units_and_no_percentile_beyond_the_samples() -> None:
    from hil.commands.run import format_summary

    text = format_summary(SUMMARY)
    decode = next(line for line in text.splitlines() if line.startswith("decode"))
    assert decode.split()[1:] == ["5,000", "107", "µs", "157", "µs", "4.85", "ms", "–", "17.2", "ms"]
    s2s = next(line for line in text.splitlines() if line.startswith("sensor_to_shooter"))
    assert "875 ms" in s2s and "clock sync ± 1.51 ms" in s2s and "874512" not in s2s
    host = next(line for line in text.splitlines() if line.startswith("host_total"))
    assert host.split()[2:6] == ["–"] * 4 and host.endswith("10.5 ms")  # a p99 of 12 samples means nothing
    assert "machine floor" in text and "18.0 ms" in text
    assert "kills 1  leaks 1" in text and "confirmed tracks 10 (track numbers opened 2,392)" in text
    assert "over the 5.00 ms period" in text and "p99 812 µs, max 17.2 ms" in text
    assert "blue-1" in text and "friendly" in text
    for bad in ("4845.567", "± 1511", "e+0"):
        assert bad not in text
    # where the loop and the boards ran, said also when nothing was pinned or raised; never in virtual time
    assert "real time: the loop and the emulated boards share every CPU under the default scheduler" in text
    pinned = format_summary({**SUMMARY, "realtime": [["cpus", True, "pinned to CPUs [1]"]]})
    assert "real time, loop CPUs: pinned to CPUs [1]" in pinned and "share every CPU" not in pinned
    assert "real time" not in format_summary({**SUMMARY, "time_mode": "virtual"})


def test_status_line_shows_host_latency_only_in_real_time() -> None:
    import io

    from hil.commands.run import _status_printer

    sample = {"t_s": 12.34, "tracks": 2392, "confirmed": 9, "launches": 3, "kills": 1, "host_p99_us": 1203.0}
    for virtual, expect in ((True, None), (False, "host p99 1.20 ms")):
        stream = io.StringIO()
        _status_printer(stream, virtual=virtual)(sample)
        line = stream.getvalue()
        assert "confirmed tracks   9" in line and "launches  3" in line and "kills  1" in line
        assert "2392" not in line  # every track number ever used is not a live count
        assert (expect in line) if expect else "host p99" not in line


def test_firmware_sim_says_how_to_talk_to_the_board_and_its_commands_work(tmp_path: Path) -> None:
    require_tool("avr-gcc", "gcc-avr avr-libc")
    require_tool("simavr", "simavr libsimavr-dev libelf-dev")
    mbpoll = require_tool("mbpoll", "mbpoll")
    child = subprocess.Popen([sys.executable, "-m", "hil", "firmware", "sim", "launcher"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        lines: list[str] = []
        while not any("hil run --rig" in line for line in lines) and len(lines) < 20:
            line = child.stdout.readline()
            assert line, "hil firmware sim ended early: " + (child.stderr.read() if child.stderr else "")
            lines.append(line.strip())
        text = "\n".join(lines)
        assert "Modbus RTU" in text and "device id 1" in text and "115200 8N1" in text
        poll = next(line for line in lines if line.startswith("mbpoll "))
        assert poll.split()[-1].startswith("/dev/")  # the board's pty
        read = subprocess.run([mbpoll, *poll.split()[1:]], capture_output=True, text=True, timeout=30)
        assert read.returncode == 0 and "[0]: \t18508" in read.stdout, read.stdout + read.stderr  # "HL", the magic
        check = next(line for line in lines if line.startswith("hil rig check --rig "))
        rig_file = Path(check.split()[-1])
        r = hil(*check.split()[1:], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "hil-launcher-avr" in r.stdout  # the simulated firmware answered as launcher-north
    finally:
        child.terminate()
        child.wait(timeout=30)
    assert not rig_file.exists()  # the rig file goes with the simulation


def test_bench_writes_only_where_out_says_and_lists_it(tmp_path: Path) -> None:
    load = ["--duration", "2", "--targets", "3", "--launchers", "1", "--no-cyclictest", "--no-modbus-baseline"]

    def bench(*out: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", "hil", "bench", *load, *out], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return r

    r = bench("--out", "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["results.json", "targets-3"]
    assert "summary.json" in {p.name for p in (tmp_path / "b" / "targets-3").iterdir()}
    listed = r.stdout[r.stdout.index("wrote:"):]
    assert "b/results.json" in listed and "b/targets-3/" in listed
    r = bench("--out", "only.json")  # a results file alone: nothing beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "only.json"]
    assert "only.json" in r.stdout[r.stdout.index("wrote:"):]
