"""Shared test options and helpers: opt-in hardware tests, Debian tools that CI must have, the checkout's commit."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.plant.firmware import REPO


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hardware", action="store_true", help="run tests that need a real board on the bench")
    parser.addoption("--sweep", action="store_true",
                     help="run the sweeps: every seed of the safety scenarios and the whole fault matrix")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_hw = pytest.mark.skip(reason="needs a real board: run with --hardware and a rig file")
    skip_sweep = pytest.mark.skip(reason="part of a sweep: run with --sweep")
    for item in items:
        if "hardware" in item.keywords and not config.getoption("--hardware"):
            item.add_marker(skip_hw)
        if "sweep" in item.keywords and not config.getoption("--sweep"):
            item.add_marker(skip_sweep)


def require_tool(tool: str, package: str) -> str:
    """Path of a Debian tool; in CI (CI=true) a missing tool fails the test, elsewhere it skips."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not found: apt-get install {package}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def head_commit() -> str:
    """HEAD's short hash: the build id firmware built from this checkout reports (with "+" after local edits)."""
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=7", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def tshark_fields(path: Path, fields: list[str], *extra: str) -> list[list[str]]:
    """One row per packet of a capture with the requested fields (each possibly comma-joined over repeats), as
    tshark prints them with whatever extra options are given."""
    exe = require_tool("tshark", "tshark")
    cmd = [exe, "-r", str(path), "-T", "fields", *extra]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines()]


@pytest.fixture
def simavr_launcher() -> Iterator[Any]:
    """The AVR launcher firmware running under simavr (built first), its UART on a pty; no byte lost on the way."""
    from hil.plant.firmware import SimavrBoard, build_firmware

    require_tool("avr-gcc", "gcc-avr avr-libc")
    require_tool("simavr", "simavr libsimavr-dev libelf-dev")
    with SimavrBoard(build_firmware("launcher")) as board:
        yield board
    assert "0 dropped" in board.stats, board.stats
