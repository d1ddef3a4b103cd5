"""The run folder: summary.json and the evidence behind it, written as the run goes (see README, "Run folder")."""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from hil.scenario import Scenario

log = logging.getLogger("hil.run")

PLOT_COLUMNS = ["time_s", "sensor", "range_m", "azimuth_deg", "elevation_deg", "range_rate_mps"]
TRUTH_COLUMNS = ["time_s", "target", "x_m", "y_m", "z_m", "vx_mps", "vy_mps", "vz_mps"]
TRACK_COLUMNS = ["time_s", "track", "x_m", "y_m", "z_m", "vx_mps", "vy_mps", "vz_mps", "status"]
GOSPA_COLUMNS = ["time_s", "gospa_m", "localisation_m", "missed_m", "false_m", "n_truth", "n_tracks"]
EVENT_COLUMNS = ["time_s", "event", "track", "target", "launcher", "detail"]


class RunWriter:
    def __init__(self, out_dir: Path, scenario: Scenario, record: bool = True, report: bool = True) -> None:
        self.report = report
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.scenario = scenario
        self._files: list[TextIO] = []
        self._plots = self._csv("plots.csv", PLOT_COLUMNS)
        self._truth = self._csv("truth.csv", TRUTH_COLUMNS)
        self._tracks = self._csv("tracks.csv", TRACK_COLUMNS)
        self._gospa = self._csv("gospa.csv", GOSPA_COLUMNS)
        self._events = self._csv("events.csv", EVENT_COLUMNS)
        self._decisions = open(self.dir / "decisions.jsonl", "w")  # noqa: SIM115 - closed in finish()
        self._files.append(self._decisions)
        self._recording: Any = None
        if record:
            from hil.recording import Recorder

            self._recording = Recorder(self.dir / "recording.pcapng")
        self._write_sensors()
        if Path(scenario.source).is_file():  # the run folder stands alone: report and replay read it
            shutil.copyfile(scenario.source, self.dir / "scenario.toml")

    @property
    def recorder(self) -> Any:
        return self._recording.record if self._recording else None

    def _csv(self, name: str, columns: list[str]) -> Any:
        f = open(self.dir / name, "w", newline="")  # noqa: SIM115 - closed in finish()
        self._files.append(f)
        w = csv.writer(f)
        w.writerow(columns)
        return w

    def _write_sensors(self) -> None:
        """The radars as `hil track --sensors` reads them, so the run's plots can be re-tracked offline."""
        lines = []
        for r in self.scenario.radars:
            lines += [
                "[[sensor]]", f'name = "{r.name}"', f"site_enu_m = [{r.site[0]}, {r.site[1]}, {r.site[2]}]",
                f"sigma_range_m = {r.sigma_range_m}", f"sigma_azimuth_deg = {math.degrees(r.sigma_azimuth_rad)}",
                f"sigma_elevation_deg = {math.degrees(r.sigma_elevation_rad)}",
                f"sigma_range_rate_mps = {r.sigma_range_rate_mps}", "",
            ]
        (self.dir / "sensors.toml").write_text("\n".join(lines))

    def plots(self, t_s: np.ndarray, sensor: np.ndarray, rng: np.ndarray, az: np.ndarray, el: np.ndarray,
              rr: np.ndarray) -> None:
        for row in zip(t_s.tolist(), sensor.tolist(), rng.tolist(), np.degrees(az).tolist(),
                       np.degrees(el).tolist(), rr.tolist(), strict=True):
            self._plots.writerow([f"{row[0]:.6f}", row[1], f"{row[2]:.2f}", f"{row[3]:.5f}", f"{row[4]:.5f}",
                                  "" if math.isnan(row[5]) else f"{row[5]:.2f}"])

    def event(self, row: dict[str, Any]) -> None:
        self._events.writerow([row[c] for c in EVENT_COLUMNS])

    def decision(self, record: dict[str, Any]) -> None:
        self._decisions.write(json.dumps(record, default=_json_default) + "\n")

    def metrics(self, t: float, snap: Any, tracks: Any, confirmed: np.ndarray, g: Any) -> None:
        for row, state in zip(snap.index.tolist(), snap.state, strict=True):
            self._truth.writerow([f"{t:.3f}", self.scenario.targets[row].name, *(f"{v:.2f}" for v in state)])
        for tid, state, ok in zip(tracks.track_id.tolist(), tracks.state, confirmed.tolist(), strict=True):
            if ok:
                self._tracks.writerow([f"{t:.3f}", tid, *(f"{v:.2f}" for v in state), "confirmed"])
        self._gospa.writerow([f"{t:.3f}", f"{g.total:.2f}", f"{g.localisation:.2f}", f"{g.missed:.2f}",
                              f"{g.false:.2f}", len(snap.index), int(confirmed.sum())])

    def finish(self, summary: dict[str, Any], latency: Any, floor: Any = None) -> None:
        encoded = latency.encode()
        if floor is not None:
            from hil.latency import encode_histogram

            encoded["floor"] = encode_histogram(floor)
        (self.dir / "latency.json").write_text(json.dumps(encoded, indent=1))
        (self.dir / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
        for f in self._files:
            f.close()
        if self._recording:
            self._recording.close()
        if not self.report:
            return
        try:
            from hil.report import render_report

            render_report(self.dir)
        except Exception as e:  # the report is evidence, not the result: never lose a run's end to it
            log.warning("no HTML report: %s", e)


def _json_default(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)
