"""--gather: workers that share no folder with the client send each run folder back. Through a real Dask scheduler
and a worker on 127.0.0.1 whose working directory and scratch folder are not the campaign folder, the client ends
with every run folder whole, the worker's scratch is empty, and the statistics are those of a local campaign."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from hil.campaign import campaign_from, run_campaign
from hil.campaign.runner import RunFailed, pack, unpack
from tests.helpers import LoopbackDask, campaign_outcome_stats

SEEDS = "1-2"
DURATION_S = 30  # the raid's first kills come before 30 s
RUN_FILES = ("summary.json", "events.csv", "recording.pcapng")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_gathered_run_folders_arrive_whole_and_leave_the_worker_empty(tmp_path: Path) -> None:
    worker_home, scratch, client_home = tmp_path / "worker-home", tmp_path / "scratch", tmp_path / "client"
    for d in (worker_home, scratch, client_home):
        d.mkdir()
    out = client_home / "camp"
    with LoopbackDask(tmp_path / "dask", workers=1, cwd=worker_home) as dask:
        cmd = [sys.executable, "-m", "hil", "campaign", "--scenario", "raid", "--seeds", SEEDS, "--duration",
               str(DURATION_S), "--scheduler", dask.address, "--out", str(out), "--no-progress", "--gather",
               "--worker-dir", str(scratch)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=client_home, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr

    keys = [f"raid/seed-{s}" for s in (1, 2)]
    for k in keys:
        folder = out / "runs" / k
        for name in RUN_FILES:
            assert (folder / name).is_file() and (folder / name).stat().st_size > 0, f"{folder / name}"
        assert json.loads((folder / "summary.json").read_text())["complete"] is True
    assert not list((out / "runs").glob("*/.*")), "a half-unpacked folder left behind"
    assert list(scratch.iterdir()) == [], "the worker's scratch copy was not removed"
    assert not (worker_home / "camp").exists() and not (worker_home / "runs").exists()
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(e["key"] for e in entries) == keys and all(e["status"] == "done" for e in entries)
    assert all(e["record"]["gathered_bytes"] > 0 and "archive" not in e["record"] for e in entries)

    local = run_campaign(campaign_from({"scenario": "raid", "seeds": SEEDS, "duration_s": DURATION_S}, "local"),
                         tmp_path / "local", jobs=1, html=False)
    gathered = json.loads((out / "campaign.json").read_text())
    assert campaign_outcome_stats(gathered) == campaign_outcome_stats(local.summary)
    assert gathered["all"]["kill_probability"]["k"] > 0  # the statistics have something in them


def test_a_run_folder_over_the_limit_stays_on_the_worker_and_the_run_still_counts(tmp_path: Path) -> None:
    c = campaign_from({"scenario": "raid", "seeds": "1", "duration_s": 2, "record": False, "gather": True}, "c.toml")
    scratch = tmp_path / "scratch"
    result = run_campaign(c, tmp_path / "camp", jobs=1, html=False, worker_dir=str(scratch), gather_limit_bytes=1000)
    assert result.exit_status == 0 and result.summary["runs"]["done"] == 1
    (note,) = result.summary["not_gathered"].values()
    assert "over the 0.001 MB limit" in note and "without --gather" in note
    (kept,) = scratch.glob("hil-run-*/seed-1")
    assert (kept / "summary.json").is_file() and str(kept) in note
    assert not (tmp_path / "camp" / "runs" / "raid" / "seed-1").exists()
    row = (tmp_path / "camp" / "runs.csv").read_text().splitlines()[1]
    assert ",done," in row and str(kept) in row


def test_a_broken_or_hostile_archive_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "runs" / "raid" / "seed-1"
    with pytest.raises(RunFailed, match="could not be unpacked"):
        unpack(b"not a tar at all", final)
    outside = tmp_path / "evil"
    outside.mkdir()
    (outside / "summary.json").write_text("{}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(outside / "summary.json", arcname="../../../escaped.json")
    with pytest.raises(RunFailed, match="could not be unpacked"):
        unpack(buf.getvalue(), final)
    assert not (tmp_path / "escaped.json").exists() and not final.exists()
    assert not list(final.parent.glob(".*"))

    good = tmp_path / "good"
    (good / "sub").mkdir(parents=True)
    (good / "summary.json").write_text('{"complete": true}')
    (good / "sub" / "x.csv").write_text("a,b\n")
    unpack(pack(good), final)
    assert (final / "summary.json").read_text() == '{"complete": true}' and (final / "sub/x.csv").is_file()
