"""Where the files hil ships beside its code are (rigs, scenarios, firmware sources, kernel benchmarks), by name.

A wheel carries them in hil/data/ (setup.py copies them there); a checkout or an editable install reads them at
the top of the source tree. Both hold the same layout: rigs/, scenarios/ (safety/ inside), firmware_stubs/ and the
benchmark suite tests/bench/ with the tests package its files import from.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hil.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent
INSTALLED_DATA = PACKAGE_DIR / "data"
CHECKOUT = PACKAGE_DIR.parent
# the folder under the data root that holds each kind of file a command takes by name
FOLDERS = {"rig": "rigs", "scenario": "scenarios"}


def data_root() -> Path:
    """hil/data in an installed package, the checkout's top folder when hil runs from its source tree."""
    return INSTALLED_DATA if INSTALLED_DATA.is_dir() else CHECKOUT


def is_installed() -> bool:
    """True when hil runs from an installed package (a wheel), not from its source tree."""
    return data_root() == INSTALLED_DATA


def firmware_dir() -> Path:
    """firmware_stubs/: arduino/ (AVR C and its Makefile), common/, sim/ (the simavr harness), rpi/."""
    return data_root() / "firmware_stubs"


def bench_root() -> Path:
    """The folder holding tests/bench (the kernel benchmarks) and the tests package they import from."""
    return data_root()


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/hil (~/.cache/hil); a per-user temporary folder when there is no writable home."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    folder = Path(base) / "hil"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a CI user or a container without a home: builds still need a place of their own
        folder = Path(tempfile.gettempdir()) / f"hil-{os.getuid()}"
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def shipped_names(kind: str) -> list[str]:
    """The names --rig or --scenario accepts for the files hil ships: "mock", "raid", "safety/escorts", ..."""
    folder = data_root() / FOLDERS[kind]
    return sorted(p.relative_to(folder).with_suffix("").as_posix() for p in folder.rglob("*.toml"))


def resolve(kind: str, name_or_path: str | os.PathLike[str]) -> Path:
    """A rig or scenario file: a path as given (relative to the current directory) when it is a file, else the
    shipped file of that name ("simavr", "safety/escorts"; "raid.toml" and the checkout's "rigs/simavr.toml" too).
    A name that is neither is one ConfigError listing the shipped names."""
    text = os.fspath(name_or_path)
    try:
        given = Path(text).expanduser()
    except RuntimeError:  # "~someone" for a user this machine does not have
        given = Path(text)
    if given.is_file():
        return given
    folder = data_root() / FOLDERS[kind]
    name = text.removesuffix(".toml").removeprefix(f"{FOLDERS[kind]}/")
    candidate = folder / f"{name}.toml"
    # a name never climbs out of the shipped folder ("../x" or an absolute path is a path, not a name)
    if name and not given.is_absolute() and candidate.resolve().is_relative_to(folder.resolve()) \
            and candidate.is_file():
        return candidate
    if given.exists():
        return given  # a folder: reading it says so
    raise ConfigError(text, "file", f"no such {kind} file, and no shipped {kind} of that name "
                                    f"(shipped: {', '.join(shipped_names(kind))})")


def resolve_rig(name_or_path: str | os.PathLike[str]) -> Path:
    """--rig: a rig file's path, or the name of one hil ships (mock, simavr, bench-example)."""
    return resolve("rig", name_or_path)


def resolve_scenario(name_or_path: str | os.PathLike[str]) -> Path:
    """--scenario: a scenario file's path, or the name of one hil ships (raid, safety/escorts, ...)."""
    return resolve("scenario", name_or_path)
