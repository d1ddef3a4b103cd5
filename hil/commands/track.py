"""`hil track`: track recorded plots offline (plots CSV + sensors.toml in, confirmed tracks CSV out)."""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hil.errors import ConfigError
from hil.ext.tracker_types import SensorDef, TrackerConfig
from hil.host.seams import CONFIRMED, Tracker
from hil.host.tracking import load_sensors, sensor_arrays
from hil.measure.metrics import TrackingScore

PLOT_COLUMNS = ["time_s", "sensor", "range_m", "azimuth_deg", "elevation_deg", "range_rate_mps"]
TRUTH_COLUMNS = ["time_s", "target", "x_m", "y_m", "z_m", "vx_mps", "vy_mps", "vz_mps"]
TRACK_COLUMNS = ["time_s", "track", "x_m", "y_m", "z_m", "vx_mps", "vy_mps", "vz_mps", "status"]


@dataclass
class PlotTable:
    """Plots in SI units, sorted by time; sensor is an index into the sensors file."""

    t_s: np.ndarray
    sensor: np.ndarray
    range_m: np.ndarray
    azimuth_rad: np.ndarray
    elevation_rad: np.ndarray
    range_rate_mps: np.ndarray
    mode3a: np.ndarray


def _number(text: str, source: str, line: int, column: str, allow_empty: bool = False) -> float:
    if allow_empty and text.strip() == "":
        return math.nan
    try:
        v = float(text)
    except ValueError:
        raise ConfigError(source, f"line {line}", f"{column} is not a number: {text!r}") from None
    if not math.isfinite(v):
        raise ConfigError(source, f"line {line}", f"{column} must be finite, got {text!r}")
    return v


def _header(reader: Iterator[list[str]], source: str, expected: list[str], optional: list[str]) -> list[str]:
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ConfigError(source, "line 1", f"empty file (expected a header: {','.join(expected)})") from None
    if header[: len(expected)] != expected or any(h not in optional for h in header[len(expected):]):
        raise ConfigError(source, "line 1", f"header must be {','.join(expected)} (optional: {','.join(optional)}),"
                                            f" got {','.join(header)}")
    return header


def read_plots(path: str | Path, sensor_names: list[str]) -> PlotTable:
    """Plots CSV; sensor is a name from the sensors file or its 0-based index. Errors name the line."""
    source = str(path)
    rows: list[tuple[float, int, float, float, float, float, int]] = []
    index = {name: i for i, name in enumerate(sensor_names)}
    if not Path(path).is_file():
        raise ConfigError(source, "file", "no such plots file")
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = _header(reader, source, PLOT_COLUMNS, ["mode3a"])
        for line, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ConfigError(source, f"line {line}", f"expected {len(header)} fields, got {len(row)}")
            name = row[1].strip()
            if name in index:
                sensor = index[name]
            elif name.isdigit() and int(name) < len(sensor_names):
                sensor = int(name)
            else:
                raise ConfigError(source, f"line {line}", f"unknown sensor {name!r} (known: {', '.join(sensor_names)})")
            t = _number(row[0], source, line, "time_s")
            rng = _number(row[2], source, line, "range_m")
            if rng <= 0:
                raise ConfigError(source, f"line {line}", f"range_m must be positive, got {row[2]!r}")
            az = _number(row[3], source, line, "azimuth_deg")
            el = _number(row[4], source, line, "elevation_deg")
            if not -90.0 <= el <= 90.0:
                raise ConfigError(source, f"line {line}", f"elevation_deg must be in [-90, 90], got {row[4]!r}")
            rr = _number(row[5], source, line, "range_rate_mps", allow_empty=True)
            code = -1
            if len(row) > 6 and row[6].strip():
                try:
                    code = int(row[6].strip(), 8)
                except ValueError:
                    raise ConfigError(source, f"line {line}", f"mode3a must be octal digits, got {row[6]!r}") from None
            rows.append((t, sensor, rng, math.radians(az), math.radians(el), rr, code))
    a = np.array(rows, dtype=np.float64).reshape(len(rows), 7)
    order = np.argsort(a[:, 0], kind="stable")
    a = a[order]
    return PlotTable(a[:, 0].copy(), a[:, 1].astype(np.int32), a[:, 2].copy(), a[:, 3].copy(), a[:, 4].copy(),
                     a[:, 5].copy(), a[:, 6].astype(np.int32))


def read_truth(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time_s[n], target[n], state[n, 6]) of a truth CSV, sorted by time.

    A target is any label, a number or a name such as a run folder's "bomber-1"; target[n] numbers the labels in
    the order they first appear (scoring only needs one identity per target).
    """
    source = str(path)
    if not Path(path).is_file():
        raise ConfigError(source, "file", "no such truth file")
    times: list[float] = []
    ids: list[int] = []
    states: list[list[float]] = []
    labels: dict[str, int] = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        _header(reader, source, TRUTH_COLUMNS, [])
        for line, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(TRUTH_COLUMNS):
                raise ConfigError(source, f"line {line}", f"expected {len(TRUTH_COLUMNS)} fields, got {len(row)}")
            times.append(_number(row[0], source, line, "time_s"))
            label = row[1].strip()
            if not label:
                raise ConfigError(source, f"line {line}", "target is empty (a number or a name)")
            ids.append(labels.setdefault(label, len(labels)))
            states.append([_number(v, source, line, c) for v, c in zip(row[2:], TRUTH_COLUMNS[2:], strict=True)])
    t = np.array(times)
    order = np.argsort(t, kind="stable")
    return t[order], np.array(ids, np.int64)[order], np.array(states, np.float64).reshape(len(t), 6)[order]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plots", required=True, help="plots CSV: " + ",".join(PLOT_COLUMNS) + "[,mode3a]")
    parser.add_argument("--sensors", required=True, help="sensors TOML: [[sensor]] name, site, sigmas")
    parser.add_argument("--out", help="confirmed tracks CSV after each scan: " + ",".join(TRACK_COLUMNS)
                        + " (default: not written, only the figures are printed)")
    parser.add_argument("--truth", help="truth CSV (" + ",".join(TRUTH_COLUMNS) + ") to score GOSPA and identity")
    parser.add_argument("--scan-period-s", type=float, default=1.0, help="scan period of the radars (default 1)")
    parser.add_argument("--model", choices=["imm", "cv"], default="imm",
                        help="motion model of hil's tracker (default imm)")
    parser.add_argument("--tracker", default=None, metavar="CHOICE",
                        help='"hil" (default), "reference", an installed plug-in\'s name, or pkg.module:factory '
                             "(docs/PLUGINS.md): the plug-in gets a scenario holding the sensors as its radars")
    parser.add_argument("--gospa-c-m", type=float, default=1000.0, help="GOSPA cut-off c (default 1000 m)")


def main(args: argparse.Namespace) -> int:
    if not args.scan_period_s > 0:
        raise ConfigError("--scan-period-s", "value", "must be positive")
    sensors = load_sensors(args.sensors)
    plots = read_plots(args.plots, [s.name for s in sensors])
    truth = read_truth(args.truth) if args.truth else None
    tracker = _tracker(args.tracker, args.model, sensors, args.scan_period_s)
    score = TrackingScore(c=args.gospa_c_m)
    kernel_s: list[float] = []
    n_rows = 0
    # without --out the run is for its figures (scores against --truth): the rows go nowhere
    with open(args.out or os.devnull, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(TRACK_COLUMNS)
        if len(plots.t_s):
            t_start = float(plots.t_s[0])
            n_scans = math.floor((float(plots.t_s[-1]) - t_start) / args.scan_period_s) + 1
            edges = np.searchsorted(plots.t_s, t_start + args.scan_period_s * np.arange(1, n_scans + 1), side="left")
            begin = 0
            for k, end in enumerate(edges.tolist()):
                t_end = t_start + args.scan_period_s * (k + 1)
                sl = slice(begin, end)
                begin = end
                tick = time.perf_counter()
                tracker.update(plots.t_s[sl], plots.sensor[sl], plots.range_m[sl], plots.azimuth_rad[sl],
                               plots.elevation_rad[sl], plots.range_rate_mps[sl], plots.mode3a[sl])
                for i in range(len(sensors)):
                    tracker.sector_swept(i, t_end, 0.0, 2.0 * math.pi)
                kernel_s.append(time.perf_counter() - tick)
                snap = tracker.tracks(t_end)
                confirmed = snap.status == CONFIRMED
                for tid, x in zip(snap.track_id[confirmed].tolist(), snap.state[confirmed].tolist(), strict=True):
                    out.writerow([f"{t_end:.3f}", tid, *(f"{v:.2f}" for v in x), "confirmed"])
                    n_rows += 1
                if truth is not None:
                    _score(score, truth, tracker, t_end, args.scan_period_s)
    times_us = np.array(kernel_s) * 1e6
    print(f"hil track: {len(plots.t_s)} plots from {len(sensors)} sensor(s), {len(kernel_s)} scans, "
          f"{n_rows} confirmed track rows" + (f" -> {args.out}" if args.out else " (no --out: not written)"))
    if len(times_us):
        print(f"kernel time per scan: median {np.median(times_us):.0f} µs, p99 {np.percentile(times_us, 99):.0f} µs, "
              f"max {times_us.max():.0f} µs")
    counters = getattr(tracker, "counters", None)
    if callable(counters):
        print("counters: " + ", ".join(f"{k} {v}" for k, v in counters().items()))
    if truth is not None:
        s = score.summary()
        print(f"GOSPA (c={args.gospa_c_m:g} m, p=1, alpha=2): mean {s['gospa_mean_m']:.1f} m, per live target "
              f"{s['gospa_per_target_m']:.1f} m (localisation {s['localisation_mean_m']:.1f}, missed "
              f"{s['missed_mean_m']:.1f}, false {s['false_mean_m']:.1f}); OSPA {s['ospa_mean_m']:.1f} m; "
              f"identity switches {s['identity_switches']}, track breaks {s['track_breaks']}")
    return 0


def _tracker(choice: str | None, model: str, sensors: list[SensorDef], scan_period_s: float) -> Tracker:
    """hil's kernel with the --model asked for, or the tracker a choice names, built for a scenario holding just
    the sensors (the seam's factories take a scenario)."""
    if choice in (None, "hil"):
        from hil.ext.tracker import Tracker as KernelTracker  # compiled kernel: import only when there is work for it

        sites, sigmas, max_range = sensor_arrays(sensors)
        kernel: Tracker = KernelTracker(TrackerConfig(model=model), sites, sigmas=sigmas, max_range_m=max_range)
        return kernel
    from hil.host.plugins import make_tracker
    from hil.scenario import RadarSpec, Scenario

    radars = tuple(RadarSpec(name=s.name, site=s.site_enu_m, scan_period_s=scan_period_s,
                             sigma_range_m=s.sigma_range_m, sigma_azimuth_rad=s.sigma_azimuth_rad,
                             sigma_elevation_rad=s.sigma_elevation_rad, sigma_range_rate_mps=s.sigma_range_rate_mps,
                             max_range_m=s.max_range_m) for s in sensors)
    return make_tracker(Scenario(name="hil track", duration_s=0.0, seed=0, targets=(), radars=radars), choice)


def _score(score: TrackingScore, truth: tuple[np.ndarray, np.ndarray, np.ndarray], tracker: object,
           t_end: float, period: float) -> None:
    """Score at the last truth sample of this scan (if any), with tracks predicted to that instant."""
    t, ids, states = truth
    k = int(np.searchsorted(t, t_end + 1e-9, side="right")) - 1
    if k < 0 or t[k] <= t_end - period:
        return
    at = t == t[k]
    snap = tracker.tracks(float(t[k]))  # type: ignore[attr-defined]
    confirmed = snap.status == CONFIRMED
    score.step(ids[at], states[at, :3], snap.track_id[confirmed], snap.state[confirmed, :3])
