"""The whole tree stays ruff- and mypy-clean, and every hil command imports (none is 'unavailable')."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from hil.commands.cli import COMMANDS, RIG_COMMANDS
from tests.helpers import REPO


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed: pip install -e .[test]")
def test_ruff_is_clean_over_the_whole_tree() -> None:
    r = subprocess.run(["ruff", "check", "--quiet", str(REPO)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_mypy_is_clean_over_the_whole_tree() -> None:
    roots = ("hil", "drivers", "ext", "tests", "firmware_stubs", "examples")
    trees = [d for d in roots if any((REPO / d).rglob("*.py"))]
    r = subprocess.run([sys.executable, "-m", "mypy", *trees], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-2000:]


@pytest.mark.parametrize("name", [*COMMANDS, *(f"rig {n}" for n in RIG_COMMANDS)])
def test_every_command_is_available(name: str) -> None:
    words = name.split()
    listing = subprocess.run([sys.executable, "-m", "hil", *words[:-1], "--help"], capture_output=True, text=True)
    assert listing.returncode == 0 and words[-1] in listing.stdout
    assert "unavailable" not in listing.stdout, listing.stdout
    r = subprocess.run([sys.executable, "-m", "hil", *words, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage:" in r.stdout
