"""Shared test options and helpers: opt-in hardware tests, Debian tools that CI must have, the checkout's commit."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from hil.firmware import REPO


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
