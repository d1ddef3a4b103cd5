"""run_campaign: plan, resume from the manifest, run what is left on Dask, and write campaign.json, runs.csv,
campaign.html (and JUnit) from every finished run of the campaign, each counted once."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.campaign.manifest import Manifest
from hil.campaign.runner import GATHER_LIMIT_BYTES, Execution, Gather, Progress, RunTask, execute, plan, sweep_partials
from hil.campaign.spec import Campaign, GridPoint
from hil.campaign.stats import HOSTILE_RESULTS, group_stats
from hil.campaign.verdict import judge_campaign
from hil.measure.verdict import FAIL, write_junit

EXIT_PASS, EXIT_CRITERION_FAILED, EXIT_USAGE, EXIT_RUNS_MISSING = 0, 1, 2, 3
EXIT_INTERRUPTED = 130


@dataclass
class CampaignResult:
    """A campaign after one invocation: campaign.json's content and what this invocation did."""

    folder: Path
    summary: dict[str, Any]
    ran: int = 0  # runs this invocation finished
    resumed: int = 0  # runs found done in the manifest and not run again
    failed: dict[str, str] = field(default_factory=dict)  # runs failed for good: key -> error
    interrupted: bool = False

    @property
    def exit_status(self) -> int:
        return int(self.summary["exit_status"])

    @property
    def verdict(self) -> dict[str, Any]:
        verdict: dict[str, Any] = self.summary["verdict"]
        return verdict


def run_campaign(campaign: Campaign, out: str | Path, jobs: int | None = None, scheduler: str | None = None,
                 max_runs: int | None = None, run_reports: bool | None = None, junit: str | Path | None = None,
                 on_progress: Callable[[Progress], None] | None = None, html: bool = True,
                 gather: bool | None = None, worker_dir: str | None = None,
                 gather_limit_bytes: int = GATHER_LIMIT_BYTES) -> CampaignResult:
    """Run (or resume) a campaign in the folder `out`: runs/<grid point>/seed-<n>/ for each run, manifest.jsonl,
    campaign.json, runs.csv, campaign.html. jobs: local worker processes (default the core count); scheduler:
    an existing Dask scheduler's address instead; max_runs: run at most this many of the runs left. gather
    (default: the campaign's): workers write each run in worker_dir (default their temporary folder) and send it
    back packed, to be unpacked under `out`; a run folder over gather_limit_bytes stays on its worker."""
    folder = Path(out).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    started = time.time()
    gathering = campaign.gather if gather is None else gather
    points, tasks = plan(campaign, folder, run_reports,
                         Gather(worker_dir, gather_limit_bytes) if gathering else None)
    manifest = Manifest(folder / "manifest.jsonl")
    digests = {t.key: t.digest for t in tasks}
    before = manifest.read(digests)
    pending = [t for t in tasks if t.key not in before.done]
    removed = sweep_partials(folder / "runs")  # from a worker or a whole campaign killed before
    if max_runs is not None:
        pending = pending[:max(0, max_runs)]
    (folder / "campaign-spec.json").write_text(json.dumps(campaign.to_json(), indent=1, default=repr) + "\n")
    execution = execute(pending, manifest, jobs, scheduler, on_progress) if pending else Execution()
    removed += sweep_partials(folder / "runs")
    records = {**{k: e["record"] for k, e in before.done.items()}, **execution.records}
    summary = summarise(campaign, points, tasks, records, execution, folder)
    summary.update({"elapsed_s": round(time.time() - started, 3), "ran_now": len(execution.records),
                    "resumed": len(before.done),
                    "half_written_removed": removed})
    (folder / "campaign.json").write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    write_runs_csv(folder / "runs.csv", campaign, points, tasks, records, execution.failed)
    if html:
        from hil.campaign.report import write_report

        write_report(folder / "campaign.html", summary, [records.get(t.key) for t in tasks])
    if junit is not None:
        write_junit(junit, f"campaign {campaign.name}", summary["verdict"], summary["elapsed_s"])
    return CampaignResult(folder=folder, summary=summary, ran=len(execution.records), resumed=len(before.done),
                          failed=execution.failed, interrupted=execution.interrupted)


def summarise(campaign: Campaign, points: list[GridPoint], tasks: list[RunTask], records: dict[str, dict[str, Any]],
              execution: Execution, folder: Path) -> dict[str, Any]:
    """campaign.json: statistics per grid point and over all runs, the verdict and the exit status."""
    done = [records[t.key] for t in tasks if t.key in records]  # plan order: the same numbers whoever ran them
    per_point = []
    for i, p in enumerate(points):
        rows = [records[t.key] for t in tasks if t.point == i and t.key in records]
        per_point.append({"label": p.label, "scenario": p.scenario, "settings": dict(p.settings),
                          "planned": len(campaign.seeds), **group_stats(rows)})
    missing = len(tasks) - len(done)
    complete = missing == 0
    verdict = judge_campaign([(s["label"], s) for s in per_point], campaign.campaign_criteria,
                             source=campaign.source)
    if not complete:  # criteria over part of the campaign are not a verdict on it
        for row in verdict["criteria"]:
            if row["result"] != "not judged":
                row["detail"] += f" (incomplete: {len(done)} of {len(tasks)} runs)"
    if execution.interrupted:
        status = EXIT_INTERRUPTED
    elif not complete:
        status = EXIT_RUNS_MISSING
    elif verdict["result"] == FAIL:
        status = EXIT_CRITERION_FAILED
    else:
        status = EXIT_PASS
    return {
        "schema": 1, "campaign": campaign.name, "folder": str(folder), "spec": campaign.to_json(),
        "complete": complete, "interrupted": execution.interrupted,
        "runs": {"planned": len(tasks), "done": len(done), "failed": len(execution.failed),
                 "not_run": missing - len(execution.failed)},
        "failed_runs": execution.failed,
        "not_gathered": {k: records[k]["note"] for k in (t.key for t in tasks) if "note" in records.get(k, {})},
        "dashboard": execution.dashboard, "workers": execution.workers,
        "grid_keys": [k for k, _ in campaign.grid],
        "points": per_point, "all": group_stats(done), "verdict": verdict, "exit_status": status,
    }


def write_runs_csv(path: Path, campaign: Campaign, points: list[GridPoint], tasks: list[RunTask],
                   records: dict[str, dict[str, Any]], failed: dict[str, str]) -> None:
    """runs.csv: one row per planned run, in plan order, with its grid values and key figures."""
    grid_keys = [k for k, _ in campaign.grid]
    kinds = sorted({k for r in records.values() for k in r["outcomes"]["kinds"]})
    figures = ["hostiles", "hostiles_killed", "leaks", "rounds_launched", "fratricide", "friendly_neutral_killed",
               "gospa_mean_m", "launches"]
    kind_cols = [f"{k}_{c}" for k in kinds for c in ("present", *HOSTILE_RESULTS, "rounds")]
    header = ["key", "scenario", *grid_keys, "seed", "status", "verdict", "exit_status", *figures, *kind_cols,
              "wall_s", "worker", "folder", "error", "note"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for t in tasks:
            p = points[t.point]
            r = records.get(t.key)
            settings = dict(p.settings)
            row: list[Any] = [t.key, p.scenario, *(settings[k] for k in grid_keys), t.seed]
            if r is None:
                status = "failed" if t.key in failed else "not run"
                row += [status, "", "", *([""] * (len(figures) + len(kind_cols))), "", "", "", failed.get(t.key, ""),
                        ""]
            else:
                o = r["outcomes"]
                row += ["done", r["verdict"], r["exit_status"], *(o[c] if o[c] is not None else "" for c in figures)]
                for k in kinds:
                    kr = o["kinds"].get(k, {})
                    row += [kr.get(c, 0) for c in ("present", *HOSTILE_RESULTS, "rounds")]
                row += [r["wall_s"], r["worker"], r.get("folder", f"runs/{t.key}"), "", r.get("note", "")]
            w.writerow(row)


__all__ = ["EXIT_CRITERION_FAILED", "EXIT_INTERRUPTED", "EXIT_PASS", "EXIT_RUNS_MISSING", "CampaignResult",
           "run_campaign"]
