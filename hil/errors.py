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
        super().__init__(one_line(f"{source}: {field}: {problem}"))


def one_line(text: str) -> str:
    """text with every character that is not printable (a line break above all, which a key or value from a file may
    hold) written as its escape: an error is one line, whatever the file said."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class LinkError(HilError):
    """A link to a board that cannot be opened or has stopped answering."""


# A scenario or rig is a few kB; anything this big is the wrong file, and is refused before it is parsed.
MAX_CONFIG_BYTES = 1 << 20


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """A TOML file's content; a file that cannot be read or parsed is one ConfigError naming it."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(str(path), "file", f"no such {what} file") from None
    except IsADirectoryError:
        raise ConfigError(str(path), "file", f"is a directory, not a {what} file") from None
    except OSError as e:
        raise ConfigError(str(path), "file", f"cannot be read: {e.strerror or e}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(str(path), "file", f"larger than {MAX_CONFIG_BYTES >> 20} MiB: not a {what} file")
    if b"\0" in data:
        raise ConfigError(str(path), "file", f"a binary file, not a TOML {what} file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), "file", f"not UTF-8 text (byte {e.start}): TOML is UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(path), "syntax", str(e)) from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(str(path), "syntax", "arrays or tables nested too deeply") from None
