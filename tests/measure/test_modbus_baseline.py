"""The libmodbus baseline: the C client builds, reads the launcher's registers, cannot fire; the comparison runs."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.drivers.launcher_link import LauncherLink
from hil.drivers.registers import IDENT_MAGIC, REGMAP_VERSION, Input, Reject, State, fire_block, fire_check
from hil.errors import LinkError
from hil.measure import modbus_baseline
from hil.measure.modbus_baseline import BaselineUnavailable, build_client, measure_round_trips, run_client
from hil.measure.realtime import split_cpus
from hil.procutil import Child
from tests.helpers import require_tool

pytestmark = pytest.mark.timeout(120)


def require_libmodbus() -> None:
    require_tool("gcc", "gcc")
    if not modbus_baseline.HEADER.exists():
        message = f"{modbus_baseline.HEADER} not found: apt-get install {modbus_baseline.PACKAGE}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_libmodbus()
    return build_client(tmp_path_factory.mktemp("hil-cache"))


def _serve(transport: str, server: list[str]) -> Iterator[str]:
    """Start a server (argv without where it listens) behind a fresh cable or on loopback; yield its URL."""
    children: list[Child] = []
    try:
        if transport == "rtu":
            cable = Child.python("hil.plant.nullmodem", [], name="cable")
            children.append(cable)
            children.append(Child([*server, "--rtu", cable.info["a"]], name="server"))
            yield cable.info["b"]
        else:
            board = Child([*server, "--tcp", "127.0.0.1:0"], name="server")
            children.append(board)
            yield "tcp://" + board.info["tcp"]
    finally:
        for child in reversed(children):
            child.stop()


@pytest.fixture(params=["rtu", "tcp"])
def launcher(request: pytest.FixtureRequest) -> Iterator[str]:
    emulator = [sys.executable, "-m", "hil.emulators.launcher", *modbus_baseline.EMULATOR_ARGS]
    yield from _serve(request.param, emulator)


def test_client_reads_the_launcher_status(exe: Path, launcher: str) -> None:
    run = run_client(launcher, n=3, exe=exe)
    assert run.library.startswith("libmodbus ")
    assert len(run.status_regs) == 24
    assert run.status_regs[Input.IDENT_MAGIC] == IDENT_MAGIC == 0x484C
    assert run.status_regs[Input.REGMAP_VERSION] == REGMAP_VERSION
    assert run.status_regs[Input.STATE] == State.SAFE  # a fresh board, and nothing here arms it
    assert len(run.status_ns) == len(run.write_ns) == 3
    assert all(ns > 0 for ns in run.status_ns + run.write_ns)


def test_client_write_cannot_fire_an_armed_launcher(exe: Path, launcher: str) -> None:
    loop = asyncio.new_event_loop()
    link = LauncherLink.from_url(launcher, timeout_s=1.0)
    try:
        loop.run_until_complete(link.connect())
        loop.run_until_complete(link.arm())
        fired = loop.run_until_complete(link.fire(7, 0.5, 0.1, 4321.0, 6.0))
        assert fired.accepted
        link.close()  # the C client has the port to itself, as in a measurement

        run = run_client(launcher, n=5, ops=("write",), exe=exe)
        # the whole fire block, the aim written back as it was, FIRE_SEQ 0 and a good check word
        aim = [7, 2865, 573, 4321, 600]
        assert run.write_values == fire_block(*aim, 0) and run.write_values[-1] == fire_check([*aim, 0])
        assert run.status_ns == [] and len(run.write_ns) == 5

        loop.run_until_complete(link.connect())
        status = loop.run_until_complete(link.read_status())
        record = loop.run_until_complete(link.read_record())
    finally:
        link.close()
        loop.close()
    # taken for fire commands (not garbled ones) and refused for their sequence number: nothing launched
    assert status.armed and status.launch_count == 1 and status.last_fire_seq == fired.seq
    assert status.last_reject == Reject.ZERO_SEQ and status.reject_count == 5
    assert record.last_cmd_seq == 0 and record.bad_check_count == 0 and record.last_aim == tuple(aim[1:])


@pytest.mark.parametrize("transport", ["rtu", "tcp"])
def test_bare_libmodbus_server_answers(exe: Path, transport: str) -> None:
    for target in _serve(transport, [str(exe), "--serve"]):
        run = run_client(target, n=2, ops=("status",), exe=exe)
        # modbus_rtt.c's bare server serves the magic and the map version (from registers.py), zeros after
        assert run.status_regs[:2] == [IDENT_MAGIC, REGMAP_VERSION] and run.status_regs[2:] == [0] * 22


def test_bad_target_and_bad_arguments(exe: Path) -> None:
    with pytest.raises(LinkError, match="tcp://HOST:PORT"):
        run_client("serial0", n=1, exe=exe)
    with pytest.raises(ValueError):
        run_client("tcp://127.0.0.1:1", n=0, exe=exe)
    with pytest.raises(LinkError, match="connect"):  # nothing listens there: libmodbus' own message
        run_client("tcp://127.0.0.1:1", n=1, exe=exe)


def test_missing_header_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(modbus_baseline, "HEADER", tmp_path / "modbus.h")
    if modbus_baseline.shutil.which("gcc") is None:
        pytest.skip("no gcc: the message names gcc first")
    with pytest.raises(BaselineUnavailable, match="libmodbus-dev"):
        build_client(tmp_path / "cache")


@pytest.mark.parametrize("transport", ["rtu", "tcp"])
def test_measure_round_trips_compares_on_one_emulator(exe: Path, transport: str) -> None:
    affinity = os.sched_getaffinity(0)
    result = measure_round_trips(transport, n=12, blocks=2, breakdown=True)
    assert os.sched_getaffinity(0) == affinity  # the clients' CPUs were this process' only for the measurement
    split = split_cpus()
    assert result["cpus"] == (None if split is None else {"board": sorted(split[0]), "clients": sorted(split[1])})
    assert result["transport"] == transport and result["libmodbus"].startswith("libmodbus ")
    for op in ("status", "write"):
        figures = result[op]
        assert figures["libmodbus"]["count"] == figures["launcher_link"]["count"] == 12
        assert figures["ratio"] == round(figures["launcher_link"]["p50"] / figures["libmodbus"]["p50"], 2)
    assert result["within_goal"] == all(result[op]["ratio"] <= result["goal_ratio"] for op in ("status", "write"))
    assert result["board_launches"] == 12 + 2  # the link's fires (one cold one a block), and no other client's
    ladder = result["breakdown"]["median_us"]
    assert list(ladder) == ["transport_floor", "libmodbus", "python_blocking", "python_asyncio", "pymodbus_client",
                            "pymodbus_client_clock_sync", "launcher_link"]
    inside = result["breakdown"]["launcher_link_inside_median_us"]["status"]
    assert 0 < inside["transport_call"] <= figures["launcher_link"]["max"]
    assert result["breakdown"]["pymodbus_inside_median_us"]["status"]["fragments"] >= 1


def test_hil_bench_table_states_the_baselines_goal() -> None:
    from hil.measure.bench import format_modbus_baseline

    figures = {"libmodbus": {"p50": 160.0}, "launcher_link": {"p50": 232.0}, "ratio": 1.45}
    lines = format_modbus_baseline({"rtu": {"goal_ratio": modbus_baseline.GOAL_RATIO, "status": figures,
                                            "write": figures}, "tcp": {"note": "no libmodbus-dev"}})
    assert lines[0].endswith(f"(goal: within {modbus_baseline.GOAL_RATIO:g}x)") and modbus_baseline.GOAL_RATIO == 1.5
    assert lines[1].split()[-1] == "1.45" and lines[-1].split()[-1] == "libmodbus-dev"


def test_shared_cpus_measure_too(exe: Path) -> None:
    result = measure_round_trips("tcp", n=4, blocks=2, split=False)
    assert result["cpus"] is None and result["status"]["launcher_link"]["count"] == 4
