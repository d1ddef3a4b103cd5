"""Choosing the host's tracker and fire control: hil's kernels, or a user's own behind the seams (hil.host.seams).

A choice is one string, from `--tracker` / `--fire-control`, the scenario's `[host]` table, or a recorded run:

    "hil"                      hil's Cython kernel (the default)
    "reference"                the numpy reference implementation (tracker only; slow, for comparison)
    "NAME"                     an entry point NAME in the group hil.trackers / hil.fire_controls
    "pkg.module:factory"       a factory importable from the Python path

A factory is called as factory(scenario, **options) and returns an object with the seam's methods; for fire
control, options are FireControlConfig overrides that hil's own kernel takes (a user's factory may ignore them).
Anything wrong with a choice (no such module, no such name, not callable, the wrong methods) is one PluginError
line naming the choice and what to do.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from hil.errors import HilError
from hil.host.kernels import build_fire_control, build_reference_tracker, build_tracker
from hil.host.seams import FireControl, KernelFireControl, Tracker
from hil.scenario import Scenario

TRACKER_GROUP = "hil.trackers"
FIRE_CONTROL_GROUP = "hil.fire_controls"
DEFAULT = "hil"


class PluginError(HilError):
    """A tracker or fire-control choice that cannot be loaded or does not fit its seam."""


def _kernel_fire_control(scenario: Scenario, **overrides: Any) -> FireControl:
    return KernelFireControl(build_fire_control(scenario, **overrides))


BUILT_IN: dict[str, dict[str, Callable[..., Any]]] = {
    TRACKER_GROUP: {"hil": build_tracker, "reference": build_reference_tracker},
    FIRE_CONTROL_GROUP: {"hil": _kernel_fire_control},
}
SEAMS: dict[str, tuple[str, type, tuple[str, ...]]] = {
    TRACKER_GROUP: ("tracker", Tracker, ("update", "sector_swept", "tracks")),
    FIRE_CONTROL_GROUP: ("fire control", FireControl, ("decide",)),
}


def find_factory(choice: str, group: str) -> Callable[..., Any]:
    """The factory a choice names (see the module's docstring)."""
    what = SEAMS[group][0]
    if choice in BUILT_IN[group]:
        return BUILT_IN[group][choice]
    if ":" not in choice:
        found = [ep for ep in entry_points(group=group) if ep.name == choice]
        if not found:
            names = sorted({*BUILT_IN[group], *(ep.name for ep in entry_points(group=group))})
            raise PluginError(f"{what} {choice!r}: no such {what}; built in or installed: {', '.join(names)}; "
                              "or give pkg.module:factory")
        try:
            factory: Callable[..., Any] = found[0].load()
        except Exception as e:
            raise PluginError(f"{what} {choice!r} (entry point {found[0].value}) does not load: {e}") from None
        return factory
    module_name, _, attr = choice.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # a user's module may fail any way while importing
        raise PluginError(f"{what} {choice!r}: cannot import {module_name}: {e}") from None
    found_attr: Any = module
    for part in attr.split("."):
        found_attr = getattr(found_attr, part, None)
        if found_attr is None:
            raise PluginError(f"{what} {choice!r}: {module_name} has no {attr}")
    if not callable(found_attr):
        raise PluginError(f"{what} {choice!r}: {attr} is not callable (a factory(scenario, **options) is needed)")
    return found_attr


def _checked(obj: Any, choice: str, group: str) -> Any:
    what, _, methods = SEAMS[group]
    missing = [m for m in methods if not callable(getattr(obj, m, None))]
    if missing:
        raise PluginError(f"{what} {choice!r} made a {type(obj).__name__} without {', '.join(missing)} "
                          f"(docs/PLUGINS.md)")
    return obj


def _make(group: str, choice: str, scenario: Scenario, **options: Any) -> Any:
    what = SEAMS[group][0]
    factory = find_factory(choice, group)
    try:
        made = factory(scenario, **options)
    except HilError:
        raise
    except Exception as e:  # a user's factory may fail any way
        raise PluginError(f"{what} {choice!r} failed to build: {type(e).__name__}: {e}") from None
    return _checked(made, choice, group)


def make_tracker(scenario: Scenario, choice: str | None = None) -> Tracker:
    """The tracker a choice names (default: the scenario's [host] tracker), built for the scenario."""
    tracker: Tracker = _make(TRACKER_GROUP, choice or scenario.tracker, scenario)
    return tracker


def make_fire_control(scenario: Scenario, choice: str | None = None, **overrides: Any) -> FireControl:
    """The fire control a choice names (default: the scenario's [host] fire_control), built for the scenario."""
    fc: FireControl = _make(FIRE_CONTROL_GROUP, choice or scenario.fire_control, scenario, **overrides)
    return fc


@dataclass(frozen=True)
class HostChoice:
    """Which tracker and fire control a run's host uses (None: the scenario's)."""

    tracker: str | None = None
    fire_control: str | None = None

    def resolved(self, scenario: Scenario) -> HostChoice:
        return HostChoice(self.tracker or scenario.tracker, self.fire_control or scenario.fire_control)


__all__ = ["FIRE_CONTROL_GROUP", "TRACKER_GROUP", "HostChoice", "PluginError", "find_factory", "make_fire_control",
           "make_tracker"]
