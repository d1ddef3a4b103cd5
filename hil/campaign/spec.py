"""A campaign file (or the same on the command line): scenarios, seeds, a parameter grid and criteria, checked.

    name = "raid-magazine"
    scenario = "raid"                  # or scenarios = ["raid", "my-scene.toml"] (relative to this file)
    rig = "mock"
    time = "virtual"
    seeds = "1-200"                    # "1-20,40,50-59", [1, 2, 3] or 7
    duration_s = 60                    # optional: the scenario's own when absent

    [grid]                             # every combination of these values is a grid point
    doctrine = ["shoot-look-shoot", "salvo"]
    launcher.rounds = [4, 6, 8]        # every launcher; launcher.launcher-north.rounds for one of them

    [criteria]                         # each run's (docs/CRITERIA.md), over the scenario's own
    leaks = 1

    [campaign_criteria]                # over all runs of a grid point (docs/CAMPAIGNS.md)
    kill_probability_lower_bound = 0.8
    fratricide_upper_bound = 0.02

A grid value is checked with the scenario file's own field rules, and applied to the loaded Scenario with
dataclasses.replace, so a grid point is exactly the scenario with those fields written differently.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, Strict

from hil.config_schema import MAX_DURATION_S, FileModel, Name, Number, Text, shown, validate
from hil.errors import ConfigError, read_toml
from hil.measure.verdict import criteria_from
from hil.rig import Rig
from hil.scenario import FireControlTable, HostTable, LauncherTable, RadarTable, Scenario

MAX_RUNS = 100_000  # a campaign bigger than this is a typo (a seed range with an extra zero)
MAX_SEED = 2**32 - 1
_SEEDS_FORM = 'must be like "1-200", a list of integers or an integer'
_SEED_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")

# grid keys on the scenario itself, checked by the scenario file's table that holds them
SCENARIO_KEYS: dict[str, type[FileModel]] = {
    "doctrine": FireControlTable, "salvo_size": FireControlTable, "look_scans": FireControlTable,
    "protect_radius_m": FireControlTable, "tracker": HostTable, "fire_control": HostTable,
}
# launcher.FIELD: every field of a [[launcher]] but where it stands
LAUNCHER_FIELDS = tuple(k for k in LauncherTable.model_fields if k not in ("name", "position_enu_m", "position_lla"))
# radar.FIELD: the [[radar]] fields written in the same units as the scenario holds them
RADAR_FIELDS = ("scan_period_s", "sigma_range_m", "sigma_range_rate_mps", "pd", "clutter_per_scan", "max_range_m",
                "iff_reply_p")


def parse_seeds(value: Any, source: str) -> tuple[int, ...]:
    """ "1-200", "1-20,40", [1, 2, 3] or 7 as the seeds in order, each once."""
    if isinstance(value, bool):
        raise ConfigError(source, "seeds", f"{_SEEDS_FORM}, got {shown(value)}")
    items: list[int] = []
    if isinstance(value, int):
        items = [value]
    elif isinstance(value, list):
        if not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(source, "seeds", f"must be a non-empty list of integers, got {shown(value)}")
        items = list(value)
    elif isinstance(value, str):
        for part in value.split(","):
            m = _SEED_ITEM.match(part)
            if not m:
                raise ConfigError(source, "seeds", f'must be like "1-200" or "1-20,40", got {shown(value)}')
            lo = int(m.group(1))
            hi = int(m.group(2)) if m.group(2) is not None else lo
            if hi < lo:
                raise ConfigError(source, "seeds", f"range {part.strip()} runs backwards")
            if hi - lo >= MAX_RUNS or len(items) + hi - lo >= MAX_RUNS:
                raise ConfigError(source, "seeds", f"more than {MAX_RUNS:,} seeds")
            items.extend(range(lo, hi + 1))
    else:
        raise ConfigError(source, "seeds", f"{_SEEDS_FORM}, got {shown(value)}")
    if any(not 0 <= s <= MAX_SEED for s in items):
        raise ConfigError(source, "seeds", f"each seed is from 0 to {MAX_SEED}")
    if len(set(items)) != len(items):
        raise ConfigError(source, "seeds", "a seed is given twice")
    return tuple(items)


class CampaignFile(FileModel):
    """A hil campaign: many seeded runs of one or more scenarios over a parameter grid."""

    name: Name | None = Field(None, description="default: the file's stem")
    description: Text = ""
    scenario: Annotated[str, Strict(), Field(min_length=1, max_length=1000)] | None = None
    scenarios: list[Annotated[str, Strict(), Field(min_length=1, max_length=1000)]] | None = Field(
        None, min_length=1, max_length=100)
    rig: Annotated[str, Strict(), Field(min_length=1, max_length=1000)] | None = None
    time: Literal["virtual", "real"] = "virtual"
    seeds: Any = Field(description='"1-200", "1-20,40", a list of integers or one integer')
    duration_s: Number | None = Field(None, gt=0.0, le=MAX_DURATION_S)
    record: Annotated[bool, Strict()] = True
    run_reports: Annotated[bool, Strict()] = False
    gather: Annotated[bool, Strict()] = Field(False, description="send each run folder back to the campaign folder")
    grid: dict[str, Any] = Field(default_factory=dict)
    criteria: dict[str, Any] = Field(default_factory=dict)
    campaign_criteria: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class GridPoint:
    """One scenario with one value for each grid key."""

    scenario: str
    settings: tuple[tuple[str, Any], ...]

    @property
    def label(self) -> str:
        """For people: "raid doctrine=salvo launcher.rounds=6"."""
        return " ".join([self.scenario, *(f"{k}={_text(v)}" for k, v in self.settings)])

    @property
    def slug(self) -> str:
        """The point's folder name under runs/: the label with only file-name-safe characters."""
        text = "_".join([self.scenario, *(f"{k}={_text(v)}" for k, v in self.settings)])
        text = re.sub(r"[^A-Za-z0-9._=+-]+", "-", text).strip("-.") or "point"
        if len(text) > 120:  # long grids: a readable head and the digest of the whole
            text = text[:100] + "-" + hashlib.sha256(text.encode()).hexdigest()[:12]
        return text


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class Campaign:
    """A checked campaign: what to run. plan() (hil.campaign.runner) turns it into runs."""

    name: str
    scenarios: tuple[str, ...]  # shipped names or absolute paths
    seeds: tuple[int, ...]
    rig: str | None = None
    time: str = "virtual"
    duration_s: float | None = None
    record: bool = True
    run_reports: bool = False
    gather: bool = False  # workers send each run folder back instead of writing it at the campaign folder's path
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    criteria: dict[str, Any] = field(default_factory=dict, hash=False)
    campaign_criteria: dict[str, Any] = field(default_factory=dict, hash=False)
    source: str = "<command line>"
    description: str = ""

    def points(self) -> list[GridPoint]:
        keys = [k for k, _ in self.grid]
        combos = list(itertools.product(*(values for _, values in self.grid)))
        return [GridPoint(_scenario_label(s), tuple(zip(keys, combo, strict=True)))
                for s in self.scenarios for combo in combos]

    @property
    def run_count(self) -> int:
        return len(self.points()) * len(self.seeds)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "scenarios": list(self.scenarios), "rig": self.rig,
                "time": self.time, "seeds": list(self.seeds), "duration_s": self.duration_s, "record": self.record,
                "run_reports": self.run_reports, "gather": self.gather, "grid": {k: list(v) for k, v in self.grid},
                "criteria": self.criteria, "campaign_criteria": self.campaign_criteria}


def _scenario_label(s: str) -> str:
    return Path(s).stem if s.endswith(".toml") else s


def flatten_grid(table: Mapping[str, Any], source: str, prefix: str = "") -> dict[str, list[Any]]:
    """[grid] with TOML's dotted keys (launcher.rounds = [...] is {"launcher": {"rounds": [...]}}) as
    {"launcher.rounds": [...]}; a single value is a list of one."""
    out: dict[str, list[Any]] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if not value:
                raise ConfigError(source, f"grid.{name}", "is an empty table")
            out.update(flatten_grid(value, source, name + "."))
            continue
        values = value if isinstance(value, list) else [value]
        if not values:
            raise ConfigError(source, f"grid.{name}", "needs at least one value")
        if len(values) > 1000:
            raise ConfigError(source, f"grid.{name}", "more than 1,000 values")
        out[name] = values
    return out


def _field_of(key: str) -> tuple[type[FileModel], str, str | None]:
    """(the file table that checks it, its field, the launcher or radar it is for or None) of a grid key."""
    parts = key.split(".")
    if len(parts) == 1 and key in SCENARIO_KEYS:
        return SCENARIO_KEYS[key], key, None
    if parts[0] in ("launcher", "radar") and len(parts) in (2, 3):
        table: type[FileModel] = LauncherTable if parts[0] == "launcher" else RadarTable
        fields = LAUNCHER_FIELDS if parts[0] == "launcher" else RADAR_FIELDS
        if parts[-1] in fields:
            return table, parts[-1], parts[1] if len(parts) == 3 else None
        raise KeyError(f"{parts[0]}.{parts[-1]} is not a field the grid can set; known: {', '.join(fields)}")
    raise KeyError(f"no grid key {shown(key)}; known: {', '.join(SCENARIO_KEYS)}, launcher.FIELD, "
                   "launcher.NAME.FIELD, radar.FIELD, radar.NAME.FIELD")


def check_grid(grid: Mapping[str, list[Any]], source: str) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """Each grid value checked by the scenario file's rule for its field; one ConfigError line otherwise."""
    out = []
    for key, values in grid.items():
        try:
            table, name, _ = _field_of(key)
        except KeyError as e:
            raise ConfigError(source, f"grid.{key}", str(e.args[0])) from None
        checked = []
        for i, v in enumerate(values):
            try:
                model = validate(table, {name: v}, source)
            except ConfigError as e:
                raise ConfigError(source, f"grid.{key}[{i}]", e.problem) from None
            checked.append(getattr(model, name))
        if len(set(map(repr, checked))) != len(checked):
            raise ConfigError(source, f"grid.{key}", "a value is given twice")
        out.append((key, tuple(checked)))
    return tuple(out)


def apply_point(scenario: Scenario, settings: tuple[tuple[str, Any], ...], source: str) -> Scenario:
    """The scenario with a grid point's values written in (dataclasses.replace on the frozen dataclasses)."""
    for key, value in settings:
        table, name, which = _field_of(key)
        where = f"grid.{key}"
        if table in (LauncherTable, RadarTable):
            attr = "launchers" if table is LauncherTable else "radars"
            items = getattr(scenario, attr)
            if which is not None and which not in {x.name for x in items}:
                raise ConfigError(source, where, f"scenario {scenario.name} has no {attr[:-1]} named {shown(which)} "
                                                 f"(it has {', '.join(x.name for x in items)})")
            try:
                new = tuple(dataclasses.replace(x, **{name: value}) if which in (None, x.name) else x for x in items)
            except ConfigError as e:  # a value the launcher's own checks refuse (min_range_m above max_range_m)
                raise ConfigError(source, f"{where} = {_text(value)}", f"in scenario {scenario.name}: {e.problem}") \
                    from None
            changed: dict[str, Any] = {attr: new}
            scenario = dataclasses.replace(scenario, **changed)
        else:
            scenario = dataclasses.replace(scenario, **{name: value})
    return scenario


def _scenario_path(text: str, base: Path | None) -> str:
    """A scenario named in a campaign file: a path relative to that file, or a shipped name."""
    if base is not None and (text.endswith(".toml") or "/" in text):
        p = (base / text).resolve()
        if p.is_file():
            return str(p)
    p = Path(text)
    return str(p.resolve()) if p.is_file() else text


def campaign_from(doc: Mapping[str, Any], source: str, base: Path | None = None, default_name: str = "campaign") \
        -> Campaign:
    """A campaign from a campaign file's table (or the same built from the command line); one ConfigError line
    for the first mistake. Scenarios and the rig are loaded here, so a wrong name fails before any run."""
    from hil.campaign.verdict import campaign_criteria_from

    if not isinstance(doc, Mapping):
        raise ConfigError(source, "file", "must be a table")
    f = validate(CampaignFile, doc, source)
    if f.scenario is not None and f.scenarios is not None:
        raise ConfigError(source, "scenarios", "give scenario or scenarios, not both")
    names = [f.scenario] if f.scenario is not None else (f.scenarios or [])
    if not names:
        raise ConfigError(source, "scenario", "a campaign needs a scenario (a shipped name or a file)")
    if len(set(names)) != len(names):
        raise ConfigError(source, "scenarios", "a scenario is named twice")
    if "seeds" not in doc:
        raise ConfigError(source, "seeds", 'missing: say which seeds to run, e.g. seeds = "1-200"')
    seeds = parse_seeds(f.seeds, source)
    grid = check_grid(flatten_grid(f.grid, source), source)
    criteria_from(f.criteria, source)  # "c.toml: criteria: ..." like every other line
    campaign_criteria_from(f.campaign_criteria, source)
    paths = tuple(_scenario_path(n, base) for n in names)
    if len({_scenario_label(p) for p in paths}) != len(paths):
        raise ConfigError(source, "scenarios", "two scenarios have the same name")
    campaign = Campaign(name=f.name or default_name, scenarios=paths, seeds=seeds, rig=f.rig, time=f.time,
                        duration_s=f.duration_s, record=f.record, run_reports=f.run_reports, gather=f.gather, grid=grid,
                        criteria=dict(f.criteria), campaign_criteria=dict(f.campaign_criteria), source=source,
                        description=f.description)
    if campaign.run_count > MAX_RUNS:
        raise ConfigError(source, "grid", f"{campaign.run_count:,} runs: more than {MAX_RUNS:,}")
    for path in paths:  # every grid point of every scenario can be built: a mistake shows now, not at run 150
        sc = Scenario.load(path)
        for p in campaign.points():
            apply_point(sc, p.settings, source)
    Rig.load(campaign.rig)
    return campaign


def load_campaign(path: str | Path) -> Campaign:
    p = Path(path)
    doc = read_toml(p, "campaign")
    return campaign_from(doc, str(p), base=p.resolve().parent, default_name=p.stem)


def digest(*parts: Any) -> str:
    """A short stable digest of what makes a run what it is (its scenario, rig and settings)."""
    text = json.dumps([p if isinstance(p, str | int | float | bool | type(None)) else repr(p) for p in parts],
                      sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = ["MAX_RUNS", "Campaign", "CampaignFile", "GridPoint", "apply_point", "campaign_from", "check_grid",
           "digest", "flatten_grid", "load_campaign", "parse_seeds"]
