"""An independent Modbus master (mbpoll, libmodbus) reads and writes the launcher over its RTU pty and TCP port."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from hil.drivers.registers import (
    ARM_KEY,
    HOLDING_COUNT,
    IDENT_MAGIC,
    REGMAP_VERSION,
    Holding,
    Input,
    Reject,
    State,
    StatusBit,
)
from hil.procutil import Child
from tests.helpers import require_tool

pytestmark = [pytest.mark.tools, pytest.mark.timeout(60)]


@pytest.fixture(params=["rtu", "tcp"])
def mbpoll(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """The mbpoll command line (up to the register options) for a fresh launcher on each transport."""
    exe = require_tool("mbpoll", "mbpoll")
    children: list[Child] = []
    try:
        if request.param == "rtu":
            cable = Child.python("hil.plant.nullmodem", [], name="cable")
            children.append(cable)
            children.append(Child.python("hil.emulators.launcher", ["--rtu", cable.info["a"]], name="launcher"))
            # mbpoll defaults to even parity: the launcher is 8N1
            yield [exe, "-m", "rtu", "-a", "1", "-b", "115200", "-P", "none", "-o", "1", "-1", cable.info["b"]]
        else:
            board = Child.python("hil.emulators.launcher", ["--tcp", "127.0.0.1:0"], name="launcher")
            children.append(board)
            host, port = board.info["tcp"].rsplit(":", 1)
            yield [exe, "-m", "tcp", "-a", "1", "-p", port, "-o", "1", "-1", host]
    finally:
        for child in reversed(children):
            child.stop()


def _split(cmd: list[str]) -> tuple[list[str], str]:
    return cmd[:-1], cmd[-1]


def read(cmd: list[str], table: int, start: int, count: int) -> list[int]:
    opts, target = _split(cmd)
    out = subprocess.run([*opts, "-t", str(table), "-0", "-r", str(start), "-c", str(count), target],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stdout + out.stderr
    values = {int(a): int(v) for a, v in re.findall(r"^\[(\d+)\]:\s+(\d+)", out.stdout, re.M)}
    return [values[a] for a in range(start, start + count)]


def write(cmd: list[str], start: int, *values: int) -> subprocess.CompletedProcess[str]:
    opts, target = _split(cmd)
    return subprocess.run([*opts, "-t", "4", "-0", "-r", str(start), target, *map(str, values)],
                          capture_output=True, text=True, timeout=20)


def test_mbpoll_reads_identity_and_defaults(mbpoll: list[str]) -> None:
    ident = read(mbpoll, 3, Input.IDENT_MAGIC, 6)
    assert ident[:2] == [IDENT_MAGIC, REGMAP_VERSION]
    assert ident[Input.STATE] == State.SAFE and ident[Input.ROUNDS_REMAINING] == 4
    holding = read(mbpoll, 4, 0, HOLDING_COUNT)
    assert (holding[Holding.WATCHDOG_MS], holding[Holding.RELOAD_MS], holding[Holding.ROUNDS_LOADED]) == (500, 2000, 4)


def test_mbpoll_writes_arm_and_fire(mbpoll: list[str]) -> None:
    assert write(mbpoll, Holding.WATCHDOG_MS, 10000).returncode == 0
    assert read(mbpoll, 4, Holding.WATCHDOG_MS, 1) == [10000]
    assert write(mbpoll, Holding.ARM_KEY, ARM_KEY).returncode == 0
    status = read(mbpoll, 3, Input.STATE, 3)
    assert status[0] == State.ARMED and status[1] == StatusBit.ARMED | StatusBit.READY
    # the worked example of docs/PROTOCOLS.md §4, its check word computed by hand there: one FC16 write of
    # 3..9, track 12, azimuth 180.00 deg, elevation 5.00 deg, 8000 m, 12.50 s to go, seq 3, check 16083
    assert write(mbpoll, Holding.FIRE_TRACK, 12, 18000, 500, 8000, 1250, 3, 16083).returncode == 0
    after = read(mbpoll, 3, Input.ROUNDS_REMAINING, 4)
    assert after == [3, 3, 1, 12]  # rounds, LAST_FIRE_SEQ, LAUNCH_COUNT, LAST_FIRE_TRACK
    assert read(mbpoll, 3, Input.LAST_FIRE_AZ_CDEG, 4) == [18000, 500, 8000, 1250]


def test_mbpoll_fire_with_a_wrong_check_or_on_fire_seq_alone_is_refused(mbpoll: list[str]) -> None:
    assert write(mbpoll, Holding.ARM_KEY, ARM_KEY).returncode == 0
    assert write(mbpoll, Holding.FIRE_TRACK, 12, 18000, 500, 8000, 1250, 4, 16083).returncode == 0  # seq 4: 64658
    assert read(mbpoll, 3, Input.LAST_REJECT, 2) == [Reject.BAD_CHECK, 1]
    assert write(mbpoll, Holding.FIRE_SEQ, 5).returncode == 0  # FC 6 on FIRE_SEQ: not a whole fire block
    assert read(mbpoll, 3, Input.LAST_REJECT, 2) == [Reject.PARTIAL_FIRE, 2]
    assert read(mbpoll, 3, Input.LAUNCH_COUNT, 1) == [0]
    assert read(mbpoll, 3, Input.BAD_CHECK_COUNT, 1) == [2]


def test_mbpoll_sees_the_range_exception(mbpoll: list[str]) -> None:
    out = write(mbpoll, Holding.WATCHDOG_MS, 20)
    assert out.returncode != 0 and "Illegal data value" in out.stdout + out.stderr
    assert read(mbpoll, 4, Holding.WATCHDOG_MS, 1) == [500]
