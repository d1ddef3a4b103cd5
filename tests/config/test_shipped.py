"""Rigs and scenarios by name: --rig simavr and --scenario safety/escorts from any folder; a path still wins."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil import shipped
from hil.commands.cli import main as hil_main
from hil.errors import ConfigError
from hil.rig import Rig
from hil.scenario import Scenario
from hil.shipped import resolve_rig, resolve_scenario, shipped_names
from tests.helpers import RAID, REPO


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """An empty current folder, as a user who has never seen the checkout has."""
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


def test_every_file_the_checkout_ships_has_a_name() -> None:
    assert shipped_names("rig") == sorted(p.stem for p in (REPO / "rigs").glob("*.toml"))
    assert {"raid", "safety/escorts", "safety/crossing", "safety/no-fire-zones"} <= set(shipped_names("scenario"))
    assert len(shipped_names("scenario")) == len(list((REPO / "scenarios").rglob("*.toml")))


def test_names_resolve_from_any_folder(elsewhere: Path) -> None:
    assert Rig.load("simavr").boards == Rig.load(REPO / "rigs" / "simavr.toml").boards
    assert Rig.load().name == "mock"  # the default rig, without a file beside the user
    assert Scenario.load("raid").name == "raid"
    escorts = Scenario.load("safety/escorts")
    assert Path(escorts.source) == shipped.data_root() / "scenarios" / "safety" / "escorts.toml"
    # the checkout's relative spellings (the README's --rig rigs/simavr.toml) and a .toml suffix name the same files
    assert resolve_rig("rigs/simavr.toml") == resolve_rig("simavr") == resolve_rig("simavr.toml")
    assert resolve_scenario("scenarios/safety/escorts.toml") == resolve_scenario("safety/escorts")


def test_a_path_in_the_current_folder_wins_over_a_shipped_name(elsewhere: Path) -> None:
    mine = elsewhere / "raid.toml"
    mine.write_text(RAID.read_text().replace('name = "raid"', 'name = "my-raid"', 1))
    assert Scenario.load("raid.toml").name == "my-raid"  # a file here, as given
    assert Scenario.load(str(mine)).source == str(mine)
    assert Scenario.load("raid").name == "raid"  # a bare name is the shipped scenario (no file called "raid" here)
    (elsewhere / "rigs").mkdir()
    local = elsewhere / "rigs" / "mock.toml"
    local.write_text('name = "bench-7"\n[defaults]\nradar_board = "mock"\nlauncher_board = "mock"\n')
    assert Rig.load("rigs/mock.toml").name == "bench-7"


def test_an_unknown_name_is_one_line_listing_the_shipped_names(elsewhere: Path) -> None:
    with pytest.raises(ConfigError) as e:
        Rig.load("simavrr")
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith("simavrr: file: no such rig file")
    assert "shipped: bench-example, mock, simavr" in text
    with pytest.raises(ConfigError, match=r"shipped: raid, safety/crossing, .*safety/saturation\)$"):
        Scenario.load("safety/nope")


def test_an_unknown_name_on_the_command_line_is_exit_2_with_that_line(elsewhere: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert hil_main(["run", "--time", "virtual", "--rig", "nosuch", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "nosuch: file: no such rig file" in err and "mock" in err
    assert len(err.strip().splitlines()) == 1


def test_a_name_never_reaches_outside_the_shipped_folder(elsewhere: Path) -> None:
    # scenarios/../rigs/mock.toml exists, but a name is looked up inside scenarios/ only
    with pytest.raises(ConfigError, match="no shipped scenario"):
        Scenario.load("../rigs/mock")
    with pytest.raises(ConfigError, match="no shipped rig"):
        Rig.load("/nonexistent/simavr")  # an absolute path is a path, never a name


def test_a_folder_is_read_as_a_folder(elsewhere: Path) -> None:
    (elsewhere / "bench").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        Rig.load("bench")


def test_installed_layout_is_preferred_to_the_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wheel's hil/data/ (what setup.py ships) is where names resolve when it is there."""
    data = tmp_path / "data"
    (data / "rigs").mkdir(parents=True)
    (data / "rigs" / "lab.toml").write_text('name = "lab"\n[defaults]\nradar_board = "mock"\nlauncher_board = "mock"\n')
    monkeypatch.setattr(shipped, "INSTALLED_DATA", data)
    assert shipped.is_installed() and shipped.data_root() == data
    assert shipped_names("rig") == ["lab"]
    assert Rig.load("lab").name == "lab"
    assert shipped.firmware_dir() == data / "firmware_stubs"


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\0"), max_size=40))
def test_any_name_resolves_to_a_file_or_one_clear_error(text: str) -> None:
    try:
        found = resolve_scenario(text)
    except ConfigError as e:
        assert "no such scenario file" in str(e) and "shipped: raid" in str(e)
    else:
        assert found.exists()
        if found.is_file() and not Path(text).is_file():  # a shipped file: inside the shipped scenarios only
            assert found.resolve().is_relative_to((shipped.data_root() / "scenarios").resolve())
