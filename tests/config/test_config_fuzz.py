"""Fuzzing the scenario and rig loaders: whatever a file holds, the answer is a usable object or one ConfigError."""

from __future__ import annotations

import copy
import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.errors import ConfigError
from hil.rig import Rig
from hil.scenario import Scenario, ScenarioFile
from tests.helpers import REPO

RAID = tomllib.loads((REPO / "scenarios" / "raid.toml").read_text())
RIGS = [tomllib.loads((REPO / "rigs" / f"{name}.toml").read_text()) for name in ("mock", "simavr", "bench-example")]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SWEEP = settings(max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# values near the edges the loaders must tell apart, besides whatever hypothesis makes up
EDGES = [0, -1, 1, 6.5, 1e9, 1e300, -1e300, 2**63 - 1, -(2**63), math.nan, math.inf, -math.inf, True, False, "",
         "4001", "9999", "mock", "tcp", "serial", "simavr", "rtu", "salvo", "auto", "127.0.0.1:1502", "radar",
         [0, 0, 0], [52.0, 4.5, 0.0], [1e300, 0, 0], [math.nan] * 3, [1, 2], []]
scalars = st.one_of(
    st.sampled_from(EDGES), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(), st.text(max_size=20), st.datetimes(), st.dates(), st.times(),
)
keys = st.one_of(st.sampled_from([*sorted(ScenarioFile.model_fields), "board", "name", "position_enu_m", "rounds"]),
                 st.text(min_size=1, max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=12)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a parsed TOML document: each key of each table and each item of each array."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


def edited(doc: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def load(loader: Any, path: Path, content: bytes) -> Any:
    """loader(path): an object, or None after exactly one ConfigError of one line naming the file."""
    path.write_bytes(content)
    try:
        return loader(path)
    except ConfigError as e:
        message = str(e)
        assert message.startswith(f"{path}: ") and "\n" not in message and len(message) < 600, message
        return None


def numbers_in(obj: Any) -> list[Any]:
    """Every number a loaded Scenario or Rig holds, found through its dataclasses, tuples and dicts."""
    if dataclasses.is_dataclass(obj):
        return [n for f in dataclasses.fields(obj) for n in numbers_in(getattr(obj, f.name))]
    if isinstance(obj, tuple | list | frozenset):
        return [n for v in obj for n in numbers_in(v)]
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in numbers_in(v)]
    return [obj] if isinstance(obj, int | float) else []


def check_usable(sc: Scenario) -> None:
    """What an accepted scenario promises the runtime: finite numbers, positions and speeds in physical bounds."""
    assert all(not isinstance(n, bool) and math.isfinite(n) for n in numbers_in(sc))
    places = [t.position for t in sc.targets] + [r.site for r in sc.radars] + [s.position for s in sc.launchers]
    assert all(abs(c) <= 1e6 for p in places for c in p)
    assert all(1.0 <= math.hypot(*t.velocity) <= 10_000.0 for t in sc.targets)
    assert all(isinstance(s.rounds, int) and 0 <= s.rounds <= 1000 and isinstance(s.channels, int)
               for s in sc.launchers)
    assert sc.launchers and sc.radars and sc.targets and isinstance(sc.seed, int)


@FUZZ
@given(st.data(), values, st.booleans())
def test_any_value_in_any_field_of_the_raid_gives_a_scenario_or_one_line(
        folder: Path, data: st.DataObject, value: Any, delete: bool) -> None:
    path = data.draw(st.sampled_from(paths(RAID)))
    sc = load(Scenario.load, folder / "raid.toml", tomli_w.dumps(edited(RAID, path, value, delete)).encode())
    if sc is not None:
        check_usable(sc)


@FUZZ
@given(st.data(), values, st.booleans(), st.sampled_from(RIGS))
def test_any_value_in_any_field_of_a_rig_gives_a_rig_or_one_line(
        folder: Path, data: st.DataObject, value: Any, delete: bool, rig: dict[str, Any]) -> None:
    path = data.draw(st.sampled_from(paths(rig)))
    loaded = load(Rig.load, folder / "rig.toml", tomli_w.dumps(edited(rig, path, value, delete)).encode())
    if loaded is not None:
        assert all(not isinstance(n, bool) and math.isfinite(n) for n in numbers_in(loaded))


@FUZZ
@given(st.dictionaries(keys, values, max_size=8))
def test_any_document_gives_one_line_or_a_usable_result(folder: Path, doc: dict[str, Any]) -> None:
    content = tomli_w.dumps(doc).encode()
    sc = load(Scenario.load, folder / "doc.toml", content)
    if sc is not None:
        check_usable(sc)
    load(Rig.load, folder / "doc.toml", content)


@FUZZ
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_bytes_give_one_line_or_a_usable_result(folder: Path, content: bytes) -> None:
    assert load(Scenario.load, folder / "bytes.toml", content) is None  # a scenario needs tables no noise makes
    load(Rig.load, folder / "bytes.toml", content)


@pytest.mark.sweep
@SWEEP
@given(st.data(), st.lists(st.tuples(values, st.booleans()), min_size=1, max_size=4))
def test_sweep_several_edits_at_once(folder: Path, data: st.DataObject, edits: list[tuple[Any, bool]]) -> None:
    doc = RAID
    for value, delete in edits:
        places = paths(doc)
        if not places:
            break
        doc = edited(doc, data.draw(st.sampled_from(places)), value, delete)
    sc = load(Scenario.load, folder / "many.toml", tomli_w.dumps(doc).encode())
    if sc is not None:
        check_usable(sc)
