"""hil: a sensor-to-shooter hardware-in-the-loop testbed. `hil.run(...)` runs a scenario (hil.api, docs/API.md).

Nothing is imported here until asked for: the boards' own software (hil.emulators) imports this package on a
Raspberry Pi that has numpy, pyserial and pymodbus only.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = ("run", "RunResult", "RunPaths")


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("hil.api"), name)
    raise AttributeError(f"module 'hil' has no attribute {name!r}")
