"""Shared test options: opt-in hardware tests, and Debian tools that CI must have."""

from __future__ import annotations

import os
import shutil

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hardware", action="store_true", help="run tests that need a real board on the bench")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hardware"):
        return
    skip = pytest.mark.skip(reason="needs a real board: run with --hardware and a rig file")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


def require_tool(tool: str, package: str) -> str:
    """Path of a Debian tool; in CI (CI=true) a missing tool fails the test, elsewhere it skips."""
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not found: apt-get install {package}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
