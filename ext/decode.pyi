"""Typed face of the compiled radar link decoder (ext/decode.pyx); its numpy twin is hil.ext.reference.decode.
Whoever changes decode.pyx's Python-visible names changes them here too (mypy reads this, not the .pyx)."""

import numpy as np
import numpy.typing as npt

from hil.drivers.asterix import AsterixPayload, ServiceEvent
from hil.drivers.framing import Frame
from hil.drivers.plot_batch import PlotBatch

COUNTER_NAMES: tuple[str, ...]

def map_board_times(batch: PlotBatch, ref_ns: int, offset_ns: float, drift: float) -> tuple[int, int] | None:
    """t_s of the batch's plots (rows [0, n)) from their board stamps, through a clock mapping; returns
    board_time_span(batch) (None: no plots)."""

def board_to_host_s(board_us: int, ref_ns: int, offset_ns: float, drift: float) -> float:
    """One board stamp through the same mapping as map_board_times: host seconds."""

def receive_times(batch: PlotBatch) -> tuple[int, int] | None:
    """t_s of the batch's plots (rows [0, n)) as their receive times: host_rx_ns / 1e9; returns
    board_time_span(batch) (None: no plots)."""

def board_time_span(batch: PlotBatch) -> tuple[int, int]:
    """(earliest, last row's) board_t_us of the batch's plots; the batch must hold at least one."""

def run_times(batch: PlotBatch, start_s: float) -> tuple[npt.NDArray[np.float64], int, bool]:
    """(t_run, latest_rx_ns, in_order): the plots' times less start_s, the latest receive time (0: none), and
    whether no plot time is below the one before it."""

def time_runs(batch: PlotBatch) -> list[list[float | int]]:
    """The batch's plot times (rows [0, n)) as runs of equal values in order: [[t_s, count], ...]."""

class LinkDecoder:
    """Stream decoder of one radar link: plots land in the caller's PlotBatch, the rare rest comes back."""

    sensor: int  # written into every plot
    site_z_m: float  # the radar's height in the local ENU frame (for elevation)
    keep_asterix: bool  # also hand back each ASTERIX payload (for recording)
    def __init__(self, sensor: int = 0, site_z_m: float = 0.0, keep_asterix: bool = False) -> None: ...
    @property
    def counters(self) -> dict[str, int]: ...
    @property
    def seq_resets(self) -> int: ...
    @property
    def rejected_total(self) -> int: ...
    def feed(self, data: bytes | bytearray | memoryview, host_rx_ns: int,
             batch: PlotBatch) -> list[Frame | ServiceEvent | AsterixPayload]:
        """Decode a chunk of link bytes received at host_rx_ns; plots are appended to batch (batch.n grows)."""
    def feed_datagram(self, data: bytes | bytearray | memoryview, host_rx_ns: int,
                      batch: PlotBatch) -> list[Frame | ServiceEvent | AsterixPayload]:
        """One UDP datagram of raw ASTERIX blocks (no framing)."""
