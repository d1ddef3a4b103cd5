"""Typed, ranged fields for the scenario and rig files, their one-line errors, and `hil schema scenario|rig`.

Library: pydantic v2. Why pydantic over msgspec: pydantic is already installed here and widely kept; its
per-type strict mode (`Strict()`) refuses what silently slipped through before (`true` for a number, `6.5` or
`1e9` for an integer, `5` for a name) while still taking a TOML list for a fixed-length vector; `AllowInfNan`
refuses NaN and infinities; every error carries its location as a tuple we turn into
`launcher[0] (launcher-north).rounds`; and `model_json_schema()` writes the JSON Schema (draft 2020-12) editors
use, with units and ranges in it, from the same models. msgspec would validate as well and faster, but a
configuration file is read once, it is not installed, and its errors and schema hooks are thinner.

The models describe the files as written (degrees, `position_lla`, `[[launcher]]` arrays); hil.scenario and
hil.rig turn a validated model into their dataclasses and check what spans fields (a name used twice, a
position given two ways). Use `validate(Model, doc, source)`; a bad value is one ConfigError.

Editors: `hil schema scenario > scenario.schema.json`, then start a scenario file with
`#:schema ./scenario.schema.json` (taplo / Even Better TOML) for completion, hover help and range checks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import reprlib
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import (
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from hil.errors import ConfigError

# Strict: a TOML boolean is not a number, a float is not an integer, a number is not a string. A TOML integer
# is still taken where a float is meant (`duration_s = 30`).
Number = Annotated[float, Strict(), AllowInfNan(False)]
Integer = Annotated[int, Strict()]
Text = Annotated[str, Strict(), Field(max_length=2_000)]
Name = Annotated[str, Strict(), Field(min_length=1, max_length=100)]

# Everything a scenario places (targets, sites, assets) lies within this distance of its origin on each axis:
# beyond any radar's horizon (470 km at most), so an extra zero or an exponent typo is caught.
MAX_DISTANCE_M = 1_000_000.0
# Nothing in the atmosphere flies faster than orbital speed (7.8 km/s).
MAX_SPEED_MPS = 10_000.0
MAX_DURATION_S = 86_400.0
M = TypeVar("M", bound=BaseModel)


class FileModel(BaseModel):
    """A table of a configuration file: unknown keys refused with the list of known ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key not in cls.model_fields:
                    raise PydanticCustomError("unknown_field", "unknown field (known: {known})",
                                              {"field": key, "known": ", ".join(cls.model_fields)})
        return data


def list_of(n: int, what: str) -> BeforeValidator:
    """Refuses anything but a list of n items with one message that says what the items are."""

    def check(value: Any) -> Any:
        if not isinstance(value, list) or len(value) != n:
            raise PydanticCustomError("vector", "must be a list of {n} numbers {what}, got {got}",
                                      {"n": n, "what": what, "got": shown(value)})
        return value

    return BeforeValidator(check)


Coordinate = Annotated[Number, Field(ge=-MAX_DISTANCE_M, le=MAX_DISTANCE_M)]
Enu = Annotated[tuple[Coordinate, ...], Field(min_length=3, max_length=3, description="[x east, y north, z up] in "
                                              "metres from the scenario origin"), list_of(3, "[x, y, z]")]
# [latitude, longitude, height]: each in its own physical range, the height from below sea level to low orbit
Lla = Annotated[tuple[Annotated[Number, Field(ge=-90.0, le=90.0)], Annotated[Number, Field(ge=-180.0, le=180.0)],
                      Annotated[Number, Field(ge=-1_000.0, le=MAX_DISTANCE_M)]],
                Field(description="[latitude deg in [-90, 90], longitude deg in [-180, 180], WGS84 height m]"),
                list_of(3, "[lat, lon, h]")]


def default_of(cls: type, name: str) -> Any:
    """A dataclass field's default, so a file's default and the code's are one value."""
    f = cls.__dataclass_fields__[name]  # type: ignore[attr-defined]
    if f.default is not dataclasses.MISSING:
        return f.default
    raise KeyError(f"{cls.__name__}.{name} has no default")


# --- errors -----------------------------------------------------------------------------------------------

_short = reprlib.Repr()
_short.maxstring = _short.maxother = _short.maxlong = 40
_short.maxlist = _short.maxdict = 4
_short.maxlevel = 2


def shown(value: object) -> str:
    """A value as the user wrote it, short and on one line (a 1 MiB string or a deep array stays short)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        return _short.repr(value)
    except Exception:  # a repr that fails must not become a traceback
        return f"<{type(value).__name__}>"


def _segment(key: object) -> str:
    text = str(key)
    return text if text.isidentifier() and len(text) <= 60 else shown(key)


def _name(name: object) -> str | None:
    return name if isinstance(name, str) and name.isprintable() and 0 < len(name) <= 60 else None


def field_path(doc: Any, loc: tuple[Any, ...], named: frozenset[str]) -> str:
    """`launcher[0] (launcher-north).rounds` for loc ("launcher", 0, "rounds"): an item of a named array is
    shown with its name (or the name it gets by default, `<array>-<n>`)."""
    out, node, parent = "", doc, None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            item = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            if isinstance(parent, str) and parent in named:
                out += f" ({_name(item.get('name') if isinstance(item, dict) else None) or f'{parent}-{part + 1}'})"
            node = item
        else:
            out += ("." if out else "") + _segment(part)
            node = node.get(part) if isinstance(node, dict) else None
        parent = part
    return out or "file"


# pydantic's error types in the words of a configuration file
_PROBLEMS = {
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "list_type": "must be an array",
    "model_type": "must be a table",
    "finite_number": "must be a finite number",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be above {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be below {lt}",
    "literal_error": "must be {expected}",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "too_long": "must have at most {max_length} items",
    "too_short": "must have at least {min_length} items",
}


def problem_of(error: Mapping[str, Any]) -> str:
    """One error as a short sentence with the value that was written."""
    kind = error["type"]
    if kind == "missing":
        return "missing"
    if kind in ("unknown_field", "mode3a", "vector"):
        return str(error["msg"])
    template = _PROBLEMS.get(kind)
    text = template.format(**(error.get("ctx") or {})) if template else str(error["msg"])
    return f"{text}, got {shown(error.get('input'))}"


def validate(model: type[M], doc: Mapping[str, Any], source: str, named: frozenset[str] = frozenset()) -> M:
    """doc validated by model; the first bad value as one ConfigError naming source and field."""
    try:
        return model.model_validate(doc)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        # an error inside a value also fails the value as a whole: count the cause once
        locs = [tuple(err["loc"]) for err in errors]
        causes = [err for err, loc in zip(errors, locs, strict=True)
                  if not any(len(other) > len(loc) and other[:len(loc)] == loc for other in locs)]
        first = causes[0]
        loc = tuple(first["loc"])
        if first["type"] == "unknown_field":
            loc += (first["ctx"]["field"],)
        more = f" (and {len(causes) - 1} more)" if len(causes) > 1 else ""
        raise ConfigError(source, field_path(doc, loc, named), problem_of(first) + more) from None


# --- hil schema -------------------------------------------------------------------------------------------


class TomlJsonSchema(GenerateJsonSchema):
    """JSON Schema for a TOML file: TOML has no null, so an optional field is just one that may be left out."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        out = super().default_schema(schema)
        default = out.get("default")
        if default is None:
            out.pop("default", None)
        elif isinstance(default, dict):
            out["default"] = {k: v for k, v in default.items() if v is not None}
        return out


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of a scenario or rig file."""
    if kind == "scenario":
        from hil.scenario import ScenarioFile

        model: type[BaseModel] = ScenarioFile
    else:
        from hil.rig import RigFile

        model = RigFile
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            **model.model_json_schema(schema_generator=TomlJsonSchema)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=("scenario", "rig"), help="which file's schema to print")


def main(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(args.kind), indent=2))
    return 0
