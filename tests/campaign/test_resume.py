"""Never lose or double a run: stop a campaign part way, run it again, and only what was left runs; a failing
run is recorded with its error and tried once more; a half-written run folder is replaced."""

from __future__ import annotations

import json
from pathlib import Path

from hil.campaign import campaign_from, run_campaign
from hil.campaign.campaign import EXIT_PASS, EXIT_RUNS_MISSING


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def test_a_stopped_campaign_resumes_and_recomputes_nothing_done(tmp_path: Path) -> None:
    c = campaign_from({"scenario": "raid", "seeds": "1-4", "duration_s": 4, "record": False}, "resume.toml")
    out = tmp_path / "camp"
    first = run_campaign(c, out, jobs=1, max_runs=2, html=False)
    assert first.exit_status == EXIT_RUNS_MISSING and first.ran == 2
    assert first.summary["runs"] == {"planned": 4, "done": 2, "failed": 0, "not_run": 2}
    done_first = {e["key"] for e in manifest(out)}
    stamps = {k: (out / "runs" / k / "summary.json").stat().st_mtime_ns for k in done_first}
    # what a worker killed mid-run leaves behind: a hidden, half-written folder next to where the run belongs
    half = out / "runs" / "raid" / ".seed-3.partial-deadbeef"
    half.mkdir(parents=True)
    (half / "summary.json").write_text('{"complete": false')

    second = run_campaign(c, out, jobs=1)
    assert second.exit_status == EXIT_PASS and second.ran == 2 and second.resumed == 2
    entries = manifest(out)
    keys = [e["key"] for e in entries]
    assert sorted(keys) == [f"raid/seed-{s}" for s in range(1, 5)]  # every run exactly once
    assert {k for k in keys if k not in done_first} == {"raid/seed-3", "raid/seed-4"}
    for k, t in stamps.items():  # the first invocation's runs were not touched
        assert (out / "runs" / k / "summary.json").stat().st_mtime_ns == t
    assert not half.exists()
    assert json.loads((out / "runs/raid/seed-3/summary.json").read_text())["complete"] is True
    assert second.summary["runs"]["done"] == 4 and second.summary["all"]["runs"] == 4
    rows = (out / "runs.csv").read_text().splitlines()
    assert len(rows) == 5 and all(",done," in r for r in rows[1:])

    third = run_campaign(c, out, jobs=1, html=False)  # nothing left: no worker even starts
    assert third.ran == 0 and third.resumed == 4 and len(manifest(out)) == 4
    assert third.summary["all"] == second.summary["all"]


def test_a_failing_run_is_recorded_with_its_error_tried_once_more_then_counted_failed(tmp_path: Path) -> None:
    c = campaign_from({"scenario": "raid", "seeds": "1", "duration_s": 2, "record": False,
                       "grid": {"tracker": ["hil", "no_such_package.tracker:make"]}}, "fail.toml")
    result = run_campaign(c, tmp_path / "camp", jobs=1, html=False)
    assert result.exit_status == EXIT_RUNS_MISSING
    failed = [e for e in manifest(tmp_path / "camp") if e["status"] == "failed"]
    assert [e["attempt"] for e in failed] == [1, 2]
    assert all("no_such_package" in e["error"] for e in failed), failed
    assert list(result.failed) == [failed[0]["key"]]
    assert result.summary["runs"] == {"planned": 2, "done": 1, "failed": 1, "not_run": 0}
