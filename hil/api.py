"""hil's Python API: run a scenario on a rig and get its result, verdict included (docs/API.md).

    import hil

    result = hil.run(scenario="raid", rig="mock", seed=1, time="virtual", criteria={"leaks": 0})
    assert result.passed, result.failures
    result.summary["gospa_mean_m"], result.verdict["criteria"], result.events[:3], result.paths.folder

This is what `hil run` does, without the command line: the same run folder, summary.json and verdict. A
configuration error raises hil.errors.ConfigError (one line); a rig that fails to come up raises LinkError.
The names and fields here are stable: new fields may be added, none removed or changed in meaning.
"""

from __future__ import annotations

import csv
import json
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from hil.drivers.faults import LinkFault, parse_faults
from hil.measure.verdict import FAIL, NOT_JUDGED, parse_criteria_option
from hil.rig import Rig
from hil.scenario import Scenario

TIME_MODES = ("virtual", "real")


@dataclass(frozen=True)
class RunPaths:
    """The run folder and its files (a file a run did not write is absent on disk)."""

    folder: Path

    @property
    def summary(self) -> Path:
        return self.folder / "summary.json"

    @property
    def events(self) -> Path:
        return self.folder / "events.csv"

    @property
    def decisions(self) -> Path:
        return self.folder / "decisions.jsonl"

    @property
    def tracks(self) -> Path:
        return self.folder / "tracks.csv"

    @property
    def recording(self) -> Path:
        return self.folder / "recording.pcapng"

    @property
    def report(self) -> Path:
        return self.folder / "report.html"


@dataclass(frozen=True)
class RunResult:
    """One run: summary.json's content (with its verdict), its events, and the run folder's other records."""

    summary: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)  # events.csv's rows, in time order
    paths: RunPaths | None = None

    @property
    def verdict(self) -> dict[str, Any]:
        verdict: dict[str, Any] = self.summary.get("verdict") or {}
        return verdict

    @property
    def passed(self) -> bool:
        """Every criterion passed or was not judged, and the rig held up (see exit_status for the whole rule)."""
        return self.exit_status == 0

    @property
    def failures(self) -> list[str]:
        """One line per failed criterion (measured against its limit) and per rig problem."""
        lines = [f"rig: {p}" for p in self.summary.get("rig_problems") or []]
        for c in self.verdict.get("criteria", []):
            if c["result"] == FAIL:
                unit = f" {c['unit']}" if c["unit"] else ""
                lines.append(f"{c['name']}: measured {c['measured']:g}{unit}, limit {c['op']} {c['limit']:g}{unit} "
                             f"({c['detail']})")
        return lines

    @property
    def not_judged(self) -> list[str]:
        return [f"{c['name']}: {c['detail']}" for c in self.verdict.get("criteria", []) if c["result"] == NOT_JUDGED]

    @property
    def exit_status(self) -> int:
        """What `hil run` exits with: 130/143 after a signal, 3 when the rig failed, 1 when a criterion failed."""
        from hil.commands.run import exit_status

        return exit_status(self.summary)

    @cached_property
    def decisions(self) -> list[dict[str, Any]]:
        """decisions.jsonl: each fire decision with fire control's explanation, refusals and kill assessments."""
        if self.paths is None or not self.paths.decisions.is_file():
            return []
        return [json.loads(line) for line in self.paths.decisions.read_text().splitlines() if line.strip()]

    @cached_property
    def tracks(self) -> list[dict[str, str]]:
        """tracks.csv's rows (the host's tracks once a second), as text fields."""
        if self.paths is None or not self.paths.tracks.is_file():
            return []
        with self.paths.tracks.open(newline="") as f:
            return list(csv.DictReader(f))


def run(scenario: str | Path | Scenario = "raid", rig: str | Path | Rig | None = None, seed: int | None = None,
        time: str = "virtual", criteria: dict[str, Any] | str | None = None, out: str | Path | None = None,
        duration: float | None = None, tracker: str | None = None, fire_control: str | None = None,
        faults: tuple[str | LinkFault, ...] = (), record: bool = True, report: bool = False) -> RunResult:
    """Run a scenario (a shipped name, a file, or a Scenario) on a rig (name, file, Rig; default the mock rig).

    seed: the scenario's own when None. time: "virtual" (lockstep, as fast as the host computes) or "real".
    criteria: over the rig's and the scenario's, as a table ({"leaks": 0, "hostiles_killed": ["bomber-1"]}) or
    the --criteria text. out: the run folder (a new temporary folder when None). duration: seconds (the
    scenario's when None). tracker / fire_control: a plug-in choice (docs/PLUGINS.md). faults: link faults as
    `--fault` takes them. record: write recording.pcapng. report: render report.html."""
    from hil.errors import ConfigError
    from hil.runtime import RunOptions, run_chain

    if time not in TIME_MODES:
        raise ConfigError("time", "value", f"is virtual or real, got {time!r}")
    sc = scenario if isinstance(scenario, Scenario) else Scenario.load(scenario)
    rg = rig if isinstance(rig, Rig) else Rig.load(rig)
    table = parse_criteria_option(criteria) if isinstance(criteria, str) else dict(criteria or {})
    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix=f"hil-{sc.name}-"))
    texts = [f for f in faults if isinstance(f, str)]
    parsed = tuple(f for f in faults if isinstance(f, LinkFault)) + parse_faults(texts)
    if duration is not None and not duration > 0:
        raise ConfigError("duration", "value", "must be positive")
    options = RunOptions(scenario=sc, rig=rg, seed=sc.seed if seed is None else seed, time_mode=time, out_dir=folder,
                         duration_s=duration, record=record, report=report, faults=parsed, tracker=tracker,
                         fire_control=fire_control, criteria=table)
    chain_events: list[dict[str, Any]] = []
    summary = run_chain(options, events=chain_events)
    return RunResult(summary=summary, events=chain_events, paths=RunPaths(folder))


__all__ = ["RunPaths", "RunResult", "run"]
