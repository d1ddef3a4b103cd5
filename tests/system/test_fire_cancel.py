"""A fire command written in the decision's own call (Chain._fire_now) and then cancelled as the run ends: its
outcome is never lost. The board's answer that came before the cancel is the host's launch; one that had not come
leaves the fire unconfirmed until the end of the run reads the board back (tests/drivers/test_launcher_link.py)."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from hil.drivers.launcher_link import FireResult
from hil.drivers.timesync import ClockSync
from hil.host.host import FireOrder
from hil.runtime import Chain


def fake_chain() -> Any:
    """The parts of a Chain that _fire and _fire_done use."""
    answered: list[tuple[str, int | None]] = []
    launches: list[tuple[int, int]] = []
    latency = SimpleNamespace(record=lambda *a: None, record_with_uncertainty=lambda *a: None)
    chain: Any = SimpleNamespace(
        boards=SimpleNamespace(launchers=[SimpleNamespace(status=None, unconfirmed_seq=0, clock_sync=ClockSync())]),
        scenario=SimpleNamespace(launchers=[SimpleNamespace(name="launcher-north")]),
        launchers=SimpleNamespace(state=[SimpleNamespace(busy=True, status=None)], inputs=lambda: None),
        host=SimpleNamespace(fire_answered=lambda order, t, seq, outcome, reason="": answered.append((outcome, seq))),
        latency=latency, clock=SimpleNamespace(virtual=False, now_ns=lambda: 0), start_ns=0, counts=Counter(),
        run_s=lambda ns: ns / 1e9,
        answered=answered, launches=launches)
    chain._host_launch = lambda li, track_id, seq, t, aim, tgo: launches.append((track_id, seq))
    chain._fire_done = functools.partial(Chain._fire_done, chain)
    return chain


@pytest.mark.parametrize("answered_first", [True, False])
def test_a_fire_cancelled_as_its_answer_came_still_counts(answered_first: bool) -> None:
    async def go() -> Any:
        chain = fake_chain()
        order = FireOrder(track_id=7, launcher=0, aim=(0.0, 0.0, 0.0), tgo_s=5.0, t1_ns=0, t0_host_ns=0,
                          t0_uncertainty_ns=0)
        answer = asyncio.Event()

        async def exchange() -> FireResult:
            await answer.wait()
            return FireResult(True, 12, "", 0, 0, 1000, True)

        sending = asyncio.ensure_future(exchange())
        fire = asyncio.ensure_future(Chain._fire(chain, order, 0.0, 0, sending))
        if answered_first:
            # the answer completes the exchange, and the run's end cancels the fire before it resumes
            sending.add_done_callback(lambda _: fire.cancel())
        await asyncio.sleep(0)
        if not answered_first:
            fire.cancel()  # cancelled while it waits: the exchange is cancelled with it
        answer.set()
        with pytest.raises(asyncio.CancelledError):
            await fire
        return chain, sending

    chain, sending = asyncio.run(go())
    if answered_first:
        assert chain.answered == [("accepted", 12)] and chain.launches == [(7, 12)]
    else:
        assert sending.cancelled() and chain.answered == [] and chain.launches == []
    assert not chain.launchers.state[0].busy
