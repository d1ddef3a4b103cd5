"""Before/after table of the safety scenes: the plant's counts with fire control as it was (before) and as it is.

    python -m tests.bench.safety_table [--seeds 1-5] [--scenes escorts,raid] [--before-kernel PATH.so]

"Before" is the fire-control kernel of an earlier build when --before-kernel names its compiled module (build one
with `git worktree add /tmp/fc-before REV && cd /tmp/fc-before && HIL_EXT=firecontrol python setup.py build_ext
--inplace`), else today's kernel with its protection switched off (no radius, no uncertainty, no timing margin).
Both run on today's plant, host and links, in virtual time on the mock rig. Counts come from the plant: what each
round's seeker acquired, never which track it was fired at.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from hil.host.seams import KernelFireControl
from hil.rig import Rig
from hil.runtime import Chain, RunOptions
from hil.scenario import Scenario
from tests.helpers import PROTECTION_OFF, SAFETY_SCENES

COLUMNS = ("hostile kills", "launches", "friendly acquired", "neutral acquired", "friendly killed",
           "neutral killed", "NFZ detonations", "max rounds/target", "rounds at no object")


def _earlier_kernel(path: str) -> Callable[[Any], Any]:
    """A fire-control factory on an earlier compiled kernel: it takes the inputs it knew, nothing newer."""
    import hil.ext.firecontrol as today  # an earlier build registers itself under the same name: keep today's

    package = types.ModuleType("hil_before")
    package.__path__ = []
    sys.modules["hil_before"] = package
    spec = importlib.util.spec_from_file_location("hil_before.firecontrol", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["hil.ext.firecontrol"] = today

    class Earlier:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def evaluate(self, *args: Any, **kw: Any) -> Any:
            for new in ("neutral", "assessing", "vel_var_m2s2"):
                kw.pop(new, None)
            result = self.inner.evaluate(*args, **kw)
            refusals = result.refusals
            if not hasattr(refusals, "protected_index"):
                refusals.protected_index = np.full(len(refusals.track_index), -1, np.int32)
            return result

    def build(chain: Chain) -> Any:
        fc = chain.host.fire_control.kernel  # type: ignore[attr-defined]
        return KernelFireControl(Earlier(module.FireControl(fc.config, fc.asset_specs, fc.launcher_specs,
                                                            fc.zone_specs)))

    return build


def row(summary: dict[str, Any]) -> tuple[int, ...]:
    p = summary["plant"]
    return (p["killed"]["hostile"], summary["launches"], p["friendly_acquired"], p["neutral_acquired"],
            p["friendly_killed"], p["neutral_killed"], p["nfz_detonations"], p["max_rounds_per_target"],
            p["nothing_acquired"])


def run(scene: str, seed: int, before: bool, earlier: Callable[[Any], Any] | None) -> tuple[int, ...]:
    import asyncio

    options = RunOptions(scenario=Scenario.load(SAFETY_SCENES[scene]), rig=Rig.load(), seed=seed, time_mode="virtual",
                         out_dir=None, report=False, record=False,
                         fire_control_overrides=PROTECTION_OFF if before and earlier is None else {})
    chain = Chain(options)
    if before and earlier is not None:
        chain.host.fire_control = earlier(chain)
    return row(asyncio.run(chain.run()))


def seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1-5")
    p.add_argument("--scenes", default=",".join(SAFETY_SCENES))
    p.add_argument("--before-kernel", default=None, help="compiled fire-control module of an earlier build")
    args = p.parse_args(argv)
    earlier = _earlier_kernel(args.before_kernel) if args.before_kernel else None
    what = "earlier kernel" if earlier else "protection off"
    print(f"| scene | fire control | {' | '.join(COLUMNS)} |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for scene in args.scenes.split(","):
        for before in (True, False):
            rows = np.array([run(scene, s, before, earlier) for s in seeds(args.seeds)], dtype=float)
            cells = []
            for k, name in enumerate(COLUMNS):
                column = rows[:, k]
                cells.append(f"{column.max():.0f} max" if name == "max rounds/target" else
                             f"{column.mean():.1f} ({column.sum():.0f})")
            label = f"before ({what})" if before else "after"
            print(f"| {scene} | {label} | {' | '.join(cells)} |", flush=True)
    print(f"\nseeds {args.seeds}; cells: mean per run (total over the seeds); max rounds/target: the worst run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
