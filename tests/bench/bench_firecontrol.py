"""Fire-control benchmarks: full evaluation + assignment at 100 x 20 and 1000 x 100, and greedy's optimality gap.

Goals (medians, not asserted): 100 threats x 20 launchers <= 0.5 ms; 1000 x 100 <= 20 ms. The "protected"
cases add friendly and neutral traffic (5 % each) among the threats, and tracks under kill assessment, so the
terminal-path protection has work to do. With --benchmark-disable each benchmark runs once and its checks make
it a quick correctness pass.
Run: pytest tests/bench/bench_firecontrol.py --benchmark-enable
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hil.ext.firecontrol import FireControl, solve_assignment
from hil.ext.firecontrol_types import Doctrine, FireControlConfig, RefusalReason
from hil.ext.reference import firecontrol as ref


def scene(n: int, n_l: int, seed: int = 7, p_protect: float = 0.0) -> tuple[ref.Scene, list[Any]]:
    """Every threat heading for one of 5 assets, every launcher armed with rounds: the busiest case. With
    p_protect, that share of the tracks is neutral (kwargs) and as many again friendly."""
    sc = ref.random_scene(np.random.default_rng(seed), n, n_l, n_assets=5, n_zones=3,
                          area_m=80_000.0 if n <= 100 else 120_000.0, p_protect=p_protect)
    args = list(sc.args)
    args[9] = np.full(n_l, 20, np.int32)  # rounds
    if p_protect:
        args[4] = np.random.default_rng(seed + 1).random(n) < p_protect  # friendly
    return sc, args


def check(sc: ref.Scene, args: list[Any], cfg: FireControlConfig, res: Any) -> None:
    """The kernel's answer is feasible and, where it claims optimality, as good as the reference's."""
    e = ref.evaluate(cfg, sc.assets, sc.launchers, sc.zones, *args[1:], **sc.kwargs)
    p = ref.Problem.from_evaluation(e)
    shots = list(zip(res.assignments.track_index.tolist(), res.assignments.launcher_index.tolist(), strict=True))
    assert shots and ref.is_valid(p, shots)
    if cfg.doctrine == Doctrine.SHOOT_LOOK_SHOOT:
        assert res.optimal and res.objective == pytest.approx(ref.objective(p, ref.lap(p)), rel=1e-9)


@pytest.mark.parametrize(("n", "n_l"), [(100, 20), (1000, 100)])
def test_bench_evaluate_and_assign(benchmark: Any, n: int, n_l: int) -> None:
    sc, args = scene(n, n_l)
    cfg = FireControlConfig()
    fc = FireControl(cfg, sc.assets, sc.launchers, sc.zones)
    res = benchmark(fc.evaluate, 0.0, *args)
    check(sc, args, cfg, res)
    benchmark.extra_info.update(pairs=n * n_l, assigned=len(res.assignments.track_index), solver=res.solver)


@pytest.mark.parametrize(("n", "n_l"), [(100, 20), (1000, 100)])
def test_bench_protected(benchmark: Any, n: int, n_l: int) -> None:
    sc, args = scene(n, n_l, p_protect=0.05)
    cfg = FireControlConfig()
    fc = FireControl(cfg, sc.assets, sc.launchers, sc.zones)
    res = benchmark(fc.evaluate, 0.0, *args, **sc.kwargs)
    check(sc, args, cfg, res)
    held = int(np.sum(res.pair_reason == RefusalReason.PROTECTED_NEAR_INTERCEPT))
    assert held > 0  # the protection had something to refuse
    benchmark.extra_info.update(pairs=n * n_l, assigned=len(res.assignments.track_index), protected_pairs=held)


def test_bench_salvo_100x20(benchmark: Any) -> None:
    sc, args = scene(100, 20)
    cfg = FireControlConfig(doctrine=Doctrine.SALVO, salvo_size=2)
    fc = FireControl(cfg, sc.assets, sc.launchers, sc.zones)
    res = benchmark(fc.evaluate, 0.0, *args)
    check(sc, args, cfg, res)
    benchmark.extra_info.update(solver=res.solver)


def optimality_gaps(salvo: bool, instances: int = 300, seed: int = 11) -> np.ndarray:
    """Relative shortfall of greedy against the exact solver on seeded random instances."""
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(instances):
        p = ref.random_problem(rng, int(rng.integers(3, 10)), int(rng.integers(2, 5)), max_capacity=2,
                               max_shots=2 if salvo else 1, density=0.7)
        values = []
        for solver in ("greedy", "lap" if not salvo else "exact"):
            t, lch, optimal, _ = solve_assignment(p.score, p.pk, p.feasible, p.shots_left, p.capacity, solver)
            values.append(ref.objective(p, list(zip(t.tolist(), lch.tolist(), strict=True))))
        assert solver == "greedy" or optimal
        if values[1] > 0:
            gaps.append(1.0 - values[0] / values[1])
    return np.array(gaps)


@pytest.mark.parametrize("salvo", [False, True], ids=["shoot-look-shoot", "salvo"])
def test_bench_greedy_optimality_gap(benchmark: Any, salvo: bool) -> None:
    gaps = benchmark.pedantic(optimality_gaps, args=(salvo,), rounds=1, iterations=1)
    assert np.all(gaps >= -1e-12)  # greedy never beats the optimum
    benchmark.extra_info.update(mean_gap=float(gaps.mean()), worst_gap=float(gaps.max()),
                                share_optimal=float(np.mean(gaps < 1e-12)))
    print(f"greedy gap ({'salvo' if salvo else 'one shot'}): mean {gaps.mean():.4%} worst {gaps.max():.4%} "
          f"optimal in {np.mean(gaps < 1e-12):.1%} of {len(gaps)}")
