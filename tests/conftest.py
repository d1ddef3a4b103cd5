"""pytest's hooks and fixtures for the whole suite: opt-in hardware tests and sweeps, the simavr launcher.

Helpers that tests share (paths, Debian tools, run folders, scenes) live in tests/helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import require_tool


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


@pytest.fixture
def simavr_launcher() -> Iterator[Any]:
    """The AVR launcher firmware running under simavr (built first), its UART on a pty; no byte lost on the way."""
    from hil.plant.firmware import SimavrBoard, build_firmware

    require_tool("avr-gcc", "gcc-avr avr-libc")
    require_tool("simavr", "simavr libsimavr-dev libelf-dev")
    with SimavrBoard(build_firmware("launcher")) as board:
        yield board
    assert "0 dropped" in board.stats, board.stats
