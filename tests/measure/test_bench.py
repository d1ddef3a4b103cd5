"""`hil bench`: results survive a round trip, --compare flags a regression and passes an improvement and refuses
files of different kinds or loads; goals and criteria are judged into a verdict with hil run's exit statuses and
JUnit."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hil.errors import ConfigError, HilError
from hil.measure.bench import (
    SCHEMA,
    Load,
    _loads,
    add_arguments,
    compare,
    format_changes,
    format_results,
    is_default_load,
    load_results,
    load_scenario,
    new_results,
    parse_benchmark_json,
    run_kernels,
    run_record,
    save_results,
)
from hil.measure.bench_criteria import (
    HOST_P99_GOAL_US,
    bench_criteria,
    bench_verdict_lines,
    judge_bench,
    write_bench_junit,
)
from hil.measure.floor import FloorProbe
from hil.measure.latency import STAGES, DeadlineMonitor, StageLatency
from tests.helpers import REPO


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
    assert "p99/floor" in text and "clock sync ± 30 µs (worst 30 µs)" in text and "overruns" in text


def _row(text: str, name: str) -> list[str]:
    """A table row's cells: stage, count, p50, p90, p99, p99.9, max, p99/floor (then any clock-sync note)."""
    (line,) = [line for line in text.splitlines() if line.startswith(name + " ")]
    return re.split(r"\s{2,}", line.strip())


def test_the_table_shows_no_percentile_its_samples_cannot_carry(floor: dict[str, Any]) -> None:
    res = _results(1.0, floor)
    stages = res["runs"][0]["stages"]
    stages["host_total"]["count"] = 180  # enough for a p50 and a p90, not for a p99 (1,000) or a p99.9 (10,000)
    stages["command"]["count"] = 18  # not even enough for a p50 (20)
    text = format_results(res)
    _, count, p50, p90, p99, p999, top, ratio = _row(text, "host_total")
    assert count == "180" and p50.endswith(" µs") and p90.endswith(" µs") and top.endswith(" µs")
    assert (p99, p999, ratio) == ("–", "–", "–")
    command = _row(text, "command")  # the max of any sample is shown
    assert command[1:6] == ["18", "–", "–", "–", "–"] and command[6].endswith(" µs") and command[7] == "–"
    decode = _row(text, "decode")  # 2,000 samples: a p99 but no p99.9 ...
    assert decode[4].endswith(" µs") and decode[5] == "–"
    assert decode[7] == "–"  # ... and no multiple of a floor measured for 0.1 s, too short for its own p99
    res = copy.deepcopy(res)
    res["runs"][0]["floor"]["probe"]["count"] = 5000
    assert _row(format_results(res), "decode")[7].endswith("×")
    assert "–: too few samples for that percentile" in text


def test_sensor_to_shooter_reads_in_ms_and_is_not_put_over_the_floor(floor: dict[str, Any]) -> None:
    res = _results(1.0, floor)
    res["runs"][0]["stages"]["sensor_to_shooter"].update(p50=50_823.0, p90=801_112.0, p99=936_378.0,
                                                         p99_9=936_378.0, max=936_378.0, uncertainty_us=29_049.0,
                                                         uncertainty_max_us=39_518.0)
    row = _row(format_results(res), "sensor_to_shooter")
    assert row[2:] == ["50.8 ms", "801 ms", "936 ms", "–", "936 ms", "–", "clock sync ± 29.0 ms (worst 39.5 ms)"]


def test_an_unknown_version_is_left_out_of_the_machine_line(floor: dict[str, Any]) -> None:
    res = _results(1.0, floor)
    res["machine"]["versions"].update(Cython=None, numpy="2.0.1")
    first = format_results(res).splitlines()[0]
    assert "numpy 2.0.1" in first and "Cython" not in first and "None" not in first


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
    sc = load_scenario(Load(targets=12, clutter=5.0, radars=2, launchers=3, duration_s=20.0, sustained=False))
    assert (len(sc.targets), len(sc.radars), len(sc.launchers)) == (12, 2, 3)
    assert all(r.clutter_per_scan == 5.0 for r in sc.radars) and sc.duration_s == 20.0
    for t in sc.targets:  # every target closes on the defended area, so fire control has work
        assert np.dot(t.position[:2], t.velocity[:2]) < 0
    assert all(t.start_s == 0.0 for t in sc.targets)


def test_a_sustained_load_sends_hostiles_all_through_the_run() -> None:
    """After the first targets, more enter evenly through the run, 30-40 km out and inbound on the defended area,
    at 0.8 of the rate the launchers kill (3 launchers, one round a second each at pk 0.85: 2.04 a second)."""
    sc = load_scenario(Load(targets=12, launchers=3, duration_s=20.0))
    first, entering = sc.targets[:12], sc.targets[12:]
    assert all(t.start_s == 0.0 for t in first) and len(entering) == 40
    starts = [t.start_s for t in entering]
    assert starts == sorted(starts) and 0.0 < starts[0] < 1.0 and 19.0 < starts[-1] < 20.0
    assert len({t.name for t in sc.targets}) == len(sc.targets)
    for t in entering:
        assert 30_000.0 <= np.hypot(*t.position[:2]) <= 40_000.0 and t.allegiance == "hostile"
        (x, y), (vx, vy) = t.position[:2], t.velocity[:2]
        passes_within_m = abs(x * vy - y * vx) / np.hypot(vx, vy)  # aimed at a point of the 16 km square
        assert np.dot(t.position[:2], t.velocity[:2]) < 0 and passes_within_m <= 8_000.0 * np.sqrt(2)
    assert len(load_scenario(Load(targets=0, duration_s=20.0)).targets) == 0  # nothing to sustain


@pytest.mark.timeout(120)
def test_fire_control_keeps_firing_through_a_sustained_load(tmp_path: Path) -> None:
    """The whole chain in virtual time, 90 s: on the sustained load launches go on to the end (a long bench gathers
    the fires a host_total p99 needs); on the first targets alone they stop once those are killed."""
    from hil.rig import Rig
    from hil.runtime import RunOptions, run_chain

    def late_launches(sustained: bool) -> int:
        load = Load(duration_s=90.0, sustained=sustained)
        summary = run_chain(RunOptions(scenario=load_scenario(load), rig=Rig.load(), seed=1, time_mode="virtual",
                                       out_dir=tmp_path / str(sustained), duration_s=90.0, record=False,
                                       report=False))
        assert summary["friendly_engagements"] == 0
        return sum(1 for r in summary["plant"]["rounds"] if r["launch_s"] >= 60.0)

    assert late_launches(False) == 0
    assert late_launches(True) >= 40  # about 1.9 a second in the last 30 s


# --- the verdict -----------------------------------------------------------------------------------------


def _judge(results: dict[str, Any], option: str = "", rig: dict[str, Any] | None = None) -> dict[str, Any]:
    return judge_bench(results, bench_criteria(option, rig, "rig.toml", baseline=True), is_default_load)


def test_the_host_total_goal_is_judged_at_the_default_load_alone(floor: dict[str, Any]) -> None:
    met = _judge(_results(1.0, floor))  # host_total p99 about 500 µs from 2,000 samples
    (row,) = met["criteria"]
    assert (row["name"], row["where"], row["limit"], row["result"]) == (
        "host_total_p99_us", "40 targets", HOST_P99_GOAL_US, "pass")
    assert met["result"] == "pass" and row["measured"] < HOST_P99_GOAL_US
    missed = _judge(_results(3.0, floor))
    assert missed["result"] == "fail" and missed["failed"] == ["host_total_p99_us @ 40 targets"]
    assert bench_verdict_lines(missed)[0] == "VERDICT: FAIL (host_total_p99_us @ 40 targets)"
    assert _judge(_results(3.0, floor, Load(targets=10)))["criteria"] == []  # the goal is the default load's


def test_a_p99_from_too_few_samples_is_not_judged(floor: dict[str, Any]) -> None:
    res = _results(3.0, floor)  # a p99 over the goal ...
    res["runs"][0]["stages"]["host_total"]["count"] = 12  # ... from 12 samples
    verdict = _judge(res)
    assert verdict["result"] == "pass" and verdict["not_judged"] == ["host_total_p99_us @ 40 targets"]
    assert verdict["criteria"][0]["measured"] is None
    assert "12 samples; a p99 needs 1,000" in bench_verdict_lines(verdict)[2]
    # and how long a bench of this load would take to judge it, at the rate this one gathered them (12 in 30 s)
    assert res["runs"][0]["load"]["duration_s"] == 30.0
    assert "about --duration 2,500 s at this load's rate" in bench_verdict_lines(verdict)[2]
    # nothing judged is not called a pass, nor is a bench no criterion applied to
    assert bench_verdict_lines(verdict)[0].startswith("VERDICT: NOTHING JUDGED (too few samples for every criterion")
    assert bench_verdict_lines(verdict)[0].endswith("; not judged: host_total_p99_us @ 40 targets")
    none = _judge(_results(3.0, floor, Load(targets=10)))
    assert bench_verdict_lines(none)[0].startswith("VERDICT: NONE (no criterion applied to what was measured")


def test_criteria_come_from_the_goals_then_the_rig_then_the_command_line(floor: dict[str, Any]) -> None:
    criteria = bench_criteria("decode_p90_us=100,host_total_p99_us=2000", {"host_total_p99_us": 800, "leaks": 0,
                                                                          "deadline_misses": 3}, "rig.toml")
    assert {n: (c.limit, c.source) for n, c in criteria.items()} == {
        "host_total_p99_us": (2000.0, "--criteria"), "launcher_round_trip_ratio": (1.5, "hil bench goal"),
        "decode_p90_us": (100.0, "--criteria"), "deadline_misses": (3.0, "rig.toml")}  # leaks is a run's
    # a criterion the user gives applies to every load of a sweep, not only the default one
    res = _results(1.0, floor, Load(targets=10))
    res["runs"] += _results(1.0, floor)["runs"]
    verdict = _judge(res, "host_total_p99_us=1,sensor_to_shooter_p99_ms=1000")
    rows = {(r["where"], r["name"]): r for r in verdict["criteria"]}
    assert rows[("10 targets", "host_total_p99_us")]["result"] == "fail"
    assert rows[("40 targets", "host_total_p99_us")]["result"] == "fail"
    assert rows[("10 targets", "sensor_to_shooter_p99_ms")]["unit"] == "ms"
    assert rows[("10 targets", "sensor_to_shooter_p99_ms")]["result"] == "pass"


@pytest.mark.parametrize(("option", "says"), [
    ("leaks=0", "not a bench figure"), ("decode_p75_us=3", "not a bench figure"), ("decode_p50_us=-1", ">= 0"),
    ("decode_p50_us=abc", "needs a number"), ("decode_p50_us", "not NAME=VALUE")])
def test_a_wrong_criterion_is_one_line(option: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        bench_criteria(option)
    with pytest.raises(ConfigError, match="--no-modbus-baseline skips"):
        bench_criteria("launcher_round_trip_ratio=2", baseline=False)


def _baseline(status: float, write: float, n: int = 300) -> dict[str, Any]:
    def side(p50: float) -> dict[str, Any]:
        return {"count": n, "p50": p50, "p90": p50, "p99": p50, "p99_9": p50, "max": p50}

    return {op: {"libmodbus": side(100.0), "launcher_link": side(100.0 * r), "ratio": r}
            for op, r in (("status", status), ("write", write))}


def test_the_launcher_round_trip_is_judged_per_transport(floor: dict[str, Any]) -> None:
    res = _results(1.0, floor)
    res["modbus_baseline"] = {"rtu": _baseline(1.2, 1.4), "tcp": _baseline(1.1, 1.7), "udp": {"note": "no gcc"}}
    verdict = _judge(res)
    rows = {r["where"]: r for r in verdict["criteria"] if r["name"] == "launcher_round_trip_ratio"}
    assert {w: (r["result"], r["measured"]) for w, r in rows.items()} == {
        "launcher round trip (rtu)": ("pass", 1.4), "launcher round trip (tcp)": ("fail", 1.7),
        "launcher round trip (udp)": ("not judged", None)}
    assert verdict["failed"] == ["launcher_round_trip_ratio @ launcher round trip (tcp)"]
    res["modbus_baseline"] = {"rtu": _baseline(1.2, 1.4, n=10)}  # a median from 10 round trips
    assert _judge(res)["not_judged"] == ["launcher_round_trip_ratio @ launcher round trip (rtu)"]


def test_junit_has_one_testcase_per_criterion_per_load(tmp_path: Path, floor: dict[str, Any]) -> None:
    res = _results(1.0, floor, Load(targets=10))
    res["runs"] += _results(3.0, floor)["runs"]
    res["runs"][1]["stages"]["decode"]["count"] = 5
    verdict = _judge(res, "decode_p50_us=1000,track_p99_us=100000")
    path = tmp_path / "junit.xml"
    write_bench_junit(path, verdict, 12.5, ["radar-1 did not come up"])
    suites = {s.get("name"): s for s in ET.parse(path).getroot().iter("testsuite")}
    assert list(suites) == ["hil bench rig", "hil bench 10 targets", "hil bench 40 targets"]
    assert [e.get("message") for e in suites["hil bench rig"].iter("error")] == ["radar-1 did not come up"]
    ten = {c.get("name", ""): c for c in suites["hil bench 10 targets"].iter("testcase")}
    assert sorted(ten) == ["decode_p50_us", "track_p99_us"] and not any(len(c) for c in ten.values())
    forty = {c.get("name", ""): c for c in suites["hil bench 40 targets"].iter("testcase")}
    assert sorted(forty) == ["decode_p50_us", "host_total_p99_us", "track_p99_us"]
    assert suites["hil bench 40 targets"].get("failures") == "1" and suites["hil bench 40 targets"].get(
        "skipped") == "1"
    failure = forty["host_total_p99_us"].find("failure")
    assert failure is not None and "limit <= 1000 µs" in failure.get("message", "")
    skipped = forty["decode_p50_us"].find("skipped")
    assert skipped is not None and "5 samples; a p50 needs 20" in skipped.get("message", "")


# --- the command: exit statuses ----------------------------------------------------------------------------


def _kernel_results(median_us: float = 100.0) -> dict[str, Any]:
    res = new_results(argv=["hil", "bench", "--kernels"])
    res["kernels"] = {"tests/bench/bench_x.py::test_track": {"median_us": median_us, "min_us": 90.0, "rounds": 50}}
    return res


def _pytest_benchmark_json(median_s: float) -> dict[str, Any]:
    stats = {"median": median_s, "mean": median_s, "min": median_s, "max": median_s, "stddev": 0.0, "rounds": 50}
    return {"machine_info": {"node": "ci", "cpu": {"brand_raw": "x"}}, "datetime": "2025-01-01T00:00:00",
            "benchmarks": [{"fullname": "tests/bench/bench_x.py::test_track", "stats": stats}]}


def test_compare_refuses_files_of_different_kinds_or_loads(tmp_path: Path, floor: dict[str, Any]) -> None:
    files = {"chain": _results(1.0, floor), "chain-10": _results(1.0, floor, Load(targets=10)),
             "kernels": _kernel_results()}
    for name, res in files.items():
        save_results(res, tmp_path / f"{name}.json")
    (tmp_path / "pytest-benchmark.json").write_text(json.dumps(_pytest_benchmark_json(140e-6)))
    (tmp_path / "empty.json").write_text(json.dumps(new_results(argv=[])))
    p = {name: str(tmp_path / f"{name}.json") for name in [*files, "pytest-benchmark", "empty"]}
    for old, new, says in (
            ("kernels", "chain", f"{p['kernels']} holds kernel benchmarks, {p['chain']} a chain bench (40 targets"),
            ("chain", "pytest-benchmark", "kernel benchmarks (pytest-benchmark JSON)"),
            ("chain", "chain-10", "no load in common"), ("empty", "chain", f"{p['empty']} holds no results")):
        r = _cli("--compare", p[old], "--against", p[new])
        assert r.returncode == 2, r.stdout + r.stderr
        (line,) = r.stderr.splitlines()
        assert line.startswith(f"hil: cannot compare {p[old]} with {p[new]}: ") and says in line, line
        assert "regression" not in r.stdout
    # refused before the bench runs: nothing measured, nothing written
    r = _cli("--compare", p["kernels"], "--targets", "5", "--no-modbus-baseline", "--out", str(tmp_path / "x.json"))
    assert r.returncode == 2 and "with this bench: " in r.stderr and not (tmp_path / "x.json").exists()
    # like with like: kernel results against pytest-benchmark's own JSON, 100 -> 140 µs is a regression
    r = _cli("--compare", p["kernels"], "--against", p["pytest-benchmark"])
    assert r.returncode == 1 and "REGRESSION" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("args", [
    ["--criteria", "leaks=0"], ["--criteria", "decode_p50_us=fast"],
    ["--criteria", "launcher_round_trip_ratio=2", "--no-modbus-baseline"],
    ["--kernels", "--criteria", "decode_p50_us=3"], ["--duration", "0"]])
def test_a_usage_error_exits_2_in_one_line(tmp_path: Path, args: list[str]) -> None:
    r = _cli(*args, "--out", str(tmp_path / "r.json"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("hil: ") and not (tmp_path / "r.json").exists()


def _chain(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], ET.Element]:
    pytest.importorskip("hil.runtime", reason="the runtime (hil.runtime.run_chain) is not importable")
    out, junit = tmp_path / "bench.json", tmp_path / "junit.xml"
    r = _cli("--launchers", "1", "--no-modbus-baseline", "--no-cyclictest", "--out", str(out), "--junit", str(junit),
             *args)
    return r, load_results(out), ET.parse(junit).getroot()


@pytest.mark.slow
def test_hil_bench_runs_the_chain_beside_the_floor_and_passes(tmp_path: Path) -> None:
    # a p99 of host_total from a few seconds is a handful of samples: not judged, whatever its limit
    r, res, junit = _chain(tmp_path, "--duration", "3", "--sweep", "5,10",
                           "--criteria", "host_total_p99_us=1,decode_max_us=60000000")
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert r.stdout.startswith("VERDICT: PASS; not judged: host_total_p99_us @ 5 targets, host_total_p99_us @ "
                               "10 targets\n")
    assert [run["load"]["targets"] for run in res["runs"]] == [5, 10]
    for run in res["runs"]:
        assert run["stages"]["decode"]["count"] > 0 and run["stages"]["track"]["count"] > 0
        assert run["floor"]["probe"]["count"] > 0 and run["deadline"]["iterations"] > 0
    assert "floor: probe" in r.stdout and "host_total" in r.stdout
    assert res["verdict"]["result"] == "pass"
    if len(os.sched_getaffinity(0)) >= 2:  # by default the boards run apart from the host under test
        first, *rest = sorted(os.sched_getaffinity(0))
        assert f"real time, board CPUs: the emulated boards on CPUs [{first}]" in r.stdout
        assert f"real time, loop CPUs: pinned to CPUs {rest}" in r.stdout
    # by default idle CPUs poll while the bench runs (root may ask it; a normal user is told it was not applied)
    assert res["realtime_requested"]["cpu_latency_us"] == 0
    held = "real time, CPU wake-up: idle CPUs poll instead of halting (a wake-up latency limit of 0 µs)"
    assert (held if os.geteuid() == 0 else "real time, CPU wake-up: NOT applied") in r.stdout
    cases = [(s.get("name"), c.get("name"), [e.tag for e in c]) for s in junit.iter("testsuite")
             for c in s.iter("testcase")]
    assert cases == [(f"hil bench {n} targets", name, tags) for n in (5, 10)
                     for name, tags in (("host_total_p99_us", ["skipped"]), ("decode_max_us", []))]


@pytest.mark.slow
def test_hil_bench_exits_1_when_a_criterion_fails(tmp_path: Path) -> None:
    r, res, junit = _chain(tmp_path, "--duration", "2", "--targets", "5", "--criteria", "decode_p50_us=1",
                           "--cpu-latency-us", "off")
    assert r.returncode == 1, r.stdout + r.stderr[-3000:]
    assert res["realtime_requested"]["cpu_latency_us"] is None and "CPU wake-up" not in r.stdout  # left alone
    assert r.stdout.startswith("VERDICT: FAIL (decode_p50_us @ 5 targets)")
    assert res["verdict"]["failed"] == ["decode_p50_us @ 5 targets"]
    (failure,) = junit.iter("failure")
    assert failure.get("message", "").startswith("measured ") and "limit <= 1 µs" in failure.get("message", "")


@pytest.mark.slow
def test_hil_bench_exits_3_when_the_rig_fails(tmp_path: Path) -> None:
    rig = tmp_path / "rig.toml"
    rig.write_text('name = "dead"\n[defaults]\nlauncher_board = "mock"\n'
                   '[[radar]]\nname = "radar-1"\nboard = "serial"\nport = "/dev/hil-no-such-port"\n')
    r, res, junit = _chain(tmp_path, "--rig", str(rig), "--duration", "2", "--targets", "5")
    assert r.returncode == 3, r.stdout + r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    assert r.stdout.startswith("RIG FAILED: 5 targets") and "/dev/hil-no-such-port" in r.stdout.splitlines()[0]
    assert res["runs"] == [] and "verdict" not in res and "hil-no-such-port" in res["rig_failed"]
    (error,) = junit.iter("error")
    assert "hil-no-such-port" in error.get("message", "")


def test_a_load_is_named_in_plain_words() -> None:
    assert Load(targets=40, clutter=20.0, radars=1, launchers=2, duration_s=15.0).label() == \
        "40 targets and more entering, clutter 20/scan, 1 radar, 2 launchers, 15 s"
    assert Load(targets=1, clutter=0.5, radars=3, launchers=1, duration_s=2.5, sustained=False).label() == \
        "1 target, clutter 0.5/scan, 3 radars, 1 launcher, 2.5 s"


def test_no_inflow_is_the_first_targets_alone() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert [load.sustained for load in _loads(parser.parse_args(["--sweep", "10,40"]))] == [True, True]
    (load,) = _loads(parser.parse_args(["--no-inflow"]))
    assert not load.sustained and len(load_scenario(load).targets) == 40


def test_results_from_before_the_sustained_load_are_not_the_default_load() -> None:
    """A results file written before the load was sustained names no such field: its load is the first targets
    only, so its host_total is not held to the default load's goal, and it compares only with such a load."""
    old = {"targets": 40, "clutter": 20.0, "radars": 1, "launchers": 2, "duration_s": 30.0, "seed": 1}
    assert not is_default_load(old) and is_default_load({**old, "sustained": True})
