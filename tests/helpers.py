"""What tests and benchmarks share: the checkout's folder and the Debian tools tests need. Every test imports
its shared helpers from here, never from another test; conftest.py holds only pytest's hooks and fixtures.

Importing this module needs no kernel built and loads neither matplotlib nor scipy: a helper that needs them
imports them when called, so a test that wants only REPO stays light and a kernel being rebuilt breaks only the
tests that use it. The wheel ships this file beside the benchmarks (setup.py's SHIPPED); there REPO is hil/data/,
which holds the same rigs/, scenarios/ and firmware_stubs/ as the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

# --- the checkout's files (an installed package's hil/data/) ----------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


# --- Debian tools and the checkout's commit ---------------------------------------------------------------------


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
