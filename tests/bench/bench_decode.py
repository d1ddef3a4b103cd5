"""Radar link decoding: the Cython LinkDecoder against its pure-Python reference on a realistic framed stream.

Run `pytest tests/bench/bench_decode.py --benchmark-enable`; plots/s = 1000 / the median. With
--benchmark-disable each case runs once and checks that all 1000 plots came out as the encoder put them in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from hil.drivers.asterix import encode_cat034, encode_cat048_block
from hil.drivers.framing import FrameType, encode_frame
from hil.drivers.plot_batch import PlotBatch
from hil.ext.reference.decode import LinkDecoder as ReferenceDecoder

decode = pytest.importorskip("hil.ext.decode", reason="build the kernel: HIL_EXT=decode python setup.py build_ext")

N_PLOTS = 1000
CHUNK = 256  # bytes per read, about what a serial read returns at a time under load


def radar_stream(seed: int = 0) -> tuple[bytes, np.ndarray]:
    """1000 plots in beam dwells of 1..8 plots, one CAT034 sector crossing every 16 frames; and the ranges."""
    rng = np.random.default_rng(seed)
    frames, ranges = [], []
    seq, t_us, left = 0, 10**9, N_PLOTS
    while left:
        n = min(left, int(rng.integers(1, 9)))
        rng_m = rng.uniform(2e3, 150e3, n)
        block = encode_cat048_block(
            1, 2, np.full(n, t_us / 1e6), rng_m, np.full(n, rng.uniform(0, 2 * np.pi)) + rng.normal(0, 0.01, n),
            30.0 + rng_m * np.sin(rng.uniform(0, 0.2, n)), np.where(rng.random(n) < 0.8, rng.normal(0, 150, n), np.nan),
            np.where(rng.random(n) < 0.3, rng.integers(0, 4096, n), -1), np.arange(n),
        )
        frames.append(encode_frame(FrameType.ASTERIX, seq, t_us, block))
        ranges.append(rng_m)
        seq, t_us, left = seq + 1, t_us + 2_000, left - n
        if seq % 16 == 0:
            frames.append(encode_frame(FrameType.ASTERIX, seq, t_us, encode_cat034(1, 2, 2, t_us / 1e6, 0.5, 4.0)))
            seq += 1
    return b"".join(frames), np.concatenate(ranges)


STREAM, RANGES = radar_stream()
CHUNKS = [STREAM[i : i + CHUNK] for i in range(0, len(STREAM), CHUNK)]


def decode_all(decoder: Any, batch: PlotBatch) -> int:
    batch.clear()
    sectors = 0
    for k, chunk in enumerate(CHUNKS):
        sectors += len(decoder.feed(chunk, k, batch))
    return sectors


@pytest.mark.parametrize("impl", ["cython", "reference"])
def test_decode_1000_plots(benchmark: Any, impl: str) -> None:
    make = decode.LinkDecoder if impl == "cython" else ReferenceDecoder
    decoder = make(0, 30.0, False)
    batch = PlotBatch.empty(N_PLOTS)
    benchmark.extra_info["plots"] = N_PLOTS
    benchmark.extra_info["stream_bytes"] = len(STREAM)
    sectors = benchmark(decode_all, decoder, batch)
    assert batch.n == N_PLOTS
    np.testing.assert_allclose(batch.column("range_m"), RANGES, atol=1852 / 512)
    assert sectors > 0
    assert decoder.counters["crc"] == 0 and decoder.counters["truncated"] == 0
