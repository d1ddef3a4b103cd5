"""The host's side of its launchers' lifecycle: arming, heartbeats and status reads, watchdog trips and the rig's
re-arm policy, what fire control is told of each launcher, and what went wrong with them.

A launcher is armed only once its heartbeats run (real time: each launcher has its own task, keep(), so a busy
loop never starves its watchdog; virtual time: the runtime ticks them). A trip is seen on a status read; "auto"
re-arms once the link has been healthy for rearm_holdoff_s (at most rearm_max_per_min a minute); "never" leaves
it SAFE for an operator. A fire whose answer was lost is settled on the next healthy tick (reconcile).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hil.clock import Clock
from hil.errors import LinkError
from hil.host.seams import LauncherInputs
from hil.rig import Rig, SafeTime
from hil.scenario import Scenario

log = logging.getLogger("hil.run")

LAUNCHER_PERIOD_NS = 100_000_000  # heartbeat + status read of each launcher


@dataclass
class LauncherState:
    status: Any = None  # last LauncherStatus read
    busy: bool = False  # a fire is being written
    lost: bool = False
    want_armed: bool = False  # the host has armed it (or tried to): it should stay armed
    armed_once: bool = False  # it was seen armed at least once
    healthy_since_ns: int | None = None  # first of the status reads in a row that all succeeded
    trip_seen: bool = False  # this watchdog trip is already an event
    watchdog_trips: int = 0
    rearms: int = 0  # re-arms after a watchdog trip, seen armed
    arm_attempts: list[int] = field(default_factory=list)  # host ns of re-arm attempts in the last minute
    rearm_unconfirmed: bool = False  # an arm write whose answer was lost
    rearm_failures: int = 0
    safe: SafeTime = field(default_factory=SafeTime)  # how long it sat SAFE after it was first armed


def note_safe(st: LauncherState, now_ns: int, armed: bool) -> None:
    """Time a launcher the host had armed spends not armed (SAFE, tripped or lost)."""
    if st.want_armed:
        st.safe.note(now_ns, armed)


class LauncherKeeper:
    def __init__(self, scenario: Scenario, rig: Rig, clock: Clock, run_s: Callable[[int], float],
                 on_event: Callable[..., None], reconcile: Callable[[int], Awaitable[None]]) -> None:
        self.rig, self.clock, self.run_s, self.on_event, self.reconcile = rig, clock, run_s, on_event, reconcile
        self.names = [s.name for s in scenario.launchers]
        self.reload_s = [s.reload_s for s in scenario.launchers]
        self.state = [LauncherState() for _ in scenario.launchers]
        self._inputs_of: list[tuple[Any, bool, bool]] = []  # what inputs() was last built from, and what it built
        self._inputs = LauncherInputs.none(len(self.state))
        self.links: list[Any] = []
        self.late_ticks = 0  # real time: heartbeat ticks that came late (a starved loop)

    async def arm_all(self) -> None:
        """Arm every launcher, once its heartbeats are already running (real time) or ticking (virtual)."""
        for i, link in enumerate(self.links):
            st = self.state[i]
            try:
                st.status = await link.arm()
                st.armed_once = True
                st.safe.note(self.clock.now_ns(), armed=True)
            except LinkError as e:
                st.rearm_unconfirmed = True
                log.warning("%s did not arm: %s", self.names[i], e)
                self.on_event(self.run_s(self.clock.now_ns()), "arm_failed", launcher=i, detail=str(e))
            # only now: a heartbeat tick's status read from before the arm must not pass for a watchdog trip
            st.want_armed = True


    def inputs(self) -> LauncherInputs:
        """Each launcher as its board last reported it (a lost one, or one with a fire on its way, is not ready).
        Built again only when a launcher's status, lost or busy changed since the last call: every decision asks,
        on the fire path, and the boards are read about once per heartbeat. Whatever changes them calls this too,
        off that path (each heartbeat tick here, the runtime after a fire's answer and after its fires went out), so
        a decision nearly always only takes it."""
        key = [(st.status, st.lost, st.busy) for st in self.state]
        if key == self._inputs_of:
            return self._inputs
        self._inputs_of, self._inputs = key, self._built_inputs()
        return self._inputs

    def _built_inputs(self) -> LauncherInputs:
        n = len(self.state)
        armed, ready = np.zeros(n, bool), np.zeros(n, bool)
        rounds, reload_left = np.zeros(n, np.int32), np.zeros(n)
        for i, st in enumerate(self.state):
            s = st.status
            if s is None or st.lost:
                continue
            armed[i] = bool(s.armed)
            ready[i] = bool(s.ready) and not st.busy
            rounds[i] = int(s.rounds)
            reload_left[i] = 0.0 if s.ready else self.reload_s[i]
        inputs = LauncherInputs(armed, ready, rounds, reload_left, np.zeros(n, np.int32))
        for column in (armed, ready, rounds, reload_left, inputs.channels_in_use):
            column.flags.writeable = False  # handed to every decision until a launcher changes: nobody writes it
        return inputs


    async def tick(self, i: int) -> None:
        """Heartbeat and status read of one launcher; a watchdog trip is seen here and re-armed by the rig's policy."""
        link = self.links[i]
        st = self.state[i]
        now = self.clock.now_ns()
        try:
            await link.heartbeat()
            st.status = status = await link.read_status()
            st.lost = False
        except LinkError as e:
            # one unanswered exchange is weather on a noisy link; a link the driver gave up on (LOST) starts
            # the re-arm hold-off again
            if link.lost:
                if not st.lost:
                    log.warning("launcher %s lost: %s", self.names[i], e)
                    self.on_event(self.run_s(now), "link_lost", launcher=i, detail=str(e))
                st.lost = True
                st.healthy_since_ns = None
                note_safe(st, now, armed=False)
            return
        if st.healthy_since_ns is None:
            st.healthy_since_ns = now
        if link.unconfirmed_seq and not st.busy:
            try:
                await self.reconcile(i)
            except LinkError as e:
                log.info("launcher %s: read-back of a lost fire failed (%s); tried again next tick",
                         self.names[i], e)
        note_safe(st, now, armed=bool(status.armed))
        if status.armed and not st.armed_once:
            st.armed_once = True  # the bring-up arm whose answer was lost did arm
            st.rearm_unconfirmed = False
        if status.armed or not st.want_armed:
            if status.armed and st.rearm_unconfirmed:
                # an arm whose answer was lost did arm: the status read says so
                st.rearm_unconfirmed = False
                self.rearmed(i, st, now, "confirmed by status read")
            st.trip_seen = False
            return
        if not st.trip_seen:
            st.trip_seen = True
            st.healthy_since_ns = now  # the hold-off counts from the trip: a healthy link after it, not before
            st.watchdog_trips += 1
            why = "watchdog tripped" if status.watchdog_tripped else f"found {status.state.name}"
            log.warning("launcher %s is SAFE (%s)", self.names[i], why)
            self.on_event(self.run_s(now), "watchdog_trip", launcher=i, detail=why)
        rig = self.rig
        if rig.rearm != "auto" or now - st.healthy_since_ns < rig.rearm_holdoff_s * 1e9:
            return
        st.arm_attempts = [t for t in st.arm_attempts if now - t < 60_000_000_000]
        if len(st.arm_attempts) >= rig.rearm_max_per_min:
            return
        st.arm_attempts.append(now)
        try:
            st.status = await link.arm()
        except LinkError as e:
            st.rearm_failures += 1
            st.rearm_unconfirmed = True  # the key may have gone through: the next status read tells
            self.on_event(self.run_s(now), "rearm_failed", launcher=i, detail=str(e))
            return
        st.rearm_unconfirmed = False
        self.rearmed(i, st, now, f"after {(now - st.healthy_since_ns) / 1e9:.1f} s of healthy link")

    def rearmed(self, i: int, st: LauncherState, now: int, detail: str) -> None:
        st.rearms += 1
        self.on_event(self.run_s(now), "rearm", launcher=i, detail=detail)
        note_safe(st, self.clock.now_ns(), armed=True)

    async def keep(self, i: int) -> None:
        """Real time: one launcher's heartbeat and status read at its own period, whatever the main loop does."""
        next_ns = self.clock.now_ns()
        while True:
            await self.tick(i)
            self.inputs()  # what fire control is told, built now if the tick changed it: not on a fire's path
            next_ns += LAUNCHER_PERIOD_NS
            now = self.clock.now_ns()
            if next_ns < now:  # starved: keep the period from now on rather than firing a burst of late ticks
                self.late_ticks += 1
                next_ns = now
            await self.clock.sleep_until(next_ns)


    def health(self) -> dict[str, Any]:
        """summary.json's launcher_health: each launcher's arming, watchdog trips, re-arms and time SAFE."""
        end_ns = self.clock.now_ns()
        out: dict[str, Any] = {}
        for i, st in enumerate(self.state):
            safe_ns = st.safe.safe_at(end_ns)
            out[self.names[i]] = {
                "armed_once": st.armed_once, "armed_at_end": bool(st.status is not None and st.status.armed),
                "watchdog_trips": st.watchdog_trips, "rearms": st.rearms, "rearm_failures": st.rearm_failures,
                "safe_s": round(safe_ns / 1e9, 3), "lost_at_end": st.lost,
            }
        return out

    def problems(self, end_ns: int) -> list[str]:
        """What went wrong with the launchers, one line each (the run exits 3 on any)."""
        problems: list[str] = []
        for i, st in enumerate(self.state):
            name = self.names[i]
            if not st.armed_once:
                problems.append(f"launcher {name} never armed")
                continue
            safe_ns = st.safe.safe_at(end_ns)
            too_long = st.safe.problem(name, end_ns, st.watchdog_trips)
            if st.lost:
                problems.append(f"launcher {name} link lost at the end of the run")
            elif st.status is not None and not st.status.armed:
                problems.append(f"launcher {name} was SAFE at the end of the run "
                                f"({safe_ns / 1e9:.1f} s SAFE, {st.watchdog_trips} watchdog trips)")
            elif too_long:
                problems.append(too_long)
        return problems


__all__ = ["LAUNCHER_PERIOD_NS", "LauncherKeeper", "LauncherState", "note_safe"]
