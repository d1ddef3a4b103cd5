"""A campaign through a real Dask scheduler and two workers on 127.0.0.1: one worker is killed while it writes a
run folder; the run is done again elsewhere, its half-written folder replaced, every run is there once, and the
statistics are those of the same campaign on a local cluster, bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.campaign import campaign_from, run_campaign
from tests.helpers import campaign_outcome_stats

SEEDS = "1-6"
DURATION_S = 30  # the raid's first kills come before 30 s: the statistics have something in them
DEADLINE_S = 120.0


def _wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"exited {proc.returncode}"
        assert time.monotonic() < end, f"no {path} after {timeout} s"
        time.sleep(0.05)


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """`dask scheduler` and two `dask worker` processes (no nanny: killing one kills the worker), loopback only."""
    sched_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs: list[subprocess.Popen[bytes]] = []
    log = (tmp_path / "dask.log").open("wb")
    try:
        procs.append(subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                       "--scheduler-file", str(sched_file)], stdout=log, stderr=log))
        _wait_for(sched_file, procs[0], 30)
        address = json.loads(sched_file.read_text())["address"]
        for i in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address,
                                           "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                                           "--name", f"w{i}"], stdout=log, stderr=log))
        from distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=30)
        yield address, procs[1:]
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        log.close()


def _partials(folder: Path) -> set[Path]:
    return set((folder / "runs").glob("*/.seed-*.partial-*")) if (folder / "runs").is_dir() else set()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_worker_killed_mid_run_loses_and_doubles_nothing(tmp_path: Path,
                                                           dask_cluster: tuple[str, list[Any]]) -> None:
    address, workers = dask_cluster
    out = tmp_path / "distributed"
    cmd = [sys.executable, "-m", "hil", "campaign", "--scenario", "raid", "--seeds", SEEDS, "--duration",
           str(DURATION_S), "--scheduler", address, "--out", str(out), "--no-progress"]
    client = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    # both workers mid-run: each is writing a run folder; kill one of them
    end = time.monotonic() + 60
    while len(_partials(out)) < 2:
        assert client.poll() is None, client.communicate()[0].decode()
        assert time.monotonic() < end, "the workers never wrote two run folders at once"
        time.sleep(0.02)
    half_written = _partials(out)
    os.kill(workers[0].pid, signal.SIGKILL)
    text = client.communicate(timeout=DEADLINE_S)[0].decode()
    assert client.returncode == 0, text

    for p in half_written:
        assert not p.exists(), f"{p} left behind"
    assert not _partials(out)
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    keys = [e["key"] for e in entries]
    assert sorted(keys) == sorted(f"raid/seed-{s}" for s in range(1, 7)) and all(e["status"] == "done"
                                                                                  for e in entries)
    for k in keys:
        s = json.loads((out / "runs" / k / "summary.json").read_text())
        assert s["complete"] is True and s["seed"] == int(k.rsplit("-", 1)[1])

    local = run_campaign(campaign_from({"scenario": "raid", "seeds": SEEDS, "duration_s": DURATION_S},
                                       "local"), tmp_path / "local", jobs=2, html=False)
    remote = json.loads((out / "campaign.json").read_text())
    assert campaign_outcome_stats(remote) == campaign_outcome_stats(local.summary)
    by_key = {e["key"]: e["record"]["outcomes"] for e in entries}
    for e in (json.loads(line) for line in (tmp_path / "local/manifest.jsonl").read_text().splitlines()):
        assert e["record"]["outcomes"] == by_key[e["key"]], e["key"]
    assert remote["all"]["kill_probability"]["k"] > 0
