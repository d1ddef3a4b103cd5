"""Scenario files and truth: what a user writes is read as meant, and a typo names its field."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hil.commands.cli import main as hil_main
from hil.errors import ConfigError
from hil.ext.firecontrol_types import AssetSpec, LauncherSpec, NoFireZone
from hil.geo import STANDARD_GRAVITY, geodetic_to_enu
from hil.scenario import (
    LauncherTable,
    Manoeuvre,
    RadarSpec,
    Scenario,
    TargetSpec,
    format_mode3a,
    parse_mode3a,
    tracking_scenario,
)
from tests.helpers import RAID


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


def test_raid_has_every_kind_of_target_a_bench_needs() -> None:
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


def test_generated_tracking_scene_has_the_stated_load() -> None:
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
    from hil.ext.firecontrol_types import Doctrine
    from hil.host.fire_control import specs_from_scenario

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


# --- the file's fields, typed and ranged (issue 12 part 7) -----------------------------------------


def test_raid_loads_exactly_as_it_did_before_validation_moved_to_pydantic() -> None:
    """The expectation is raid.toml's values written out with the dataclasses (checked once against the loader
    before the change); defaults not in the file come from the dataclasses, so a file default that drifts from
    the code's shows here."""

    def hostile(name: str, kind: str, position: tuple[float, float, float], velocity: tuple[float, float, float],
                **more: object) -> TargetSpec:
        return TargetSpec(name=name, allegiance="hostile", kind=kind, position=position, velocity=velocity,
                          **more)  # type: ignore[arg-type]

    def radar(name: str, site: tuple[float, float, float], sic: int, north_offset_deg: float) -> RadarSpec:
        return RadarSpec(name=name, site=site, scan_period_s=1.0, sigma_range_m=50.0,
                         sigma_azimuth_rad=math.radians(0.2), sigma_elevation_rad=math.radians(0.2),
                         sigma_range_rate_mps=5.0, pd=0.9, clutter_per_scan=20.0, max_range_m=150_000.0, sac=1,
                         sic=sic, north_offset_rad=math.radians(north_offset_deg))

    def launcher(name: str, position: tuple[float, float, float]) -> LauncherSpec:
        return LauncherSpec(name=name, position=position, interceptor_speed_mps=1200.0, launch_delay_s=0.5,
                            min_range_m=1500.0, max_range_m=45_000.0, min_alt_m=20.0, max_alt_m=20_000.0,
                            max_tof_s=45.0, rounds=6, reload_s=2.0, channels=4, lethal_radius_m=20.0, pk=0.85)

    expected = Scenario(
        name="raid",
        description="8 hostiles (aircraft and missiles) against an airbase and a port; 1 friendly, 1 neutral",
        duration_s=60.0,
        seed=1,
        origin_lla=(52.0, 4.5, 0.0),
        friendly_codes=frozenset({0o4001, 0o4002}),
        assets=(AssetSpec("airbase", (0.0, 0.0, 0.0), radius_m=2000.0, value=1.0),
                AssetSpec("port", (15000.0, -10000.0, 0.0), radius_m=1500.0, value=0.8)),
        no_fire_zones=(NoFireZone("town", (-6000.0, 14000.0), radius_m=4000.0, z_min_m=0.0, z_max_m=4000.0),),
        radars=(radar("radar-west", (-10000.0, 0.0, 30.0), 1, 0.0),
                radar("radar-east", (20000.0, 5000.0, 30.0), 2, 180.0)),
        launchers=(launcher("launcher-north", (0.0, 8000.0, 0.0)), launcher("launcher-south", (8000.0, -12000.0, 0.0))),
        targets=(
            hostile("bomber-1", "aircraft", (-40000.0, 26000.0, 6000.0), (208.0, -139.0, 0.0)),
            hostile("bomber-2", "aircraft", (36000.0, 36000.0, 7000.0), (-177.0, -177.0, 0.0)),
            hostile("fighter-1", "aircraft", (45000.0, -20000.0, 4000.0), (-269.0, 77.0, 0.0),
                    manoeuvres=(Manoeuvre(start_s=12.0, duration_s=6.0, turn_g=4.0),)),
            hostile("fighter-2", "aircraft", (-27000.0, -36000.0, 3000.0), (180.0, 240.0, 0.0)),
            hostile("cruise-1", "missile", (33000.0, 10000.0, 150.0), (-260.0, -74.0, 0.0), home_on="airbase"),
            hostile("cruise-2", "missile", (-22000.0, -24000.0, 120.0), (234.0, 88.0, 0.0), home_on="port"),
            hostile("antiship-1", "missile", (55000.0, -5000.0, 12000.0), (-700.0, -30.0, 0.0), home_on="port",
                    max_turn_g=15.0),
            hostile("cruise-3", "missile", (0.0, 40000.0, 150.0), (0.0, -260.0, 0.0), start_s=10.0, home_on="airbase"),
            TargetSpec("blue-1", "friendly", "aircraft", (-25000.0, 3000.0, 5000.0), (220.0, 0.0, 0.0), mode3a=0o4001),
            TargetSpec("airliner", "neutral", "aircraft", (10000.0, 20000.0, 11000.0), (0.0, 230.0, 0.0),
                       mode3a=0o2000),
        ),
        criteria={"leaks": 1, "hostiles_killed_fraction": 0.25, "rounds_per_kill": 4.0, "nfz_detonations": 0,
                  "gospa_mean_m": 1500},
        source=str(RAID),
    )
    assert Scenario.load(RAID) == expected


def test_defaults_of_an_unwritten_field_are_the_codes_defaults(tmp_path: Path) -> None:
    sc = Scenario.load(write(tmp_path, MINIMAL))
    assert sc.radars == (RadarSpec(name="r", site=(0.0, 0.0, 10.0)),)
    assert sc.launchers == (LauncherSpec(name="north", position=(0.0, 8000.0, 0.0)),)
    assert (sc.seed, sc.doctrine, sc.salvo_size, sc.look_scans, sc.protect_radius_m, sc.faults) == (
        1, "shoot-look-shoot", 2, 2, None, ())
    assert sc.name == "s" and sc.targets[0].mode3a == -1


def test_every_launcher_field_can_be_written_in_a_file() -> None:
    """A field added to LauncherSpec without a line in the file's model would be unreachable from a scenario."""
    written = set(LauncherTable.model_fields) - {"position_enu_m", "position_lla"}
    assert written == set(LauncherSpec.__dataclass_fields__) - {"position"}


LAUNCHER_NORTH = "launcher[0] (north)"


@pytest.mark.parametrize(
    ("edit", "field", "says"),
    [
        # the 14 malformed values of issue 12, each refused in one line naming its field
        (("position_enu_m = [20000, 0, 3000]", "position_enu_m = [nan, 0, 3000]"), "target[0] (a).position_enu_m[0]",
         "finite"),
        (("position_enu_m = [20000, 0, 3000]", "position_enu_m = [1e300, 0, 3000]"), "target[0] (a).position_enu_m[0]",
         "at most"),
        (("velocity_mps = [-200, 0, 0]", "velocity_mps = [-inf, 0, 0]"), "target[0] (a).velocity_mps[0]", "finite"),
        (("velocity_mps = [-200, 0, 0]", "velocity_mps = [-9000, 9000, 0]"), "target[0] (a).velocity_mps",
         "above 10000 m/s"),
        (('name = "north"', 'name = "north"\nrounds = 6.5'), f"{LAUNCHER_NORTH}.rounds", "integer"),
        (('name = "north"', 'name = "north"\nrounds = 100000'), f"{LAUNCHER_NORTH}.rounds", "at most 1000"),
        (('name = "north"', 'name = "north"\nchannels = 1e9'), f"{LAUNCHER_NORTH}.channels", "integer"),
        (('name = "north"', 'name = "north"\nreload_s = 1e9'), f"{LAUNCHER_NORTH}.reload_s", "at most 65.535"),
        (('name = "a"', 'name = "a"\nmode3a = 4001'), "target[0] (a).mode3a", 'write "4001"'),
        (("duration_s = 30", "duration_s = 30\nseed = 1.5"), "seed", "integer"),
        (("duration_s = 30", "duration_s = 30\norigin_lla = [200.0, 4.5, 0.0]"), "origin_lla[0]", "at most 90"),
        (("duration_s = 30", "duration_s = 30\norigin_lla = [52.0, 181.0, 0.0]"), "origin_lla[1]", "at most 180"),
        (("[[launcher]]", "[[not_a_launcher]]"), "launcher", "nothing to test"),
        (("[[radar]]", "[[radar]]\nsac = true"), "radar[0] (r).sac", "must be an integer, got true"),
        (('name = "north"', "name = 5"), "launcher[0] (launcher-1).name", "must be a string"),
        # and their neighbours
        (('name = "a"', 'name = "a"\nspeed = 3'), "target[0] (a).speed", "known: name, allegiance"),
        (("duration_s = 30", "duration_s = 30\nfriendly_mode3a = [4001]"), "friendly_mode3a[0]", 'write "4001"'),
        (("duration_s = 30", 'duration_s = 30\nfaults = ["x" , 3]'), "faults[1]", "string"),
        (("duration_s = 30", "duration_s = 30\norigin_lla = [52.0, 4.5]"), "origin_lla", "list of 3 numbers"),
        (("velocity_mps = [-200, 0, 0]", "velocity_mps = [-200, 0, 0]\nstart_s = true"), "target[0] (a).start_s",
         "number"),
        (("position_enu_m = [20000, 0, 3000]", "position_enu_m = [20000, 0, 3000]\nposition_lla = [52, 4, 0]"),
         "target[0] (a).position_lla", "not both"),
    ],
)
def test_a_malformed_value_is_one_line_naming_file_and_field(tmp_path: Path, edit: tuple[str, str], field: str,
                                                             says: str) -> None:
    text = MINIMAL.replace(*edit)
    assert text != MINIMAL
    with pytest.raises(ConfigError) as e:
        Scenario.load(write(tmp_path, text))
    message = str(e.value)
    assert message.startswith(f"{tmp_path / 's.toml'}: {field}: ") and says in message
    assert "\n" not in message


def test_a_position_from_latitude_and_longitude_is_checked_against_the_origin(tmp_path: Path) -> None:
    text = MINIMAL.replace("duration_s = 30", "duration_s = 30\norigin_lla = [52.0, 4.5, 0.0]")
    near = text.replace("position_enu_m = [20000, 0, 3000]", "position_lla = [52.1, 4.6, 3000.0]")
    expected = geodetic_to_enu(52.1, 4.6, 3000.0, (52.0, 4.5, 0.0))
    np.testing.assert_allclose(Scenario.load(write(tmp_path, near)).targets[0].position, expected)
    far = text.replace("position_enu_m = [20000, 0, 3000]", "position_lla = [52.0, 40.0, 3000.0]")
    with pytest.raises(ConfigError, match=r"target\[0\] \(a\)\.position_lla: is 24\d\d km from origin_lla"):
        Scenario.load(write(tmp_path, far))
    no_origin = MINIMAL.replace("position_enu_m = [20000, 0, 3000]", "position_lla = [52.1, 4.6, 3000.0]")
    with pytest.raises(ConfigError, match="needs origin_lla"):
        Scenario.load(write(tmp_path, no_origin))


def unreadable(tmp_path: Path) -> list[tuple[Path, str]]:
    """Files that are not scenarios at all, and the words that say why."""
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)) * 4)
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('name = "Köln"\n'.encode("latin-1"))
    huge = tmp_path / "huge.toml"
    huge.write_text("# padding\n" * 120_000)
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 50_000 + "]" * 50_000)
    syntax = tmp_path / "syntax.toml"
    syntax.write_text("duration_s = = 3")
    return [(binary, "binary"), (latin1, "not UTF-8"), (huge, "larger than 1 MiB"), (deep, "nested too deeply"),
            (syntax, "syntax"), (tmp_path, "is a directory"), (tmp_path / "missing.toml", "no such scenario file")]


def test_a_file_that_is_no_scenario_is_refused_in_one_line(tmp_path: Path) -> None:
    for path, says in unreadable(tmp_path):
        with pytest.raises(ConfigError) as e:
            Scenario.load(path)
        assert str(e.value).startswith(str(path)) and says in str(e.value) and "\n" not in str(e.value)


def test_hil_schema_scenario_prints_a_json_schema_the_shipped_file_meets(capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import tomllib

    jsonschema = pytest.importorskip("jsonschema")
    assert hil_main(["schema", "scenario"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    raid = tomllib.loads(RAID.read_text())
    assert list(validator.iter_errors(raid)) == []
    launcher = schema["$defs"]["LauncherTable"]["properties"]
    assert launcher["rounds"]["type"] == "integer" and launcher["rounds"]["maximum"] == 1000
    raid["launcher"][0]["rounds"] = 6.5
    raid["target"][0]["mode3a"] = "9999"
    raid["radar"][0]["pd"] = True
    raid["unknown"] = 1
    assert len(list(validator.iter_errors(raid))) == 4
