"""Running a campaign on Dask: a local cluster of worker processes by default, or an existing cluster.

The client plans the runs (each a RunTask: the scenario with its grid point written in, already loaded, so a
worker needs only the installed package), skips those the manifest says are done, and submits the rest. A
worker writes its run into a hidden folder next to where it belongs and renames it into place when complete,
then returns a small record (key figures, verdict, latency histograms encoded). The client alone appends to
the manifest; a failed run is recorded with its error and tried once more; a worker that dies mid-run has its
task given to another worker by the Dask scheduler, and the half-written folder it left is removed by the
next attempt at that run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.campaign.manifest import DONE, FAILED, Manifest
from hil.campaign.spec import Campaign, GridPoint, apply_point, digest
from hil.campaign.stats import run_outcomes
from hil.rig import Rig
from hil.scenario import Scenario

log = logging.getLogger(__name__)
ATTEMPTS = 2  # a failed run is tried once more
PARTIAL = ".partial-"


class RunFailed(Exception):
    """A run that ended without a usable result (the rig failed, it was interrupted): the error is its message."""


@dataclass(frozen=True)
class RunTask:
    """One run as a worker needs it: everything already loaded and settled by the client."""

    key: str  # "<grid point slug>/seed-<n>": unique in the campaign, and the run folder under runs/
    digest: str  # of the scenario, rig and settings: a done run with another digest is run again
    point: int  # index into the campaign's grid points
    seed: int
    scenario: Scenario
    rig: Rig
    time: str
    duration_s: float | None
    criteria: dict[str, Any]
    record: bool
    report: bool
    folder: str  # the run folder's absolute path (on a cluster, a path every worker shares)


def plan(campaign: Campaign, out: Path, run_reports: bool | None = None) -> tuple[list[GridPoint], list[RunTask]]:
    """The campaign's grid points and its runs in order (scenario, grid point, seed)."""
    points = campaign.points()
    rig = Rig.load(campaign.rig)
    loaded = {s: Scenario.load(s) for s in campaign.scenarios}
    by_label = {Path(s).stem if s.endswith(".toml") else s: loaded[s] for s in campaign.scenarios}
    tasks: list[RunTask] = []
    slugs: set[str] = set()
    for i, p in enumerate(points):
        scenario = apply_point(by_label[p.scenario], p.settings, campaign.source)
        slug = p.slug if p.slug not in slugs else f"{p.slug}-{i}"
        slugs.add(slug)
        point_digest = digest(repr(scenario), repr(rig), campaign.time, campaign.duration_s, campaign.criteria,
                              campaign.record)
        for seed in campaign.seeds:
            key = f"{slug}/seed-{seed}"
            tasks.append(RunTask(key=key, digest=digest(point_digest, seed), point=i, seed=seed, scenario=scenario,
                                 rig=rig, time=campaign.time, duration_s=campaign.duration_s,
                                 criteria=dict(campaign.criteria), record=campaign.record,
                                 report=campaign.run_reports if run_reports is None else run_reports,
                                 folder=str((out / "runs" / key).resolve())))
    return points, tasks


def _replace(src: Path, dst: Path) -> None:
    """src renamed to dst, a dst already there removed first (a rename is atomic within a folder)."""
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(src, dst)


def run_one(task: RunTask) -> dict[str, Any]:
    """Run one task on this worker and return its record. Raises RunFailed (or the run's own error)."""
    import hil

    final = Path(task.folder)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}{PARTIAL}*"):  # left by a worker killed on this run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".{final.name}{PARTIAL}{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    try:
        result = hil.run(scenario=task.scenario, rig=task.rig, seed=task.seed, time=task.time,
                         criteria=task.criteria, out=tmp, duration=task.duration_s, record=task.record,
                         report=task.report)
    except BaseException:
        if tmp.exists():  # keep what the failed attempt wrote where the run belongs, to be looked at
            _replace(tmp, final)
        raise
    summary = result.summary
    latency_file = tmp / "latency.json"
    latency = json.loads(latency_file.read_text()) if latency_file.is_file() else None
    _replace(tmp, final)
    if summary.get("interrupted"):
        raise RunFailed(f"interrupted by {summary.get('signal') or 'a signal'}")
    if summary.get("rig_problems"):
        raise RunFailed("rig: " + "; ".join(summary["rig_problems"]))
    verdict = summary.get("verdict") or {}
    return {"key": task.key, "digest": task.digest, "seed": task.seed, "point": task.point,
            "worker": f"{socket.gethostname()}:{os.getpid()}", "wall_s": round(time.perf_counter() - started, 3),
            "verdict": verdict.get("result"), "failed_criteria": list(verdict.get("failed", [])),
            "exit_status": result.exit_status, "outcomes": run_outcomes(summary), "latency": latency}


@dataclass
class Progress:
    """What the client reports while the campaign runs."""

    total: int
    done: int = 0
    failed: int = 0
    retried: int = 0
    dashboard: str | None = None


@dataclass
class Execution:
    """What one invocation ran: records by key, runs failed for good with their errors."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    dashboard: str | None = None
    workers: int = 0


@contextlib.contextmanager
def dask_client(jobs: int | None, scheduler: str | None) -> Iterator[Any]:
    """A Dask client: on an existing scheduler, or on a local cluster of `jobs` single-threaded worker processes
    listening on 127.0.0.1 only."""
    from distributed import Client, LocalCluster

    # Dask's own INFO lines (scheduler and nannies starting) only when hil itself is asked for them (-v)
    verbose = logging.getLogger().getEffectiveLevel() <= logging.INFO
    logging.getLogger("distributed").setLevel(logging.INFO if verbose else logging.WARNING)
    if scheduler:
        with Client(scheduler, timeout="30s") as client:
            yield client
        return
    with LocalCluster(n_workers=jobs or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        yield client


def _error_text(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def execute(tasks: list[RunTask], manifest: Manifest, jobs: int | None = None, scheduler: str | None = None,
            on_progress: Callable[[Progress], None] | None = None) -> Execution:
    """Run the tasks on Dask, appending each finished or failed attempt to the manifest as it comes back."""
    from distributed import as_completed

    out = Execution()
    if not tasks:
        return out
    progress = Progress(total=len(tasks))
    by_key = {t.key: t for t in tasks}
    attempts: dict[str, int] = dict.fromkeys(by_key, 0)
    run_of: dict[str, str] = {}  # Dask's key of each attempt -> the run's key
    with dask_client(jobs, scheduler) as client:
        out.dashboard = progress.dashboard = _dashboard(client)
        out.workers = len(client.scheduler_info().get("workers", {}))
        if on_progress:
            on_progress(progress)

        def submit(task: RunTask) -> Any:
            attempts[task.key] += 1
            name = f"hil-run-{task.key}-{attempts[task.key]}-{uuid.uuid4().hex[:6]}"
            run_of[name] = task.key
            return client.submit(run_one, task, key=name, pure=False, retries=0)

        futures = as_completed([submit(t) for t in tasks], with_results=False)
        try:
            for future in futures:
                key = run_of.pop(future.key)
                task = by_key[key]
                try:
                    record = future.result()
                except Exception as e:
                    error = _error_text(e)
                    manifest.append({"key": key, "digest": task.digest, "status": FAILED,
                                     "attempt": attempts[key], "error": error, "at": time.time()})
                    if attempts[key] < ATTEMPTS:
                        progress.retried += 1
                        futures.add(submit(task))
                    else:
                        out.failed[key] = error
                        progress.failed += 1
                else:
                    if key not in out.records:  # a run counts once, whatever comes back twice
                        manifest.append({"key": key, "digest": task.digest, "status": DONE, "attempt": attempts[key],
                                         "record": record, "at": time.time()})
                        out.records[key] = record
                        progress.done += 1
                future.release()
                if on_progress:
                    on_progress(progress)
        except KeyboardInterrupt:
            out.interrupted = True
            with contextlib.suppress(Exception):
                client.cancel(list(futures.futures))
    return out


def _dashboard(client: Any) -> str | None:
    try:
        link = client.dashboard_link
    except Exception:  # no dashboard (bokeh absent, or the scheduler runs without one)
        return None
    # without bokeh the scheduler's web server answers, but has no dashboard page
    if not link or (client.cluster is not None and importlib.util.find_spec("bokeh") is None):
        return None
    return str(link)


def sweep_partials(runs: Path) -> int:
    """Remove half-written run folders left by killed workers; how many."""
    n = 0
    if runs.is_dir():
        for p in runs.glob(f"*/.*{PARTIAL}*"):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n


__all__ = ["ATTEMPTS", "Execution", "Progress", "RunFailed", "RunTask", "dask_client", "execute", "plan", "run_one",
           "sweep_partials"]
