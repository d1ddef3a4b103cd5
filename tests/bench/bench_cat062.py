"""CAT062 system tracks: one host update of N tracks encoded into datagrams, and those datagrams decoded back.

Run `pytest tests/bench/bench_cat062.py --benchmark-enable`; µs per track = the median / N. With
--benchmark-disable each case runs once and checks that every track came back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hil.drivers.cat062 import Cat062Decoder, Cat062Encoder

ORIGIN = (52.0, 4.5, 12.0)


def host_update(n: int) -> dict[str, Any]:
    """n tracks as a host publishes them: within 150 km, most confirmed, half with a Mode 3/A code."""
    rng = np.random.default_rng(n)
    state = np.column_stack([rng.uniform(-150e3, 150e3, (n, 2)), rng.uniform(50.0, 12e3, n),
                             rng.uniform(-300.0, 300.0, (n, 2)), rng.uniform(-30.0, 30.0, n)])
    return {"tod_s": 43200.0, "track_id": np.arange(n) + 1, "status": rng.choice([1, 2, 2, 2, 3], n),
            "state": state, "mode3a": np.where(rng.random(n) < 0.5, -1, rng.integers(0, 0o10000, n))}


@pytest.mark.parametrize("n", [10, 100, 300])
def test_encode_update(benchmark: Any, n: int) -> None:
    encoder = Cat062Encoder(0, 1, ORIGIN)
    update = host_update(n)
    benchmark.extra_info["tracks"] = n
    enc = benchmark(encoder.encode, **update)
    assert enc.records == n and enc.skipped == 0 and enc.omitted_items == 0


@pytest.mark.parametrize("n", [10, 100, 300])
def test_decode_update(benchmark: Any, n: int) -> None:
    datagrams = Cat062Encoder(0, 1, ORIGIN).encode(**host_update(n)).datagrams
    decoder = Cat062Decoder(ORIGIN)
    received = [(d, 0) for d in datagrams]
    benchmark.extra_info["tracks"] = n
    benchmark.extra_info["datagrams"] = len(datagrams)
    got = benchmark(decoder.decode_datagrams, received)
    assert len(got) == n and decoder.rejected == 0
    assert got.track_number.tolist() == list(range(1, n + 1))
