"""The run's two clocks behind one interface: real (monotonic ns) and virtual (lockstep, advanced by the run)."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

LOOP_PERIOD_NS = 5_000_000  # the run's loop tick, and the virtual step: the plant and the host both keep it


class Clock(Protocol):
    virtual: bool

    def now_ns(self) -> int: ...

    async def sleep_until(self, t_ns: int) -> None: ...


class RealClock:
    """Monotonic host time; latency figures are measured in it."""

    virtual = False

    def __init__(self) -> None:
        self.start_ns = time.monotonic_ns()

    def now_ns(self) -> int:
        return time.monotonic_ns()

    async def sleep_until(self, t_ns: int) -> None:
        delay = (t_ns - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """Lockstep time as in SITL: the scenario steps, every emulator answers, then time advances.

    Nothing waits: a run in virtual time is as fast as the host computes, and bit-for-bit repeatable
    for a seed.
    """

    virtual = True

    def __init__(self, start_ns: int = 0) -> None:
        self.start_ns = start_ns
        self.t_ns = start_ns

    def now_ns(self) -> int:
        return self.t_ns

    def advance_to(self, t_ns: int) -> None:
        if t_ns < self.t_ns:
            raise ValueError("virtual time never runs backwards")
        self.t_ns = t_ns

    async def sleep_until(self, t_ns: int) -> None:
        self.advance_to(max(t_ns, self.t_ns))
