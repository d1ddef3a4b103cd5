"""The simavr harness as a process: its own pty per board, clean exit on SIGTERM, gone when its parent dies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.plant.firmware import SimavrBoard, build_firmware, build_harness
from tests.helpers import require_tool

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def tools() -> None:
    require_tool("avr-gcc", "gcc-avr avr-libc")
    require_tool("simavr", "simavr libsimavr-dev libelf-dev")


def gone(pid: int, within_s: float = 10.0) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_boards_run_side_by_side_each_on_its_own_pty() -> None:
    elf = build_firmware("launcher")
    with SimavrBoard(elf) as a, SimavrBoard(elf) as b:
        assert a.pty != b.pty and os.path.exists(a.pty) and os.path.exists(b.pty)
        assert a.alive() and b.alive()
        feeds = (a.launch_events(), b.launch_events())  # each board's launches on its own harness's stdout
        assert None not in feeds and feeds[0] is not feeds[1]
    assert not a.alive() and not b.alive()
    # SIGTERM is a clean stop: the harness reports its run (simulated and wall time, bytes) on the way out
    assert "hil-simavr: sim" in a.stats and "0 slips" in a.stats


def test_the_harness_dies_with_its_parent(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from hil.plant.firmware import SimavrBoard, build_firmware\n"
        "b = SimavrBoard(build_firmware('radar'))\n"
        "b.start()\n"
        "print(b.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert parent.stdout is not None
    harness_pid = int(parent.stdout.readline())
    assert not gone(harness_pid, within_s=0.2)
    parent.kill()  # no chance to clean up: PR_SET_PDEATHSIG must do it
    parent.wait()
    assert gone(harness_pid)
    for stream in (parent.stdin, parent.stdout):
        if stream:
            stream.close()


def test_a_missing_firmware_image_is_a_clear_error(tmp_path: Path) -> None:
    harness = build_harness()
    out = subprocess.run([str(harness), str(tmp_path / "nope.elf")], capture_output=True, text=True, timeout=10)
    assert out.returncode == 2 and "cannot load" in out.stderr and out.stdout == ""


def test_hil_firmware_commands() -> None:
    built = subprocess.run([sys.executable, "-m", "hil", "firmware", "build"], capture_output=True, text=True,
                           timeout=120)
    assert built.returncode == 0, built.stderr
    assert "hil-radar.elf: flash" in built.stdout and "hil-launcher.elf: flash" in built.stdout

    sim = subprocess.Popen([sys.executable, "-m", "hil", "firmware", "sim", "launcher"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    assert sim.stdout is not None and sim.stderr is not None
    line = sim.stdout.readline()
    pty = line.split(" on ")[1].split(" ")[0]
    mbpoll = require_tool("mbpoll", "mbpoll")
    regs = subprocess.run([mbpoll, "-m", "rtu", "-a", "1", "-b", "115200", "-P", "none", "-t", "3", "-0", "-r", "0",
                           "-c", "1", "-1", pty], capture_output=True, text=True, timeout=30)
    assert "18508" in regs.stdout  # IDENT_MAGIC "HL"
    sim.send_signal(signal.SIGTERM)
    assert sim.wait(10) == 0
    assert "hil-simavr: sim" in sim.stderr.read()
    sim.stdout.close()
    sim.stderr.close()


def test_announcement_is_one_json_line() -> None:
    harness = build_harness()
    proc = subprocess.Popen([str(harness), str(build_firmware("radar"))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    assert info["pty"].startswith("/dev/pts/") and info["mcu"] == "atmega328p" and info["f_cpu"] == 16_000_000
    assert info["launch_feed"] is False  # the radar firmware keeps no launch record: stdout ends here
    proc.terminate()
    assert proc.wait(10) == 0
    assert proc.stdout.read() == b""  # simavr's own chatter never reaches stdout
    proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
