"""The plant a run flies itself (`hil run`): truth, the radars' stimulus, the boards' launch reports, the interceptors.

It talks to the boards, never to the host: the radars get their sensor configuration and the truth they detect over
their links (as a radar target generator would), the launchers tell it their launches on a channel of their own
(in-process models call back; emulator processes and the simavr harness print one JSON line per launch), and each
round then flies toward the aim the fire command carried on the wire (hil.plant.engagement). Hardware launchers
have no such channel: for them the runtime hands over the launcher's read-back (launch_from_readback).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hil.emulators.launcher import LaunchEvents
from hil.plant.boards import Boards
from hil.plant.engagement import EngagementModel, Vec
from hil.plant.outcomes import aim_of_launch, round_detail
from hil.plant.radars import config_from_spec
from hil.scenario import Scenario

# run time of a board launch from the launcher index and the board's own clock (µs; 0: unknown)
LaunchTime = Callable[[int, int], float]


class LocalPlant:
    def __init__(self, scenario: Scenario, seed: int, board_events: list[tuple[float, str, str]],
                 on_event: Callable[..., None]) -> None:
        self.scenario = scenario
        self.seed = seed
        self.truth = scenario.truth()
        self.engagement = EngagementModel(self.truth, scenario.launchers, seed, scenario.no_fire_zones)
        self.board_events = list(board_events)  # (run time s, board, silent | resume), in time order
        self.on_event = on_event
        self.leaks_reported: set[int] = set()
        impacts = self.truth.impact_s  # when each homing target reaches its asset (inf: never), fixed by truth
        self._impacts = sorted((float(impacts[row]), row) for row in np.flatnonzero(np.isfinite(impacts)).tolist())
        self.launch_lines: list[tuple[int, Any]] = []  # launcher index, its board's launch lines
        self.board_launch_feed = [False] * len(scenario.launchers)  # the board reports its launches itself
        self.board_launches = 0
        self.boards: Boards | None = None
        self.launch_time: LaunchTime = lambda li, board_us: 0.0

    def attach(self, boards: Boards, launch_time: LaunchTime) -> None:
        """Configure the radars and take each launcher's own launch reports, where the board has such a channel."""
        self.boards, self.launch_time = boards, launch_time
        sc = self.scenario
        for i, (link, spec) in enumerate(zip(boards.radars, sc.radars, strict=True)):
            link.send_config(config_from_spec(spec, seed=self.seed * 1000 + i))
        for i, site in enumerate(sc.launchers):
            if boards.launcher_models:
                boards.launcher_models[i].on_launch = lambda launch, i=i: self.board_launch(i, launch.to_json())
                self.board_launch_feed[i] = True
            elif site.name in boards.processes:
                self.launch_lines.append((i, LaunchEvents(boards.processes[site.name].proc.stdout.fileno())))
                self.board_launch_feed[i] = True
            elif site.name in boards.simavr:
                events = boards.simavr[site.name].launch_events()  # the harness watches the firmware's record
                if events is not None:
                    self.launch_lines.append((i, events))
                    self.board_launch_feed[i] = True

    def stimulus(self, t_s: float) -> None:
        """Truth at t_s to every radar board (what its beam may detect)."""
        assert self.boards is not None
        snap = self.truth.at(t_s)
        for link in self.boards.radars:
            link.send_stimulus(snap.index, snap.mode3a, snap.state)

    def take_board_launches(self) -> None:
        for i, lines in self.launch_lines:
            for launch in lines.poll():
                self.board_launch(i, launch.to_json())

    def step(self, t_s: float) -> None:
        """The boards' launches so far, scheduled board faults, the interceptors' flight to t_s, and leaks."""
        assert self.boards is not None
        self.take_board_launches()
        while self.board_events and self.board_events[0][0] <= t_s:
            _, board, kind = self.board_events.pop(0)
            self.boards.inject(board, kind, [s.name for s in self.scenario.launchers])
            self.on_event(t_s, "fault", detail=f"{board} {kind}")
        for event in self.engagement.step(t_s):
            m = event.interceptor
            self.on_event(event.t_s, event.kind, track=m.track_id, target=m.acquired, launcher=m.launcher,
                          detail=round_detail(m, self.scenario))
        while self._impacts and self._impacts[0][0] <= t_s:  # the impacts due, in time order
            t_impact, row = self._impacts.pop(0)
            if row not in self.leaks_reported and self.truth.ended_by[row] == "impact":  # not killed first
                self.leaks_reported.add(row)
                self.on_event(t_impact, "leak", target=row)

    def board_launch(self, li: int, record: dict[str, Any]) -> None:
        """A launch as the launcher board itself reports it (its own channel to the plant, beside the Modbus link):
        the round flies toward the aim the fire command carried on the wire, whatever became of the host's reply."""
        aim = aim_of_launch(self.scenario.launchers[li], record)
        t_launch = self.launch_time(li, int(record.get("t_us", 0)))
        self.launch(li, int(record["track"]), int(record["seq"]), t_launch, aim, float(record["tgo_s"]))

    def launch_from_readback(self, li: int, track_id: int, seq: int, t_launch: float, aim: np.ndarray | Vec,
                             tgo_s: float) -> None:
        """A launch the host read back from a launcher without a launch channel of its own (hardware)."""
        if not self.board_launch_feed[li]:
            self.launch(li, track_id, seq, t_launch, aim, tgo_s)

    def launch(self, li: int, track_id: int, seq: int, t_launch: float, aim: np.ndarray | Vec, tgo_s: float) -> None:
        self.engagement.launch(t_launch, li, track_id, aim, tgo_s, seq=seq)
        self.board_launches += 1
        self.on_event(t_launch, "round", track=track_id, launcher=li, detail=f"seq {seq} flies at the aim on the wire")


__all__ = ["LocalPlant"]
