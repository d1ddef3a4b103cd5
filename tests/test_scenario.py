"""Scenario files and truth: what a user writes is read as meant, and a typo names its field."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hil.errors import ConfigError
from hil.geo import STANDARD_GRAVITY
from hil.scenario import Scenario, format_mode3a, parse_mode3a, tracking_scenario

RAID = Path(__file__).resolve().parent.parent / "scenarios" / "raid.toml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


MINIMAL = """
duration_s = 30
[[radar]]
name = "r"
site_enu_m = [0, 0, 10]
[[target]]
name = "a"
position_enu_m = [20000, 0, 3000]
velocity_mps = [-200, 0, 0]
[[launcher]]
name = "north"
position_enu_m = [0, 8000, 0]
"""


def test_raid_has_what_the_issue_asks_for() -> None:
    sc = Scenario.load(RAID)
    kinds = {t.kind for t in sc.targets if t.allegiance == "hostile"}
    assert {"aircraft", "missile"} <= kinds
    assert any(t.allegiance == "friendly" and t.mode3a in sc.friendly_codes for t in sc.targets)
    assert len(sc.launchers) == 2 and 1 <= len(sc.radars) <= 2 and sc.assets


def test_truth_moves_at_constant_velocity_without_manoeuvres(tmp_path: Path) -> None:
    sc = Scenario.load(write(tmp_path, MINIMAL))
    truth = sc.truth()
    s = truth.at(10.0)
    np.testing.assert_allclose(s.state[0], [18000, 0, 3000, -200, 0, 0], atol=1e-6)


def test_coordinated_turn_keeps_speed_and_turns_at_the_stated_g(tmp_path: Path) -> None:
    turn = "manoeuvre = [{start_s = 5.0, duration_s = 10.0, turn_g = 4.0}]"
    text = MINIMAL.replace("velocity_mps = [-200, 0, 0]", "velocity_mps = [-200, 0, 0]\n" + turn)
    truth = Scenario.load(write(tmp_path, text)).truth()
    a, b = truth.state_of(0, 6.0), truth.state_of(0, 8.0)
    assert np.linalg.norm(b[3:]) == pytest.approx(200.0, rel=1e-3)
    heading_change = math.atan2(b[3], b[4]) - math.atan2(a[3], a[4])
    expected = 4.0 * STANDARD_GRAVITY / 200.0 * 2.0  # turn rate g*n/v over 2 s
    assert abs((heading_change + math.pi) % (2 * math.pi) - math.pi) == pytest.approx(expected, rel=0.02)


def test_homing_missile_reaches_its_asset_and_leaves_truth(tmp_path: Path) -> None:
    text = MINIMAL + """
[[asset]]
name = "base"
position_enu_m = [0, 0, 0]
[[target]]
name = "m"
position_enu_m = [5000, 3000, 200]
velocity_mps = [0, 250, 0]
home_on = "base"
"""
    truth = Scenario.load(write(tmp_path, text)).truth()
    assert truth.ended_by[1] == "impact"
    assert 20.0 < truth.impact_s[1] < 30.0  # about 5.8 km at 250 m/s plus the turn
    assert 1 not in truth.at(truth.impact_s[1] + 0.1).index


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (("duration_s = 30", "duration_s = -1"), "duration_s"),
        (("velocity_mps = [-200, 0, 0]", "velocity_mps = [-200, 0]"), "velocity_mps"),
        (('name = "a"', 'name = "a"\nallegiance = "enemy"'), "allegiance"),
        (('name = "a"', 'name = "a"\nmode3a = "9999"'), "mode3a"),
        (('name = "a"', 'name = "a"\nhome_on = "nowhere"'), "home_on"),
        (('name = "a"', 'name = "a"\nspeed = 3'), "speed"),
        (("[[radar]]", "[[radar]]\npd = 1.5"), "pd"),
        (("[[radar]]", '[[launcher]]\nposition_enu_m = [0, 0, 0]\nmin_alt_m = 500\nmax_alt_m = 100\n[[radar]]'),
         "launcher[0] (launcher-1).min_alt_m"),
        (("[[radar]]", '[[no_fire_zone]]\ncentre_enu_m = [0, 0]\nradius_m = 900\nz_min_m = 10\nz_max_m = 5\n[[radar]]'),
         "no_fire_zone[0] (no_fire_zone-1).radius_m"),
    ],
)
def test_a_bad_value_gets_one_error_naming_the_field(tmp_path: Path, edit: tuple[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as e:
        Scenario.load(write(tmp_path, MINIMAL.replace(*edit)))
    assert field in str(e.value)
    assert str(tmp_path) in str(e.value)


def test_missing_file_and_broken_toml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such scenario file"):
        Scenario.load(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="syntax"):
        Scenario.load(write(tmp_path, "duration_s = = 3"))


def test_mode3a_codes_are_octal() -> None:
    assert parse_mode3a("7700", "x", "f") == 0o7700
    assert format_mode3a(0o4001) == "4001"
    assert parse_mode3a(None, "x", "f") == -1


def test_generated_tracking_scene_matches_issue_3() -> None:
    sc = tracking_scenario(40, seed=3)
    truth = sc.truth()
    s = truth.at(0.0)
    rng = np.linalg.norm(s.state[:, :2], axis=1)
    assert len(s.index) == 40 and rng.min() >= 5_000 and rng.max() <= 120_000
    assert sum(1 for t in sc.targets if t.manoeuvres and abs(t.manoeuvres[0].turn_g) == 4.0) >= 4
    # crossing pairs meet: some pair comes within a few hundred metres of each other
    closest = min(np.linalg.norm(truth.states[0, :, :2] - truth.states[1, :, :2], axis=1))
    assert closest < 500.0
    assert tracking_scenario(40, seed=3).targets == sc.targets


def test_doctrine_and_launcher_sector_reach_fire_control(tmp_path: Path) -> None:
    from hil.fire_control import Doctrine, specs_from_scenario

    text = MINIMAL + """
[fire_control]
doctrine = "salvo"
salvo_size = 3
[[launcher]]
name = "l"
position_enu_m = [0, 0, 0]
sector_centre_deg = 90.0
sector_width_deg = 120.0
"""
    sc = Scenario.load(write(tmp_path, text))
    assert (sc.doctrine, sc.salvo_size) == ("salvo", 3)
    _, launchers, _ = specs_from_scenario(sc)
    assert (launchers[-1].sector_centre_deg, launchers[-1].sector_width_deg) == (90.0, 120.0)
    assert Doctrine.SALVO.name == "SALVO"
    with pytest.raises(ConfigError, match="doctrine"):
        Scenario.load(write(tmp_path, MINIMAL + '[fire_control]\ndoctrine = "spray"\n'))
