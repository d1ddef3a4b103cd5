"""manifest.jsonl: one line per finished or failed run attempt, appended and synced by the campaign's client.

Only the client writes it (workers return records), so lines never interleave. A run is done when a "done" line
with its key and the digest of its current settings is there; the first such line counts and any later one is
ignored, so a run counts exactly once. A last line cut short by a killed client is skipped when read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DONE, FAILED = "done", "failed"


@dataclass
class ManifestState:
    """What the manifest says about each run (by key): its first done record, and its failed attempts."""

    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unreadable_lines: int = 0


class Manifest:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self, digests: dict[str, str] | None = None) -> ManifestState:
        """The state of the runs; with digests (key -> digest of its settings) a line for other settings is
        ignored: a run whose scenario or settings changed since is run again."""
        state = ManifestState()
        if not self.path.is_file():
            return state
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                    key, status = entry["key"], entry["status"]
                except (ValueError, KeyError, TypeError):
                    state.unreadable_lines += 1
                    continue
                if digests is not None and digests.get(key) != entry.get("digest"):
                    continue
                if status == DONE:
                    state.done.setdefault(key, entry)
                elif status == FAILED:
                    state.failures.setdefault(key, []).append(entry)
        return state

    def append(self, entry: dict[str, Any]) -> None:
        """One line, flushed and synced before returning: after this the run is never run again."""
        line = json.dumps(entry, separators=(",", ":"), allow_nan=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a line cut short by a killed client: start on a fresh line so this one reads whole
        needs_newline = False
        if self.path.is_file() and self.path.stat().st_size:
            with self.path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                needs_newline = f.read(1) != b"\n"
        with self.path.open("a", encoding="utf-8") as f:
            f.write(("\n" if needs_newline else "") + line)
            f.flush()
            os.fsync(f.fileno())


__all__ = ["DONE", "FAILED", "Manifest", "ManifestState"]
