"""A user's own rig tests with hil's pytest plugin (docs/TESTING.md).

    pytest examples/rig_tests                                   # mock rig, virtual time: seconds
    pytest examples/rig_tests --hil-rig simavr --hil-time real  # the AVR firmware under simavr, wall time
    pytest examples/rig_tests --hil-rig my-bench.toml --hil-time real --junitxml=rig.xml   # the bench's boards

The file does not change between the three: the plugin brings up whatever boards the rig names.
"""

from __future__ import annotations

import math

import pytest

from hil.pytest_plugin import assert_verdict

# --- whole runs: a scenario with criteria, judged like `hil run` judges it -----------------------------------


def test_the_raid_meets_its_criteria(hil_run):
    result = hil_run()  # the session's scenario (--hil-scenario, default raid) with the criteria it carries
    assert_verdict(result)  # one line per failed criterion: its name, measured value and limit


@pytest.mark.hil_scenario("raid", seed=1, criteria={"hostiles_killed_fraction": 0.75})
def test_the_raid_survives_a_cut_radar_cable(hil_run):
    # the marker's criteria go over the scenario's, name by name; faults is one of hil.run's own arguments
    result = hil_run(faults=["radar-west:cut@20+5"])
    assert_verdict(result)
    assert result.summary["faults_injected"]


@pytest.mark.parametrize("seed", [1, 2])
def test_no_friendly_is_engaged_near_the_escorted_bombers(hil_run, seed):
    result = hil_run("safety/escorts", seed=seed)
    assert result.passed  # friendly_engagements = 0 and friendly_kills = 0 are always judged
    assert any(r["reason"] == "PROTECTED_NEAR_INTERCEPT" for r in result.summary["refusals"])


# --- one board at a time: send a frame, expect an answer within a timeout ------------------------------------


def test_the_radar_answers_and_sweeps(radar):
    assert radar.identify().startswith("hil-radar")
    sync = radar.expect_sync(timeout_s=2.0)
    assert sync.synced
    radar.send_config(clutter_per_scan=0.0, pd=1.0)
    # one aircraft 20 km north of the radar at 5 km, flying east at 200 m/s
    x, y, z = radar.spec.site
    radar.send_truth([[x, y + 20_000.0, 5_000.0, 200.0, 0.0, 0.0]], mode3a=[0o4001])
    plots = radar.expect_plots(1, timeout_s=2 * radar.spec.scan_period_s)
    assert abs(plots.range_m[0] - math.hypot(20_000.0, 5_000.0 - z)) < 1_000.0


def test_the_launcher_arms_fires_and_its_watchdog_makes_it_safe(launcher):
    assert launcher.identify().name.startswith("hil-launcher")
    launcher.expect_state("SAFE")
    launcher.arm()
    launcher.expect_state("ARMED")
    fired = launcher.fire(7, azimuth_rad=math.radians(45.0), elevation_rad=math.radians(20.0), range_m=12_000.0)
    assert fired.accepted, fired.reason
    launcher.wait(1.0)  # heartbeats keep it armed
    launcher.expect_state("ARMED")
    # no heartbeat: the board's watchdog makes it SAFE
    status = launcher.expect_state("SAFE", timeout_s=3 * launcher.link.watchdog_ms / 1000.0)
    assert status.watchdog_tripped
