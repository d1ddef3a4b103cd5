"""Numbers as people read them: durations in the unit that reads best, percentiles only where the samples allow."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# (summary key, percentile): the percentiles hil reports for every latency stage
PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9))


def duration_text(us: float | None) -> str:
    """A duration given in µs, in the unit that reads best with about three significant digits:
    µs below a millisecond, ms below a second, else s ("7.3 µs", "107 µs", "2.01 ms", "17.2 ms", "875 ms",
    "1.25 s"); "–" for nothing or a value that is not a number."""
    if us is None or not math.isfinite(us):
        return "–"
    a = abs(us)
    if a < 10:
        return f"{us:.1f} µs"
    if a < 999.5:
        return f"{us:.0f} µs"
    ms = us / 1e3
    if abs(ms) < 9.995:
        return f"{ms:.2f} ms"
    if abs(ms) < 99.95:
        return f"{ms:.1f} ms"
    if abs(ms) < 999.5:
        return f"{ms:.0f} ms"
    return f"{us / 1e6:.2f} s"


def samples_needed(p: float) -> int:
    """Samples a p-th percentile (p in percent) needs before it means anything: ten beyond it, 10 / (1 - p/100)
    (p50: 20, p90: 100, p99: 1,000, p99.9: 10,000)."""
    return math.ceil(round(10.0 / (1.0 - p / 100.0), 6))  # round: 10 / (1 - 0.999) is 10000.000000000009


def percentile_text(value_us: float | None, count: int, p: float) -> str:
    """A percentile p (µs) of count samples as duration_text, or "–" when count is below samples_needed(p)."""
    return duration_text(value_us) if count >= samples_needed(p) else "–"


def percentile_cells(summary: Mapping[str, Any]) -> list[str]:
    """A latency summary's PERCENTILES then its max, each as duration_text: "–" for a percentile whose count is below
    samples_needed, and for every cell when there is no sample."""
    n = int(summary.get("count") or 0)
    cells = [percentile_text(summary.get(k), n, p) for k, p in PERCENTILES]
    return [*cells, duration_text(summary.get("max")) if n else "–"]


# the legend under a table of percentile_cells
TOO_FEW_SAMPLES = ("–: too few samples for that percentile, which needs 10 beyond it ("
                   + ", ".join(f"{k.replace('_', '.')}: {samples_needed(p):,}" for k, p in PERCENTILES) + ")")


def counted(n: int, thing: str) -> str:
    """n and its noun, plural unless n is 1: "1 radar", "2 launchers"."""
    return f"{n:,} {thing}" if n == 1 else f"{n:,} {thing}s"


def ratio_text(x: float | None) -> str:
    """A ratio such as a speed-up: "890×", "12×", "1.3×" (never 8.9e+02x)."""
    if x is None or not math.isfinite(x):
        return "–"
    if abs(x) >= 99.5:
        return f"{x:,.0f}×"
    if abs(x) >= 9.95:
        return f"{x:.0f}×"
    return f"{x:.1f}×"
