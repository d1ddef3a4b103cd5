"""Errors a user sees: each names the file and the field that is wrong, never a traceback."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


class HilError(Exception):
    """Base of every error hil reports to a user in one line."""


class ConfigError(HilError):
    """A rig or scenario file (or a command-line value) that cannot be used as written."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source, self.field, self.problem = source, field, problem
        super().__init__(f"{source}: {field}: {problem}")


class LinkError(HilError):
    """A link to a board that cannot be opened or has stopped answering."""


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """A TOML file's content; a missing file or a syntax error is one ConfigError naming the file."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(str(path), "file", f"no such {what} file") from None
    except IsADirectoryError:
        raise ConfigError(str(path), "file", f"is a directory, not a {what} file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), "syntax", str(e)) from None
