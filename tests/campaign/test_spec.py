"""Campaign files: what is taken, each mistake as one line naming the field, and fuzzed documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.campaign.spec import apply_point, campaign_from, load_campaign, parse_seeds
from hil.errors import ConfigError
from hil.scenario import Scenario

GOOD = """
name = "magazine"
scenario = "raid"
seeds = "1-20,40"
duration_s = 30
[grid]
doctrine = ["shoot-look-shoot", "salvo"]
launcher.rounds = [4, 6, 8]
launcher.launcher-north.pk = [0.7]
[criteria]
leaks = 1
[campaign_criteria]
kill_probability_lower_bound = 0.8
fratricide_upper_bound = 0.02
"""


def test_a_campaign_file_gives_every_combination_and_the_scenario_with_its_values(tmp_path: Path) -> None:
    f = tmp_path / "magazine.toml"
    f.write_text(GOOD)
    c = load_campaign(f)
    assert c.seeds == (*range(1, 21), 40) and c.run_count == 6 * 21
    points = c.points()
    assert [p.label for p in points][:2] == [
        "raid doctrine=shoot-look-shoot launcher.rounds=4 launcher.launcher-north.pk=0.7",
        "raid doctrine=shoot-look-shoot launcher.rounds=6 launcher.launcher-north.pk=0.7"]
    sc = apply_point(Scenario.load("raid"), points[-1].settings, c.source)
    assert sc.doctrine == "salvo" and {x.rounds for x in sc.launchers} == {8}
    assert {x.name: x.pk for x in sc.launchers}["launcher-north"] == 0.7
    assert {x.name: x.pk for x in sc.launchers}["launcher-south"] == Scenario.load("raid").launchers[1].pk


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"seeds": "20-1"}, "seeds", "backwards"),
    ({"seeds": "1-2,2"}, "seeds", "twice"),
    ({"seeds": True}, "seeds", "1-200"),
    ({"grid": {"launcher": {"rounds": [4, -1]}}}, "grid.launcher.rounds[1]", "at least 0"),
    ({"grid": {"launcher": {"nowhere": {"rounds": [4]}}}}, "grid.launcher.nowhere.rounds", "no launcher named"),
    ({"grid": {"launcher": {"colour": [4]}}}, "grid.launcher.colour", "not a field"),
    ({"grid": {"doctrine": ["salvo", "ripple"]}}, "grid.doctrine[1]", "must be"),
    ({"grid": {"weather": [1]}}, "grid.weather", "no grid key"),
    ({"grid": {"launcher": {"min_range_m": [50_000.0]}}}, "grid.launcher.min_range_m = 50000", "below max_range_m"),
    ({"campaign_criteria": {"kill_probability_lower_bound": 80}}, "campaign_criteria.kill_probability_lower_bound",
     "fraction"),
    ({"campaign_criteria": {"kill_rate": 0.8}}, "campaign_criteria", "no campaign criterion"),
    ({"criteria": {"leaks": -1}}, "criteria.leaks", ">= 0"),
    ({"scenario": "no-such-scenario"}, "", "no-such-scenario"),
    ({"colour": "red"}, "colour", "unknown field"),
])
def test_each_mistake_is_one_line_naming_its_field(change: dict[str, Any], field: str, words: str) -> None:
    doc: dict[str, Any] = {"scenario": "raid", "seeds": "1-3", **change}
    with pytest.raises(ConfigError) as e:
        campaign_from(doc, "c.toml")
    text = str(e.value)
    assert "\n" not in text and field in text and words in text, text


def test_a_campaign_needs_a_scenario_and_seeds() -> None:
    with pytest.raises(ConfigError, match="needs a scenario"):
        campaign_from({"seeds": 1}, "c.toml")
    with pytest.raises(ConfigError, match="seeds"):
        campaign_from({"scenario": "raid"}, "c.toml")


def test_seeds_forms() -> None:
    assert parse_seeds("1-3,7", "s") == (1, 2, 3, 7)
    assert parse_seeds([5, 2], "s") == (5, 2)
    assert parse_seeds(9, "s") == (9,)
    with pytest.raises(ConfigError, match="more than"):
        parse_seeds("0-4000000000", "s")


_values = st.recursive(st.none() | st.booleans() | st.integers(-10, 10**10) | st.floats(allow_nan=True) |
                       st.text(max_size=12), lambda inner: st.lists(inner, max_size=4) |
                       st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
_keys = st.sampled_from(["name", "scenario", "scenarios", "seeds", "grid", "criteria", "campaign_criteria", "time",
                         "duration_s", "record", "rig", "launcher", "doctrine", "rounds"])


@given(st.dictionaries(_keys, _values, max_size=6), st.dictionaries(
    st.sampled_from(["doctrine", "launcher", "radar", "salvo_size", "tracker", "x"]), _values, max_size=3))
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_document_is_a_campaign_or_one_config_error_line(doc: dict[str, Any], grid: dict[str, Any]) -> None:
    doc = {"scenario": "raid", "seeds": "1-2", **doc}
    if grid:
        doc["grid"] = grid
    try:
        c = campaign_from(doc, "fuzz.toml")
    except ConfigError as e:
        assert "\n" not in str(e) and str(e).startswith("fuzz.toml: ")
    else:
        assert c.run_count >= 1
