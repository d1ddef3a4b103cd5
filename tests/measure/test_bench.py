"""`hil bench`: results survive a round trip, --compare flags a regression and passes an improvement."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hil.errors import ConfigError, HilError
from hil.measure.bench import (
    SCHEMA,
    Load,
    compare,
    format_changes,
    format_results,
    load_results,
    load_scenario,
    new_results,
    parse_benchmark_json,
    run_kernels,
    run_record,
    save_results,
)
from hil.measure.floor import FloorProbe
from hil.measure.latency import STAGES, DeadlineMonitor, StageLatency

REPO = Path(__file__).resolve().parents[2]


def _latency(scale: float, seed: int = 1) -> StageLatency:
    """Stage latencies with a lognormal body around 50 µs × scale (host_total around 400 µs × scale)."""
    rng = np.random.default_rng(seed)
    lat = StageLatency()
    for k, stage in enumerate(STAGES):
        base = 50_000 * (k + 1) * scale
        for v in rng.lognormal(np.log(base), 0.3, size=2000).astype(np.int64).tolist():
            if stage == "sensor_to_shooter":
                lat.record_with_uncertainty(stage, v, 30_000)
            else:
                lat.record(stage, v)
    return lat


@pytest.fixture(scope="module")
def floor() -> dict[str, Any]:
    with FloorProbe(period_us=1000, in_process=True) as probe:
        time.sleep(0.1)
    return {"probe": probe.summary(), "cyclictest": None}


def _results(scale: float, floor: dict[str, Any], load: Load | None = None) -> dict[str, Any]:
    d = DeadlineMonitor(period_ns=5_000_000)
    for i in range(200):
        d.record(lateness_ns=int(i * 20_000 * scale), compute_ns=300_000)
    res = new_results(argv=["hil", "bench"])
    res["runs"].append(run_record(load or Load(), _latency(scale), d.summary(), floor,
                                  {"plots": 1000, "decisions": 10, "launches": 10}))
    return res


def test_results_round_trip_through_json(tmp_path: Path, floor: dict[str, Any]) -> None:
    res = _results(1.0, floor)
    path = tmp_path / "r.json"
    save_results(res, path)
    again = load_results(path)
    assert again == json.loads(json.dumps(res))
    run = again["runs"][0]
    assert Load(**run["load"]) == Load()
    # the histograms kept in the file reproduce the summaries printed from it
    assert StageLatency.decode(run["histograms"]).summary() == run["stages"]
    m = again["machine"]
    assert m["cores"] and m["kernel"] and m["versions"]["numpy"] == np.__version__
    assert again["schema"] == SCHEMA and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("text", ["", "{", "[]", '{"schema": "other"}', json.dumps({"schema": SCHEMA}),
                                  json.dumps({"schema": SCHEMA, "runs": [1]})])
def test_a_file_that_is_not_bench_results_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_results(path)
    with pytest.raises(ConfigError, match="no such"):
        load_results(tmp_path / "missing.json")


def test_compare_flags_a_regression(floor: dict[str, Any]) -> None:
    rows, regressed = compare(_results(1.0, floor), _results(1.6, floor))
    assert regressed
    flagged = {r.figure for r in rows if r.verdict == "regression"}
    assert any("host_total p99" in f for f in flagged)
    assert all(f.endswith("p99") for f in flagged)  # only p99 decides; other figures are shown
    text = format_changes(rows, 0.25, 10.0, regressed)
    assert "REGRESSION" in text and "+6" in text  # +60 % printed on the regressed lines


def test_compare_passes_an_improvement_and_noise(floor: dict[str, Any]) -> None:
    rows, regressed = compare(_results(1.0, floor), _results(0.6, floor))
    assert not regressed
    assert any(r.verdict == "improved" and "p99" in r.figure for r in rows)
    _, regressed = compare(_results(1.0, floor), _results(1.1, floor))  # +10 % is inside the threshold
    assert not regressed


def test_a_small_absolute_change_is_not_a_regression(floor: dict[str, Any]) -> None:
    old, new = _results(1.0, floor), _results(1.0, floor)
    old["runs"][0]["stages"]["decode"]["p99"] = 6.0
    new["runs"][0]["stages"]["decode"]["p99"] = 9.0  # +50 %, but 3 µs
    _, regressed = compare(old, new, threshold=0.25, min_delta_us=10.0)
    assert not regressed
    _, regressed = compare(old, new, threshold=0.25, min_delta_us=1.0)
    assert regressed


def test_runs_are_matched_by_load(floor: dict[str, Any]) -> None:
    rows, regressed = compare(_results(1.0, floor, Load(targets=10)), _results(3.0, floor, Load(targets=100)))
    assert not regressed  # different loads are never compared figure by figure
    assert [r.figure for r in rows if r.verdict == "n/a" and "only" in r.figure] == [
        "100 tgt/1 rdr/2 lnc: only in new", "10 tgt/1 rdr/2 lnc: only in old"]


def test_kernel_medians_are_judged(floor: dict[str, Any]) -> None:
    old, new = _results(1.0, floor), _results(1.0, floor)
    old["kernels"] = {"tests/bench/bench_x.py::test_track": {"median_us": 100.0, "min_us": 90.0, "rounds": 50}}
    new["kernels"] = copy.deepcopy(old["kernels"])
    new["kernels"]["tests/bench/bench_x.py::test_track"]["median_us"] = 140.0
    rows, regressed = compare(old, new)
    assert regressed and rows[-1].figure.startswith("kernel") and rows[-1].verdict == "regression"


def test_the_table_shows_each_stage_beside_the_floor(floor: dict[str, Any]) -> None:
    text = format_results(_results(1.0, floor))
    lines = text.splitlines()
    assert any(line.startswith("host_total") for line in lines)
    assert any(line.startswith("floor: probe") for line in lines)
    assert "p99/floor" in text and "± 30" in text and "overruns" in text
    assert "host_total p99 ≤ 1000 µs: met" in text  # about 500 µs in this made-up run
    assert "NOT met" in format_results(_results(3.0, floor))
    assert "goal" not in format_results(_results(1.0, floor, Load(targets=10)))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hil", "bench", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_hil_bench_compare_exit_status(tmp_path: Path, floor: dict[str, Any]) -> None:
    paths = {}
    for name, scale in (("base", 1.0), ("slower", 1.6), ("faster", 0.6)):
        paths[name] = tmp_path / f"{name}.json"
        save_results(_results(scale, floor), paths[name])
    worse = _cli("--compare", str(paths["base"]), "--against", str(paths["slower"]))
    assert worse.returncode == 1, worse.stderr
    assert "REGRESSION" in worse.stdout
    better = _cli("--compare", str(paths["base"]), "--against", str(paths["faster"]))
    assert better.returncode == 0, better.stderr
    assert "no regression" in better.stdout
    missing = _cli("--compare", str(tmp_path / "nope.json"), "--against", str(paths["base"]))
    assert missing.returncode == 2 and "no such results file" in missing.stderr


def test_pytest_benchmark_json_is_read(tmp_path: Path) -> None:
    bench = tmp_path / "bench_tiny.py"
    bench.write_text("def test_sum(benchmark):\n    assert benchmark(sum, range(100)) == 4950\n")
    kernels = run_kernels([str(bench)], ["-o", "python_files=bench_*.py", "--benchmark-min-rounds=5",
                                         "--benchmark-max-time=0.05"])
    (name, k), = kernels.items()
    assert name.endswith("test_sum")
    assert 0 < k["min_us"] <= k["median_us"] <= k["max_us"] and k["rounds"] >= 5
    with pytest.raises(HilError):
        parse_benchmark_json({"benchmarks": [{"fullname": "x"}]})


def test_a_load_is_the_scenario_it_says() -> None:
    sc = load_scenario(Load(targets=12, clutter=5.0, radars=2, launchers=3, duration_s=20.0))
    assert (len(sc.targets), len(sc.radars), len(sc.launchers)) == (12, 2, 3)
    assert all(r.clutter_per_scan == 5.0 for r in sc.radars) and sc.duration_s == 20.0
    for t in sc.targets:  # every target closes on the defended area, so fire control has work
        assert np.dot(t.position[:2], t.velocity[:2]) < 0


@pytest.mark.slow
def test_hil_bench_runs_the_chain_beside_the_floor(tmp_path: Path) -> None:
    pytest.importorskip("hil.runtime", reason="the runtime (hil.runtime.run_chain) is not importable")
    out = tmp_path / "bench.json"
    r = _cli("--duration", "6", "--sweep", "5,10", "--launchers", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    res = load_results(out)
    assert [run["load"]["targets"] for run in res["runs"]] == [5, 10]
    for run in res["runs"]:
        assert run["stages"]["decode"]["count"] > 0 and run["stages"]["track"]["count"] > 0
        assert run["floor"]["probe"]["count"] > 0 and run["deadline"]["iterations"] > 0
    assert "floor: probe" in r.stdout and "host_total" in r.stdout
