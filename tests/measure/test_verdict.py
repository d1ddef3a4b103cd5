"""Criteria and verdicts (hil.measure.verdict) on summaries built to sit on each side of a limit."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.errors import ConfigError
from hil.measure.verdict import (
    FAIL,
    NOT_JUDGED,
    PASS,
    criteria_from,
    judge,
    merged,
    parse_criteria_option,
    verdict_lines,
    write_junit,
)

BASE: dict[str, Any] = {
    "friendly_engagements": 0,
    "plant": {"friendly_killed": 0, "neutral_killed": 0, "killed": {"hostile": 3}, "rounds_launched": 5,
              "nfz_detonations": 0},
    "engagements": [
        {"target": "b1", "kind": "aircraft", "allegiance": "hostile", "result": "killed"},
        {"target": "b2", "kind": "aircraft", "allegiance": "hostile", "result": "survived"},
        {"target": "m1", "kind": "missile", "allegiance": "hostile", "result": "killed"},
        {"target": "m2", "kind": "missile", "allegiance": "hostile", "result": "killed"},
        {"target": "m3", "kind": "missile", "allegiance": "hostile", "result": "not_launched"},
        {"target": "f1", "kind": "aircraft", "allegiance": "friendly", "result": "survived"},
    ],
    "latency_us": {"host_total": {"count": 1000, "p99": 250.0}},
    "deadline_misses": {"iterations": 12000, "overruns": 3},
    "launcher_health": {"a": {"watchdog_trips": 1}, "b": {"watchdog_trips": 0}},
    "rig_problems": [],
    "gospa_mean_m": 640.0,
}


def verdict_of(table: dict[str, Any], summary: dict[str, Any] | None = None) -> dict[str, Any]:
    return judge(summary or BASE, merged(criteria_from(table, "test")))


def row(verdict: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in verdict["criteria"] if r["name"] == name)


def test_the_friendly_criteria_are_always_there_and_fail_a_run_that_engaged_one() -> None:
    v = verdict_of({})
    assert [r["name"] for r in v["criteria"]] == ["friendly_engagements", "friendly_kills"]
    assert v["result"] == PASS
    bad = copy.deepcopy(BASE)
    bad["friendly_engagements"] = 1
    v = verdict_of({}, bad)
    assert v["result"] == FAIL and v["failed"] == ["friendly_engagements"]


@pytest.mark.parametrize("name", ["friendly_engagements", "friendly_kills"])
def test_the_friendly_criteria_cannot_be_loosened(name: str) -> None:
    with pytest.raises(ConfigError, match="cannot be changed"):
        criteria_from({name: 1}, "scenario.toml")


@pytest.mark.parametrize(("table", "name", "result", "measured"), [
    ({"hostiles_killed_fraction": 0.75}, "hostiles_killed_fraction", PASS, 0.75),  # 3 of the 4 that flew
    ({"hostiles_killed_fraction": 0.76}, "hostiles_killed_fraction", FAIL, 0.75),
    ({"hostiles_killed": ["b1", "m1"]}, "hostiles_killed", PASS, 1.0),
    ({"hostiles_killed": ["b1", "b2"]}, "hostiles_killed", FAIL, 0.5),
    ({"hostile_kinds_killed": {"missile": 1.0}}, "hostile_kinds_killed", PASS, 1.0),
    ({"hostile_kinds_killed": {"aircraft": 1.0}}, "hostile_kinds_killed", FAIL, 0.5),
    ({"rounds_per_kill": 5 / 3}, "rounds_per_kill", PASS, 5 / 3),
    ({"rounds_per_kill": 1.5}, "rounds_per_kill", FAIL, 5 / 3),
    ({"host_total_p99_us": 250}, "host_total_p99_us", PASS, 250.0),
    ({"host_total_p99_us": 249}, "host_total_p99_us", FAIL, 250.0),
    ({"deadline_misses": 2}, "deadline_misses", FAIL, 3.0),
    ({"watchdog_trips": 1}, "watchdog_trips", PASS, 1.0),
    ({"gospa_mean_m": 600}, "gospa_mean_m", FAIL, 640.0),
    ({"links_healthy": True}, "links_healthy", PASS, 1.0),
    ({"leaks": 0}, "leaks", PASS, 0.0),
])
def test_each_criterion_on_each_side_of_its_limit(table: dict[str, Any], name: str, result: str,
                                                   measured: float) -> None:
    r = row(verdict_of(table), name)
    assert r["result"] == result and r["measured"] == pytest.approx(measured, rel=1e-6)


def test_a_percentile_from_too_few_samples_is_not_judged() -> None:
    few = copy.deepcopy(BASE)
    few["latency_us"]["host_total"] = {"count": 999, "p99": 9e9}
    v = verdict_of({"host_total_p99_us": 300}, few)
    r = row(v, "host_total_p99_us")
    assert r["result"] == NOT_JUDGED and "1,000" in r["detail"] and v["result"] == PASS
    assert v["not_judged"] == ["host_total_p99_us"]


def test_a_broken_link_fails_links_healthy_and_names_it() -> None:
    broken = copy.deepcopy(BASE)
    broken["rig_problems"] = ["launcher north never armed"]
    r = row(verdict_of({"links_healthy": True}, broken), "links_healthy")
    assert r["result"] == FAIL and "never armed" in r["detail"]


def test_command_line_criteria_read_every_kind() -> None:
    table = parse_criteria_option("leaks=0, host_total_p99_us=800,hostiles_killed=b1+m1,"
                                  "hostile_kinds_killed=missile:1+aircraft:0.5,links_healthy=true")
    assert table == {"leaks": 0.0, "host_total_p99_us": 800.0, "hostiles_killed": ["b1", "m1"],
                     "hostile_kinds_killed": {"missile": 1.0, "aircraft": 0.5}, "links_healthy": True}
    assert set(criteria_from(table, "--criteria")) == set(table)


@pytest.mark.parametrize("text", ["leaks", "leaks=lots", "links_healthy=yes", "hostile_kinds_killed=missile"])
def test_a_bad_command_line_criterion_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError) as e:
        criteria_from(parse_criteria_option(text), "--criteria")
    assert "\n" not in str(e.value)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=30), st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True), st.text(max_size=20),
    st.lists(st.text(max_size=10), max_size=4), st.dictionaries(st.text(max_size=8), st.floats(), max_size=3)),
    max_size=6))
def test_any_criteria_table_is_taken_or_refused_in_one_line(table: dict[str, Any]) -> None:
    try:
        criteria = criteria_from(table, "fuzz.toml")
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    verdict = judge(BASE, merged(criteria))  # whatever was accepted can be judged
    assert verdict["result"] in (PASS, FAIL)


def test_junit_has_one_case_per_criterion_with_measured_and_limit(tmp_path: Path) -> None:
    v = verdict_of({"leaks": 0, "gospa_mean_m": 600, "host_total_p99_us": 100})
    few = copy.deepcopy(BASE)
    few["latency_us"]["host_total"]["count"] = 5
    v = verdict_of({"leaks": 0, "gospa_mean_m": 600, "host_total_p99_us": 100}, few)
    path = tmp_path / "verdict.xml"
    write_junit(path, "hil run raid seed 1", v, 1.5)
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"friendly_engagements", "friendly_kills", "leaks", "gospa_mean_m", "host_total_p99_us"}
    failure = cases["gospa_mean_m"].find("failure")
    assert failure is not None and "measured 640 m, limit <= 600 m" in failure.get("message", "")
    assert cases["host_total_p99_us"].find("skipped") is not None
    assert suite.get("failures") == "1" and suite.get("skipped") == "1"


def test_a_verdict_that_judged_nothing_is_not_called_a_pass() -> None:
    nothing = judge({}, criteria_from({"friendly_engagements": 0, "leaks": 0}, "test"))
    assert nothing["result"] == "pass" and len(nothing["not_judged"]) == 2  # the exit status stays 0
    head = verdict_lines(nothing, "the plant scores this run")[0]
    assert head.startswith("VERDICT: NOTHING JUDGED HERE: the plant scores this run; not judged: ")
    judged = judge(BASE, criteria_from({"friendly_engagements": 0}, "test"))
    assert verdict_lines(judged, "elsewhere")[0] == "VERDICT: PASS"


def test_no_verdict_stands_over_a_failed_rig() -> None:
    passed = judge(BASE, criteria_from({"friendly_engagements": 0}, "test"))
    lines = verdict_lines(passed, rig_failed=True)
    assert lines[0] == "VERDICT: NONE: the rig failed (RIG FAILED above), this run judges nothing; as measured: PASS"
    assert lines[1:] == verdict_lines(passed)[1:]  # the criteria as measured, all the same
    failed = judge(BASE, criteria_from({"gospa_mean_m": 600}, "test"))
    assert verdict_lines(failed, rig_failed=True)[0].endswith("as measured: FAIL (gospa_mean_m)")
