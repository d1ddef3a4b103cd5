"""A fire whose reply is lost: the round still flies (the plant hears it from the board), the host holds it as
possibly in flight and fires nothing more at that target until it has read the launcher back, and the counts agree.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

from hil.drivers.registers import FunctionCode, Holding
from hil.rig import Rig
from hil.runtime import Chain, RunOptions
from hil.scenario import Scenario
from tests.helpers import RAID


class LosingFireReplies(Chain):
    """The chain, with the launcher board's answers to its first `lose` fire commands lost on the way back."""

    lose = 1

    async def _connect(self) -> None:
        await super()._connect()
        self.lost_seqs: list[int] = []
        for model in self.boards.launcher_models:
            answer = model.handle_rtu

            def losing(adu: bytes, device_id: int, answer: Any = answer) -> bytes | None:
                reply = answer(adu, device_id)
                fire = len(adu) > 4 and adu[1] == FunctionCode.WRITE_MULTIPLE and adu[3] == Holding.FIRE_TRACK
                if fire and len(self.lost_seqs) < self.lose:
                    self.lost_seqs.append(int.from_bytes(adu[7 + 2 * (Holding.FIRE_SEQ - Holding.FIRE_TRACK):][:2]))
                    return None  # the board acted on it; its answer never arrives
                return reply

            model.handle_rtu = losing  # type: ignore[method-assign]


def run(tmp_path: Path, lose: int) -> tuple[LosingFireReplies, dict[str, Any], list[dict[str, str]]]:
    chain = LosingFireReplies(RunOptions(scenario=Scenario.load(RAID), rig=Rig.load(), seed=1, time_mode="virtual",
                                         out_dir=tmp_path, duration_s=40.0, record=False, report=False))
    chain.lose = lose
    summary = asyncio.run(chain.run())
    return chain, summary, list(csv.DictReader((tmp_path / "events.csv").open()))


def test_a_fire_whose_reply_is_lost_still_flies_and_is_not_fired_again_before_read_back(tmp_path: Path) -> None:
    chain, summary, events = run(tmp_path, lose=1)
    assert len(chain.lost_seqs) == 1
    lost = [e for e in events if e["event"] == "fire_unconfirmed"]
    assert len(lost) == 1, events
    launcher, track, t_lost = lost[0]["launcher"], lost[0]["track"], float(lost[0]["time_s"])
    # the round flew: the plant learned it from the board, with the seq the wire carried
    rounds = summary["plant"]["rounds"]
    assert any(r["launcher"] == launcher and r["seq"] == chain.lost_seqs[0] for r in rounds), rounds
    reconciled = [e for e in events if e["event"] == "reconciled" and e["launcher"] == launcher]
    assert reconciled and "did launch" in reconciled[0]["detail"]
    t_settled = float(reconciled[0]["time_s"])
    # nothing more at that track, and nothing from that launcher, before the read-back settled it
    later = [e for e in events if e["event"] == "launch" and t_lost < float(e["time_s"]) < t_settled
             and (e["track"] == track or e["launcher"] == launcher)]
    assert not later, later
    # every launch accounted for: the boards' count is the host's, and the lost one counts once
    assert summary["launches"] == summary["board_launches"] == summary["plant"]["rounds_launched"]
    assert summary["fires_unconfirmed"] == 1 and summary["fires_reconciled"] == {"launched": 1, "not_launched": 0}
    seqs = [(r["launcher"], r["seq"]) for r in rounds]
    assert len(seqs) == len(set(seqs))


def test_many_lost_replies_never_launch_twice(tmp_path: Path) -> None:
    chain, summary, _ = run(tmp_path, lose=4)
    assert len(chain.lost_seqs) == 4
    assert summary["launches"] == summary["board_launches"] == summary["plant"]["rounds_launched"]
    assert summary["fires_reconciled"]["launched"] == 4
    assert summary["plant"]["max_rounds_per_target"] <= 4 and summary["plant"]["friendly_acquired"] == 0
