"""Running a campaign on Dask: a local cluster of worker processes by default, or an existing cluster.

The client plans the runs (each a RunTask: the scenario with its grid point written in, already loaded, so a
worker needs only the installed package), skips those the manifest says are done, and submits the rest. A
worker writes its run into a hidden folder next to where it belongs and renames it into place when complete,
then returns a small record (key figures, verdict, latency histograms encoded). The client alone appends to
the manifest; a failed run is recorded with its error and tried once more; a worker that dies mid-run has its
task given to another worker by the Dask scheduler, and the half-written folder it left is removed by the
next attempt at that run.

With gathering (--gather), for workers that share no folder with the client: a worker writes the run into a
scratch folder of its own (--worker-dir, default its temporary folder), packs it (tar, gzip) into the record and
removes its scratch copy; the client unpacks it into a hidden folder next to where the run belongs and renames it
into place. A run folder over the size limit is not sent: it stays on the worker, and the run's record says where.
If unpacking fails the attempt counts as failed, and the run is tried again like any other failure.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import shutil
import socket
import tarfile
import tempfile
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
GATHER_LIMIT_BYTES = 256 * 10**6  # a run folder bigger than this (on disk) stays on its worker
SCRATCH = "hil-run-"  # a worker's scratch folder for one gathered attempt, in its --worker-dir


class RunFailed(Exception):
    """A run that ended without a usable result (the rig failed, it was interrupted): the error is its message."""


@dataclass(frozen=True)
class Gather:
    """Send run folders back to the client: each worker writes into worker_dir (None: its temporary folder), and
    a run folder larger than limit_bytes on disk is left there instead."""

    worker_dir: str | None = None
    limit_bytes: int = GATHER_LIMIT_BYTES


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
    folder: str  # the run folder's absolute path (on a cluster, a path every worker shares, unless gathered)
    gather: Gather | None = None  # None: the worker writes at `folder`


def plan(campaign: Campaign, out: Path, run_reports: bool | None = None, gather: Gather | None = None) \
        -> tuple[list[GridPoint], list[RunTask]]:
    """The campaign's grid points and its runs in order (scenario, grid point, seed); with gather, each run's
    folder is sent back to the client (the digest is the same: where a folder is written does not change it)."""
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
                                 folder=str((out / "runs" / key).resolve()), gather=gather))
    return points, tasks


def _replace(src: Path, dst: Path) -> None:
    """src renamed to dst, a dst already there removed first (a rename is atomic within a folder)."""
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(src, dst)


def run_one(task: RunTask) -> dict[str, Any]:
    """Run one task on this worker and return its record. Raises RunFailed (or the run's own error)."""
    if task.gather is not None:
        return _run_gathered(task, task.gather)
    return _run_into(task, Path(task.folder))


def _run_into(task: RunTask, final: Path) -> dict[str, Any]:
    import hil

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


def folder_bytes(folder: Path) -> int:
    """The size of a folder's files on disk, in bytes."""
    return sum((Path(d) / f).lstat().st_size for d, _, files in os.walk(folder) for f in files)


def pack(folder: Path) -> bytes:
    """A folder's content as a gzipped tar, names relative to it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for child in sorted(folder.iterdir()):
            tar.add(child, arcname=child.name)
    return buf.getvalue()


def unpack(archive: bytes, final: Path) -> None:
    """A packed run folder unpacked into a hidden folder next to `final`, then renamed into place: `final` is
    either the whole run folder or untouched. Raises RunFailed when it cannot be unpacked whole."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}{PARTIAL}{uuid.uuid4().hex[:8]}"
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")  # names that would land outside tmp are refused
        if not (tmp / "summary.json").is_file():
            raise RunFailed("it has no summary.json")
        _replace(tmp, final)
    except Exception as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RunFailed(f"the run folder sent back by the worker could not be unpacked: {_error_text(e)}") from e


def _run_gathered(task: RunTask, gather: Gather) -> dict[str, Any]:
    """Run into this worker's scratch folder and put the packed run folder in the record (key "archive"), or,
    over the limit, leave it there and say so in the record (key "note")."""
    host = socket.gethostname()
    scratch = Path(gather.worker_dir or tempfile.gettempdir()).resolve() / f"{SCRATCH}{uuid.uuid4().hex[:12]}"
    final = scratch / Path(task.key).name
    try:
        record = _run_into(task, final)
    except Exception as e:
        if not final.exists():
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        error = str(e) if isinstance(e, RunFailed) else _error_text(e)
        raise RunFailed(f"{error} (what it wrote is on {host} in {final})") from e
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    size = folder_bytes(final)
    if size > gather.limit_bytes:
        record["folder"] = f"{host}:{final}"
        limit_mb = gather.limit_bytes / 1e6
        record["note"] = (f"not gathered: the run folder is {size / 1e6:.3g} MB, over the {limit_mb:g} MB limit "
                          f"(--gather-limit); it stays on {host} in {final}. To keep every run folder "
                          "where the workers write it, run without --gather and give --out a folder they all share")
        return record
    try:
        record["archive"] = pack(final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return record


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
                    archive = record.pop("archive", None)
                    if archive is not None and key not in out.records:
                        unpack(archive, Path(task.folder))
                        record["gathered_bytes"] = len(archive)
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


__all__ = ["ATTEMPTS", "GATHER_LIMIT_BYTES", "Execution", "Gather", "Progress", "RunFailed", "RunTask", "dask_client",
           "execute", "folder_bytes", "pack", "plan", "run_one", "sweep_partials", "unpack"]
