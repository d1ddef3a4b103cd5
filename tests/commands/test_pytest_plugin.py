"""hil's pytest plugin, as a user meets it: their own test files run by pytest (pytester) on the mock rig.

A passing scenario passes; a failing criterion fails the test with its name, measured value and limit; --junitxml
carries each criterion; the radar and launcher fixtures talk to boards in virtual time, and the same file runs in
real time with the boards as processes; a rig that is not fit fails its tests with one line.
"""

from __future__ import annotations

import json
import tomllib
import xml.etree.ElementTree as ET
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import tomli_w

from hil.shipped import resolve_scenario

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module", autouse=True)
def _plugin_installed_and_hil_loaded() -> None:
    """pytester runs the user's pytest in this process and unloads what it imported when it ends; a compiled
    module (numpy's, hil's kernels) cannot be loaded twice in one process, so a short run loads them here first."""
    if not any(ep.name == "hil" and ep.value == "hil.pytest_plugin" for ep in entry_points(group="pytest11")):
        pytest.fail("hil's pytest plugin is not registered: pip install -e . (entry point pytest11 'hil')")
    import hil
    import hil.commands.rig_check
    import hil.plant.firmware  # the real-time boards' side

    hil.run(duration=1.0, record=False)


@pytest.fixture
def user(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user's project: the raid's first ten seconds, without its [criteria], beside their tests (their scenario,
    judged only by what their tests ask and the always-on safety criteria; nothing is killed that early)."""
    raid = tomllib.loads(resolve_scenario("raid").read_text())
    raid.pop("criteria", None)
    raid["name"], raid["duration_s"] = "my-raid", 10.0  # cruise-3 starts at 10 s: it never flies (7 hostiles do)
    (pytester.path / "my_raid.toml").write_text(tomli_w.dumps(raid))
    return pytester


def _junit(path: Path) -> dict[str, tuple[ET.Element, dict[str, str]]]:
    """Each testcase of a JUnit file by name: the element and its properties."""
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        cases[case.get("name", "")] = (case, props)
    return cases


def test_a_passing_scenario_passes_with_the_markers_defaults_and_the_calls_overrides(user: pytest.Pytester) -> None:
    user.makepyfile(test_mine="""
        import pytest
        from hil.pytest_plugin import assert_verdict

        pytestmark = pytest.mark.hil_scenario("my_raid.toml", seed=3)

        @pytest.mark.hil_scenario(duration=6.0, criteria={"leaks": 0})
        def test_no_leak_in_the_first_six_seconds(hil_run):
            result = hil_run()
            assert_verdict(result)
            assert result.passed
            assert result.summary["seed"] == 3 and result.summary["duration_s"] == 6.0
            assert [c["name"] for c in result.verdict["criteria"]] == ["friendly_engagements", "friendly_kills",
                                                                       "leaks"]
            assert result.paths.summary.is_file()

        @pytest.mark.hil_scenario(duration=6.0)
        def test_the_call_wins(hil_run, tmp_path):
            result = hil_run(seed=4, duration=5.0, record=False)
            assert (result.summary["seed"], result.summary["duration_s"]) == (4, 5.0)
            assert not result.paths.recording.exists()
            assert result.paths.folder.parent == tmp_path
    """)
    r = user.runpytest("-p", "no:cacheprovider")
    r.assert_outcomes(passed=2)
    r.stdout.fnmatch_lines(["hil: rig mock, scenario raid, virtual time"])


FAILING = """
    import pytest
    from hil.pytest_plugin import assert_verdict

    pytestmark = pytest.mark.hil_scenario("my_raid.toml", criteria={"hostiles_killed_fraction": 1.0})

    def test_with_assert(hil_run):
        assert hil_run().passed

    def test_with_assert_verdict(hil_run):
        assert_verdict(hil_run())

    def test_a_designed_failure_can_be_expected(hil_run):
        result = hil_run()
        assert not result.passed and result.exit_status == 1
"""


def test_a_failed_criterion_fails_the_test_with_its_name_value_and_limit(user: pytest.Pytester) -> None:
    user.makepyfile(test_mine=FAILING)
    r = user.runpytest("-p", "no:cacheprovider")
    r.assert_outcomes(passed=1, failed=2)
    line = "hostiles_killed_fraction: measured 0, limit >= 1 (0 of 7 hostiles killed)"
    r.stdout.fnmatch_lines([
        # a plain assert: the result's repr is one line with the failed criterion
        f"E * where False = <RunResult my-raid seed 1, virtual time, rig mock: FAIL {line}>.passed",
        # and every failed test's report carries the run's verdict
        "*- hil verdict -*",
        "my-raid seed 1, virtual time, rig mock",
        "VERDICT: FAIL (hostiles_killed_fraction)*",
        "*hostiles_killed_fraction*FAIL*0*>= 1*",
        "run folder: *my-raid-1",
    ])
    r.stdout.fnmatch_lines([
        "E *VerdictFailed: my-raid seed 1, virtual time, rig mock: 1 criterion failed (exit status 1)",
        f"E *   {line}",
        "E * run folder: *",
    ])


def test_junitxml_carries_each_criterion_of_each_run(user: pytest.Pytester) -> None:
    user.makepyfile(test_mine=FAILING)
    xml = user.path / "report.xml"
    user.runpytest("-p", "no:cacheprovider", f"--junitxml={xml}").assert_outcomes(passed=1, failed=2)
    cases = _junit(xml)
    case, props = cases["test_with_assert_verdict"]
    failure = case.find("failure")
    assert failure is not None and "hostiles_killed_fraction: measured 0, limit >= 1" in failure.get("message", "")
    assert props["hil.verdict"] == "fail" and props["hil.exit_status"] == "1"
    assert props["hil.run"] == "my-raid seed 1, virtual time, rig mock"
    assert Path(props["hil.folder"]).is_dir()
    row = json.loads(props["hil.criterion.hostiles_killed_fraction"])
    assert row == {"result": "fail", "measured": 0.0, "op": ">=", "limit": 1.0, "unit": "",
                   "detail": "0 of 7 hostiles killed"}
    assert json.loads(props["hil.criterion.friendly_engagements"])["result"] == "pass"
    # the test that expects the failure passes, and still records the run's verdict
    case, props = cases["test_a_designed_failure_can_be_expected"]
    assert case.find("failure") is None and props["hil.verdict"] == "fail"


def test_the_radar_and_launcher_fixtures_talk_to_the_boards_in_virtual_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_boards=BOARD_TESTS)
    r = pytester.runpytest("-p", "no:cacheprovider")
    r.assert_outcomes(passed=4)


BOARD_TESTS = """
    import math
    import pytest
    from hil.pytest_plugin import ExpectTimeout

    def test_radar_answers_syncs_and_sees_an_aircraft(radar):
        assert radar.name == "radar-west"
        assert radar.identify().startswith("hil-radar")
        assert radar.expect_sync(timeout_s=2.0, samples=4).synced
        assert radar.link.stats["sync_responses"] >= 4
        radar.send_config(clutter_per_scan=0.0, pd=1.0)
        assert len(radar.expect_sectors(4, timeout_s=2.0)) >= 4
        x, y, z = radar.spec.site
        radar.send_truth([[x, y + 20_000.0, 5_000.0, 200.0, 0.0, 0.0]], mode3a=[0o4001])
        plots = radar.expect_plots(2, timeout_s=3.0)  # two scans of one aircraft, no clutter
        assert len(plots) >= 2 and set(plots.mode3a.tolist()) == {0o4001}
        assert abs(plots.range_m[0] - math.hypot(20_000.0, 5_000.0 - z)) < 1_000.0
        assert sum(radar.link.counters.summary()["rejected"].values()) == 0

    def test_expect_times_out_with_what_came(radar):
        radar.send_config(clutter_per_scan=0.0)  # nothing to see
        with pytest.raises(ExpectTimeout, match=r"radar-west: 0 of 1 plots within 1.5 s \\(.* time\\)"):
            radar.expect_plots(1, timeout_s=1.5)

    @pytest.mark.hil_scenario("raid")
    def test_a_named_radar_and_launcher(hil_boards):
        east = hil_boards.radar("radar-east")
        south = hil_boards.launcher("launcher-south")
        assert east.identify() and south.identify()
        with pytest.raises(pytest.fail.Exception, match="no radar named 'radar-nowhere'"):
            hil_boards.radar("radar-nowhere")

    def test_launcher_arms_fires_and_its_watchdog_makes_it_safe(launcher):
        assert launcher.identify().name.startswith("hil-launcher")
        assert launcher.expect_state("SAFE").rounds > 0
        refused = launcher.fire(1, 0.0, 0.2)
        assert not refused.accepted and refused.reason == "NOT_ARMED"
        launcher.arm()
        launcher.expect_state("ARMED")
        fired = launcher.fire(7, math.radians(45.0), math.radians(20.0), range_m=12_000.0)
        assert fired.accepted, fired.reason
        assert launcher.wait(1.0).state.name == "ARMED"  # heartbeats keep it armed
        status = launcher.expect_state("SAFE", timeout_s=3 * launcher.link.watchdog_ms / 1000.0)
        assert status.watchdog_tripped and status.launch_count == 1
        with pytest.raises(ExpectTimeout, match="launcher-north: state SAFE, not ARMED, after 0.1 s"):
            launcher.expect_state("ARMED", timeout_s=0.1)
"""


@pytest.mark.slow
def test_the_same_files_run_unchanged_in_real_time_with_board_processes(user: pytest.Pytester) -> None:
    user.makepyfile(test_boards=BOARD_TESTS, test_runs="""
        import pytest

        @pytest.mark.hil_scenario("my_raid.toml", duration=4.0, criteria={"leaks": 0})
        def test_a_short_run(hil_run):
            result = hil_run(record=False)
            assert result.summary["time_mode"] == "real" and not result.summary["interrupted"]
            # the criteria pass; the rig's own health (a launcher's watchdog fed in time) is the machine's to keep:
            # on a loaded machine a 4 s run can end with a launcher SAFE after a late heartbeat (exit status 3)
            assert result.verdict["result"] == "pass", result.failures
    """)
    r = user.runpytest("-p", "no:cacheprovider", "--hil-time", "real")
    r.assert_outcomes(passed=5)
    r.stdout.fnmatch_lines(["hil: rig mock, scenario raid, real time"])


def test_a_rig_that_is_not_fit_fails_its_tests_with_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine="""
        def test_one(hil_run):
            hil_run()

        def test_two(radar):
            pass
    """)
    # simavr boards run in real time only
    r = pytester.runpytest("-p", "no:cacheprovider", "--hil-rig", "simavr")
    r.assert_outcomes(errors=2)
    line = ("rig simavr (*simavr.toml) for scenario raid, virtual time: not fit: radar radar-west is a simavr board, "
            "which runs in real time only: use --hil-time real")
    r.stdout.fnmatch_lines([line, line])
    # a bench whose boards are not there: the rig check's one line, in real time
    pytester.makefile(".toml", bench="""
        name = "bench"
        [[radar]]
        name = "radar-west"
        board = "serial"
        port = "/dev/serial/by-id/no-such-board"
        [[radar]]
        name = "radar-east"
        board = "serial"
        port = "/dev/serial/by-id/no-such-board-either"
        [[launcher]]
        name = "launcher-north"
        board = "tcp"
        address = "127.0.0.1:1"
        [[launcher]]
        name = "launcher-south"
        board = "tcp"
        address = "127.0.0.1:1"
    """)
    r = pytester.runpytest("-p", "no:cacheprovider", "--hil-rig", "bench.toml", "--hil-time", "real")
    r.assert_outcomes(errors=2)
    r.stdout.fnmatch_lines(["rig bench (*bench.toml) for scenario raid, real time: rig check failed: *no-such-board*"])


def test_options_win_over_the_environment_which_wins_over_the_ini_file(pytester: pytest.Pytester,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_mine="def test_one(hil_run): pass")
    pytester.makeini("[pytest]\nhil_rig = simavr\nhil_scenario = safety/crossing\n")
    monkeypatch.setenv("HIL_TIME", "real")
    monkeypatch.setenv("HIL_SCENARIO", "safety/escorts")
    r = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "--hil-time", "virtual")
    r.stdout.fnmatch_lines(["hil: rig simavr, scenario safety/escorts, virtual time"])
    monkeypatch.setenv("HIL_TIME", "sometimes")
    r = pytester.runpytest("-p", "no:cacheprovider", "--collect-only")
    r.stderr.fnmatch_lines(["ERROR: hil: the time mode is virtual or real, got 'sometimes' (--hil-time, $HIL_TIME)"])


def test_a_session_without_hil_tests_does_not_hear_of_hil(pytester: pytest.Pytester) -> None:
    # a suite's own fixture named radar is its own, not hil's
    pytester.makeconftest("""
        import pytest

        @pytest.fixture
        def radar():
            return "my radar"
    """)
    pytester.makepyfile(test_mine="""
        def test_one():
            pass

        def test_two(radar):
            assert radar == "my radar"
    """)
    r = pytester.runpytest("-p", "no:cacheprovider")
    r.assert_outcomes(passed=2)
    assert "hil:" not in r.stdout.str()


def test_assert_verdict_can_insist_that_every_criterion_was_judged() -> None:
    from hil.api import RunResult
    from hil.pytest_plugin import VerdictFailed, assert_verdict

    row = {"name": "host_total_p99_us", "measured": None, "limit": 800.0, "op": "<=", "unit": "µs",
           "result": "not judged", "detail": "12 samples; a p99 needs 1,000"}
    result = RunResult(summary={"scenario": "raid", "seed": 1, "verdict": {
        "result": "pass", "failed": [], "not_judged": ["host_total_p99_us"], "criteria": [row]}})
    assert_verdict(result)  # not judged is not failed, as `hil run` exits 0
    with pytest.raises(VerdictFailed) as e:
        assert_verdict(result, judged=True)
    assert str(e.value) == ("raid seed 1: 1 not judged (exit status 0)\n"
                            "  host_total_p99_us: 12 samples; a p99 needs 1,000 (not judged)")
