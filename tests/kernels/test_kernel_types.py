"""The kernels' public types: the chi-square gate without scipy, one set of status and refusal numbers, and
typed faces (.pyi) that name what the compiled modules have."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import chi2

import hil.ext.decode
import hil.ext.firecontrol
import hil.ext.tracker
from hil.ext.firecontrol_types import RefusalReason
from hil.ext.tracker_types import TrackerConfig, TrackStatus, chi_square_quantile
from tests.helpers import REPO

PROBABILITIES = (0.51, 0.6, 0.9, 0.95, 0.99, 0.999, 0.9995, 0.9999, 0.99999, 1 - 1e-9)


def test_the_default_gates_are_scipys_to_the_bit() -> None:
    cfg = TrackerConfig()
    assert cfg.gate(3) == chi2.ppf(cfg.gate_probability, 3)
    assert cfg.gate(4) == chi2.ppf(cfg.gate_probability, 4)


@pytest.mark.parametrize("dof", range(1, 9))
def test_chi_square_quantile_agrees_with_scipy(dof: int) -> None:
    for p in PROBABILITIES:
        assert chi_square_quantile(p, dof) == pytest.approx(chi2.ppf(p, dof), rel=1e-14, abs=0.0), p


def test_chi_square_quantile_of_two_degrees_has_a_closed_form() -> None:
    for p in PROBABILITIES:
        assert chi_square_quantile(p, 2) == pytest.approx(-2.0 * math.log1p(-p), rel=1e-14)


@pytest.mark.parametrize(("p", "dof"), [(0.0, 3), (1.0, 3), (0.5, 0), (float("nan"), 3), (0.9, 65)])
def test_chi_square_quantile_outside_its_domain_is_refused(p: float, dof: int) -> None:
    with pytest.raises(ValueError, match="chi_square_quantile"):
        chi_square_quantile(p, dof)


def test_track_status_numbers_are_the_kernels() -> None:
    """A tracker's snapshot carries TrackStatus numbers; the kernel refuses to load when its own differ (and it
    loaded here), so a test of both ends is what is left: a track seen once is tentative, then confirmed."""
    trk = hil.ext.tracker.Tracker(TrackerConfig(confirm_m=2, confirm_n=2), np.zeros((1, 3)))
    seen = []
    for k in range(2):
        trk.update(np.array([float(k)]), np.array([0], np.int32), np.array([10_000.0 + 100.0 * k]),
                   np.array([0.5]), np.array([0.01]), None)
        trk.sector_swept(0, k + 0.5, 0.0, 2.0 * math.pi)  # M of N is counted as the beam passes
        seen.append(trk.tracks().status.tolist())
    assert seen == [[TrackStatus.TENTATIVE], [TrackStatus.CONFIRMED]]
    assert trk.tracks().confirmed.tolist() == [True]


def test_refusal_codes_are_the_kernels() -> None:
    from hil.ext.firecontrol_types import FireControlConfig

    fc = hil.ext.firecontrol.FireControl(FireControlConfig())
    res = fc.evaluate(0.0, np.array([1], np.int64), np.array([[1e4, 0, 1e3, -200, 0, 0]], np.float64),
                      np.array([100.0]), np.array([True]), np.array([True]), np.zeros(1, np.int32),
                      np.zeros(1, np.int32), np.zeros(0, bool), np.zeros(0, bool), np.zeros(0, np.int32), np.zeros(0))
    assert [RefusalReason(int(r)) for r in res.track_reason] == [RefusalReason.FRIENDLY]


# --- the .pyi stubs name what the compiled modules have ---------------------------------------------------


def stub_names(path: Path) -> dict[str, set[str]]:
    """Top-level names of a stub ("" key) and each class's member names."""
    tree = ast.parse(path.read_text())
    out: dict[str, set[str]] = {"": set()}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[""].add(node.name)
            out[node.name] = set()
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and not item.name.startswith("__"):
                    out[node.name].add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    out[node.name].add(item.target.id)
        elif isinstance(node, ast.FunctionDef):
            out[""].add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[""].add(node.target.id)
    return out


def own_public_names(module: types.ModuleType) -> set[str]:
    """The classes and functions the compiled module defines itself (not what it imports)."""
    return {name for name, obj in vars(module).items()
            if not name.startswith("_") and isinstance(obj, type | types.BuiltinFunctionType | types.FunctionType)
            and getattr(obj, "__module__", None) == module.__name__}


@pytest.mark.parametrize("module", [hil.ext.tracker, hil.ext.firecontrol, hil.ext.decode], ids=lambda m: m.__name__)
def test_each_stub_names_what_its_compiled_module_has(module: types.ModuleType) -> None:
    stub = stub_names(REPO / "ext" / (module.__name__.rsplit(".", 1)[1] + ".pyi"))
    assert own_public_names(module) <= stub[""], "defined by the kernel but missing from its stub"
    for name in stub[""]:
        assert hasattr(module, name), f"the stub names {name}, the compiled module has none"
    for cls, members in stub.items():
        if cls:
            public = {n for n in dir(getattr(module, cls)) if not n.startswith("_")}
            assert members == public, f"{cls}: stub only {sorted(members - public)}, " \
                                      f"kernel only {sorted(public - members)}"


@pytest.mark.slow
def test_mypy_reads_the_stubs(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from hil.ext.tracker import Tracker\nfrom hil.ext.firecontrol import FireControl\n"
                     "reveal_type(Tracker.tracks)\nreveal_type(FireControl.evaluate)\n")
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", str(probe)], cwd=REPO, capture_output=True,
                       text=True)
    assert "TrackSnapshot" in r.stdout and "FireControlResult" in r.stdout, r.stdout + r.stderr
