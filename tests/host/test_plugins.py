"""Choosing a user's tracker or fire control: by pkg.module:factory, by entry point, and the one line each wrong
choice gives (hil.host.plugins)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hil.host.plugins import PluginError, make_fire_control, make_tracker
from hil.host.seams import EngagementInputs, FireControl, FireControlInputs, LauncherInputs, ProtectionInputs, Tracker
from hil.scenario import Scenario
from tests.helpers import CV_TRACKER_EXAMPLE

USER_MODULE = "hil_test_user_plugins"

# A user's module: factories good and bad, as someone writing their first plug-in might get them wrong
USER_PLUGINS = '''
from typing import Any

import numpy as np

from hil.host.seams import Assignments, Refusals


class OnlyUpdates:
    """A tracker that forgot sector_swept and tracks."""

    def update(self, *columns: Any) -> None:
        pass


class NoDecision:
    def explain(self, i: int) -> dict[str, Any]:
        return {}

    @property
    def assignments(self) -> Assignments:
        return Assignments(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros((0, 3)), np.zeros(0), np.zeros(0),
                           np.zeros(0))

    @property
    def refusals(self) -> Refusals:
        return Refusals(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int8), np.zeros(0, np.int32))


class HoldFire:
    """A fire control that never fires."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def decide(self, inputs: Any) -> NoDecision:
        return NoDecision()


def only_updates(scenario: Any, **options: Any) -> OnlyUpdates:
    return OnlyUpdates()


def needs_a_west_radar(scenario: Any, **options: Any) -> Any:
    raise ValueError("no radar called west")


def hold_fire(scenario: Any, **options: Any) -> HoldFire:
    return HoldFire(**options)


not_a_factory = 42
'''

# What `pip install` of a package declaring entry points leaves on the path
DIST_INFO_ENTRY_POINTS = '''
[hil.trackers]
cv = hil_cv_tracker:make_tracker
not-installed = hil_test_no_such_module:make_tracker

[hil.fire_controls]
hold-fire = hil_test_user_plugins:hold_fire
'''


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example and a user's module importable, as with PYTHONPATH; no module of theirs outlives the test."""
    (tmp_path / f"{USER_MODULE}.py").write_text(USER_PLUGINS)
    (tmp_path / "hil_test_fails_on_import.py").write_text("raise RuntimeError('licence server unreachable')\n")
    monkeypatch.syspath_prepend(str(CV_TRACKER_EXAMPLE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in (USER_MODULE, "hil_test_fails_on_import", "hil_cv_tracker"):
        sys.modules.pop(name, None)


@pytest.fixture
def installed(on_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A dist-info directory declaring entry points on the path: exactly what installing a plug-in creates."""
    site = on_path / "site"
    dist = site / "hil_test_plugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hil-test-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent(DIST_INFO_ENTRY_POINTS))
    monkeypatch.syspath_prepend(str(site))
    return site


@pytest.fixture(scope="module")
def raid() -> Scenario:
    return Scenario.load("raid")


def one_line(e: pytest.ExceptionInfo[PluginError]) -> str:
    text = str(e.value)
    assert "\n" not in text and text, text
    return text


def test_a_factory_on_the_python_path_is_the_tracker(on_path: Path, raid: Scenario) -> None:
    tracker = make_tracker(raid, "hil_cv_tracker:make_tracker")
    assert isinstance(tracker, Tracker)
    assert type(tracker).__name__ == "CVTracker"
    assert len(tracker.tracks().track_id) == 0


def test_an_installed_entry_point_is_chosen_by_its_name(installed: Path, raid: Scenario) -> None:
    tracker = make_tracker(raid, "cv")
    assert type(tracker).__name__ == "CVTracker" and isinstance(tracker, Tracker)
    fc = make_fire_control(raid, "hold-fire", salvo_size=1)
    assert isinstance(fc, FireControl)
    assert fc.options == {"salvo_size": 1}  # type: ignore[attr-defined]  # what the factory was given


def test_the_scenario_names_the_choice_when_none_is_given(on_path: Path, raid: Scenario) -> None:
    sc = replace(raid, tracker="hil_cv_tracker:make_tracker", fire_control=f"{USER_MODULE}:hold_fire")
    assert type(make_tracker(sc)).__name__ == "CVTracker"
    fc = make_fire_control(sc)
    no_tracks = make_tracker(sc).tracks()
    inputs = FireControlInputs(
        t_s=0.0, tracks=no_tracks,
        identity=ProtectionInputs(np.zeros(0), np.zeros(0, bool), np.zeros(0, bool), np.zeros(0)),
        engagements=EngagementInputs(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, bool)),
        launchers=LauncherInputs.none(len(sc.launchers)))
    decision = fc.decide(inputs)
    assert len(decision.assignments.track_index) == 0 and len(decision.refusals.track_index) == 0


@pytest.mark.parametrize(("choice", "says"), [
    ("hil_test_no_such_module:make", "tracker 'hil_test_no_such_module:make': cannot import hil_test_no_such_module"),
    ("hil_test_fails_on_import:make", "cannot import hil_test_fails_on_import: licence server unreachable"),
    (f"{USER_MODULE}:no_such_factory", f"{USER_MODULE} has no no_such_factory"),
    (f"{USER_MODULE}:not_a_factory", "not_a_factory is not callable"),
    (f"{USER_MODULE}:only_updates", "made a OnlyUpdates without sector_swept, tracks"),
    (f"{USER_MODULE}:needs_a_west_radar", "failed to build: ValueError: no radar called west"),
])
def test_each_wrong_tracker_choice_is_one_line_saying_what_is_wrong(on_path: Path, raid: Scenario, choice: str,
                                                                    says: str) -> None:
    with pytest.raises(PluginError) as e:
        make_tracker(raid, choice)
    assert says in one_line(e)
    assert choice in str(e.value)  # the line names the choice as the user wrote it


def test_an_unknown_name_lists_what_is_built_in_and_installed(installed: Path, raid: Scenario) -> None:
    with pytest.raises(PluginError) as e:
        make_tracker(raid, "kalman")
    line = one_line(e)
    assert "no such tracker" in line and "pkg.module:factory" in line
    for name in ("hil", "reference", "cv"):
        assert name in line
    with pytest.raises(PluginError) as e:
        make_fire_control(raid, "greedy")
    assert "no such fire control" in one_line(e) and "hold-fire" in str(e.value)


def test_an_entry_point_whose_module_is_gone_says_so(installed: Path, raid: Scenario) -> None:
    with pytest.raises(PluginError) as e:
        make_tracker(raid, "not-installed")
    assert "hil_test_no_such_module" in one_line(e) and "does not load" in str(e.value)


def test_a_fire_control_without_decide_is_refused(on_path: Path, raid: Scenario) -> None:
    with pytest.raises(PluginError) as e:
        make_fire_control(raid, "hil_cv_tracker:make_tracker")  # a tracker given as fire control
    assert "fire control" in one_line(e) and "without decide" in str(e.value)
