"""Campaign throughput: runs per minute of the 60 s raid in virtual time with 1 and 2 local workers (recording on,
per-run reports off), and the same 20-run campaign through a real `dask scheduler` + 2 `dask worker` processes
on 127.0.0.1 against the local cluster.

Figures, not assertions: run `pytest tests/bench/bench_campaign.py -s --benchmark-enable` (several minutes on a
2-core machine); each case prints its runs per minute. With --benchmark-disable it runs 2 short runs per case and
checks that they finished.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hil.campaign import campaign_from, run_campaign


def _campaign(runs: int, duration_s: float) -> Any:
    return campaign_from({"scenario": "raid", "seeds": f"1-{runs}", "duration_s": duration_s, "record": True},
                         "bench")


def _sizes(request: pytest.FixtureRequest) -> tuple[int, float]:
    enabled = bool(request.config.getoption("benchmark_enable", default=False))
    return (20, 60.0) if enabled else (2, 3.0)


def _report(label: str, runs: int, wall_s: float) -> None:
    print(f"\n{label}: {runs} runs in {wall_s:.1f} s = {60 * runs / wall_s:.1f} runs per minute")


@pytest.mark.parametrize("jobs", [1, 2])
def test_local_cluster_runs_per_minute(tmp_path: Path, request: pytest.FixtureRequest, jobs: int) -> None:
    runs, duration = _sizes(request)
    t0 = time.perf_counter()
    result = run_campaign(_campaign(runs, duration), tmp_path / "c", jobs=jobs, html=False)
    wall = time.perf_counter() - t0
    assert result.summary["runs"]["done"] == runs
    _report(f"local cluster, {jobs} worker(s), raid {duration:g} s virtual", runs, wall)


def test_scheduler_and_two_workers_against_local(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    runs, duration = _sizes(request)
    sched_file = tmp_path / "scheduler.json"
    log = (tmp_path / "dask.log").open("wb")
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=log, stderr=log)]
    try:
        end = time.monotonic() + 30
        while not sched_file.exists():
            assert time.monotonic() < end
            time.sleep(0.05)
        address = json.loads(sched_file.read_text())["address"]
        procs += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                    "--no-dashboard", "--host", "127.0.0.1"], stdout=log, stderr=log)
                  for _ in range(2)]
        from distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=30)
        t0 = time.perf_counter()
        remote = run_campaign(_campaign(runs, duration), tmp_path / "remote", scheduler=address, html=False)
        remote_s = time.perf_counter() - t0
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()
    t0 = time.perf_counter()
    local = run_campaign(_campaign(runs, duration), tmp_path / "local", jobs=2, html=False)
    local_s = time.perf_counter() - t0
    assert remote.summary["runs"]["done"] == local.summary["runs"]["done"] == runs
    _report("dask scheduler + 2 workers (already up)", runs, remote_s)
    _report("local cluster, 2 workers (started by the campaign)", runs, local_s)
    print(f"distributed / local wall time: {remote_s / local_s:.3f}")
