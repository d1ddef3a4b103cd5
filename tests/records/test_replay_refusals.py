"""Replay asks fire control again about the refusals the run recorded (protection, kill assessment) and finds a
recorded refusal that does not reproduce."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil.records.replay import replay
from hil.rig import Rig
from hil.runtime import RunOptions, run_chain
from hil.scenario import Scenario
from tests.helpers import REPO

ESCORTS = REPO / "scenarios" / "safety" / "escorts.toml"


@pytest.fixture(scope="module")
def escorts_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("escorts")
    run_chain(RunOptions(scenario=Scenario.load(ESCORTS), rig=Rig.load(), seed=1, time_mode="virtual", out_dir=out,
                         duration_s=30.0, report=False))
    return out


def test_the_protection_refusals_of_a_run_reproduce(escorts_run: Path) -> None:
    records = [json.loads(line) for line in (escorts_run / "decisions.jsonl").read_text().splitlines()]
    protected = [r for r in records if r.get("kind") == "refusal" and r["reason"] == "PROTECTED_NEAR_INTERCEPT"]
    assert protected and all(r["protected_track"] is not None for r in protected)
    result = replay(escorts_run, escorts_run / "recording.pcapng")
    assert result.refusals_checked == len([r for r in records if r.get("kind") == "refusal"])
    assert not result.findings, result.findings


def test_a_refusal_naming_another_protected_track_is_a_difference(escorts_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    copy.mkdir()
    for f in escorts_run.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    lines = (copy / "decisions.jsonl").read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if '"PROTECTED_NEAR_INTERCEPT"' in line)
    record = json.loads(lines[k])
    record["protected_track"] = 999_999
    lines[k] = json.dumps(record)
    (copy / "decisions.jsonl").write_text("\n".join(lines) + "\n")
    result = replay(copy, copy / "recording.pcapng")
    assert any("protected track 999999" in f.problem for f in result.findings), result.findings
