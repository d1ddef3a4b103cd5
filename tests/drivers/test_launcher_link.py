"""LauncherLink: its own fire checks, seq ownership and readback, LOST and reconnect, in virtual time and against
the real pymodbus launcher process over a pty pair (RTU) and TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import select
import signal
import struct
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from hil.drivers import modbus_rtu
from hil.drivers.launcher_link import LauncherLink, Refusal
from hil.drivers.registers import HOLDING_COUNT, REGMAP_VERSION, Holding, Input, Reject, fire_block
from hil.emulators.launcher import LauncherModel
from hil.emulators.wire import open_raw_pty
from hil.errors import LinkError
from hil.procutil import Child
from tests.helpers import RPI_FIRMWARE, abandon_fires

pytestmark = pytest.mark.timeout(60)


class Tape:
    """The recorder: every ADU the link sent and received."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, bytes, int, str]] = []

    def __call__(self, name: str, direction: str, adu: bytes, host_ns: int, kind: str) -> None:
        self.rows.append((name, direction, adu, host_ns, kind))

    def pdus(self, direction: str) -> list[bytes]:
        out = []
        for _, d, adu, _, kind in self.rows:
            if d == direction:
                out.append(adu[7:] if kind == "modbus_tcp" else modbus_rtu.decode_adu(adu)[1])
        return out

    def fire_writes(self) -> list[bytes]:
        return [p for p in self.pdus("tx") if p[0] == 16 and struct.unpack(">H", p[1:3])[0] == Holding.FIRE_TRACK]


class Clock:
    def __init__(self) -> None:
        self.ns = 5_000_000_000

    def __call__(self) -> int:
        return self.ns


def virtual(rounds: int = 4, reload_ms: int = 0, **kw: Any) -> tuple[LauncherLink, LauncherModel, Tape, Clock]:
    clock, tape = Clock(), Tape()
    offset_us = 123_456_789
    model = LauncherModel(clock_us=lambda: clock.ns // 1000 + offset_us, rounds=rounds, reload_ms=reload_ms)
    link = LauncherLink.virtual(model, name="l1", clock_ns=clock, recorder=tape, **kw)
    return link, model, tape, clock


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- virtual time: the link's own rules ------------------------------------------------------------------


def test_virtual_link_arms_fires_and_confirms_by_readback() -> None:
    async def go() -> None:
        link, model, tape, clock = virtual()
        await link.connect()
        ident = await link.identify()
        assert (ident.name, ident.version) == ("hil-launcher-py", "1.0")
        await link.arm()
        result = await link.fire(31, math.radians(90.0), math.radians(12.5))
        assert result.accepted and result.reason == "" and result.seq == 1
        assert model.launches[0].track == 31
        assert (model.launches[0].azimuth_cdeg, model.launches[0].elevation_cdeg) == (9000, 1250)
        assert result.board_accept_us == model.launches[0].t_us
        # the board time maps back to the host clock through the link's clock sync
        assert abs(link.clock_sync.board_to_host_ns(result.board_accept_us) - clock.ns) < 1_000_000
        clock.ns += 1_000_000
        second = await link.fire(32, 0.0, 0.0)
        assert second.accepted and second.seq == 2
        # every request on the tape was answered, in valid RTU with CRC
        assert [d for _, d, *_ in tape.rows] == ["tx", "rx"] * (len(tape.rows) // 2)
        assert {kind for *_, kind in tape.rows} == {"modbus_rtu"}
        assert len(tape.fire_writes()) == 2

    run(go())


@pytest.mark.parametrize(("setup", "reason"), [
    ("unarmed", Refusal.NOT_ARMED),
    ("stale", Refusal.STALE_STATUS),
    ("reloading", Refusal.NOT_READY),
    ("empty", Refusal.NO_ROUNDS),
    ("fault", Refusal.FAULT),
    ("aim", Refusal.BAD_AIM),
])
def test_link_refuses_and_sends_nothing(setup: str, reason: Refusal) -> None:
    async def go() -> None:
        link, model, tape, clock = virtual(rounds=1 if setup == "empty" else 4,
                                           reload_ms=5000 if setup == "reloading" else 0)
        await link.connect()
        if setup != "unarmed":
            await link.arm()
        if setup in ("reloading", "empty"):
            assert (await link.fire(1, 0.0, 0.1)).accepted
        if setup == "stale":
            clock.ns += link.watchdog_ms * 1_000_000  # the last status is as old as the watchdog period
        if setup == "fault":
            model.inject_fault(3)
            await link.read_status()
        writes_before = len(tape.fire_writes())
        result = await link.fire(2, 0.0, math.radians(95.0) if setup == "aim" else 0.1)
        assert not result.accepted and not result.sent and result.reason == reason
        assert len(tape.fire_writes()) == writes_before
        assert link.counters.refusals[reason] == 1

    run(go())


def test_board_refusal_is_reported_with_its_reject_name() -> None:
    async def go() -> None:
        link, model, _, _ = virtual()
        await link.connect()
        await link.arm()
        model.state = type(model.state).SAFE  # the board safes itself between the link's read and its write
        result = await link.fire(5, 0.0, 0.1)
        assert result.sent and not result.accepted and result.reason == Reject.NOT_ARMED.name
        assert not model.launches

    run(go())


def fire_seqs(tape: Tape) -> list[int]:
    return [struct.unpack(">H", w[-4:-2])[0] for w in tape.fire_writes()]


@pytest.mark.parametrize("board_acts", [True, False])
def test_a_fire_whose_answer_is_lost_is_unconfirmed_refuses_more_until_reconciled_and_is_never_resent(
        board_acts: bool) -> None:
    async def go() -> None:
        link, model, tape, _ = virtual()
        await link.connect()
        await link.arm()
        real = model.handle_rtu

        def lose_fire_answer(adu: bytes, device_id: int) -> bytes | None:
            if adu[1] != 16:
                return real(adu, device_id)
            answer = real(adu, device_id) if board_acts else None  # the board acts (or never hears it)...
            return None if answer is None else b""  # ...and its answer never arrives

        model.handle_rtu = lose_fire_answer  # type: ignore[method-assign]
        result = await link.fire(8, 0.0, 0.1, 9000.0, 12.5)
        assert result.unconfirmed and result.sent and not result.accepted and result.reason == Refusal.UNCONFIRMED
        assert len(model.launches) == int(board_acts)
        model.handle_rtu = real  # type: ignore[method-assign]
        await link.heartbeat()
        await link.read_status()
        refused = await link.fire(9, 0.0, 0.1, 9000.0, 12.5)
        assert refused.reason == Refusal.UNRECONCILED and not refused.sent
        assert len(tape.fire_writes()) == 1
        settled = await link.reconcile()
        assert (settled.seq, settled.launched) == (result.seq, board_acts)
        assert settled.board_launch_us == (model.launches[0].t_us if board_acts else 0)
        assert link.counters.unconfirmed == 1 and link.counters.launches == int(board_acts)
        assert link.counters.reconciled_launched == int(board_acts)
        again = await link.fire(9, 0.0, 0.1, 9000.0, 12.5)
        assert again.accepted and again.seq != result.seq
        seqs = fire_seqs(tape)
        assert len(seqs) == len(set(seqs)) == 2  # never the same command twice
        assert link.counters.launches == len(model.launches)  # board launches equal host launches

    run(go())


@pytest.mark.parametrize("board_acts", [True, False])
def test_an_answer_that_reads_as_an_exception_is_checked_by_reading_back(board_acts: bool) -> None:
    """Modbus TCP has no checksum: a corrupted acceptance can read as an exception (function code | 0x80). Only the
    board's read-back says whether it launched: the host counts the launch the board made."""
    async def go() -> None:
        link, model, _, _ = virtual()
        await link.connect()
        await link.arm()
        real = model.handle_rtu

        def answer_as_exception(adu: bytes, device_id: int) -> bytes | None:
            if adu[1] != 16:
                return real(adu, device_id)
            if board_acts:
                real(adu, device_id)  # the board launches; its answer is corrupted on the way
            return modbus_rtu.encode_adu(device_id, bytes([0x90, 0x04]))

        model.handle_rtu = answer_as_exception  # type: ignore[method-assign]
        result = await link.fire(8, 0.0, 0.1, 9000.0, 12.5)
        model.handle_rtu = real  # type: ignore[method-assign]
        assert result.accepted == board_acts and len(model.launches) == int(board_acts)
        assert link.counters.launches == len(model.launches)  # board launches equal host launches
        if not board_acts:
            assert result.reason.startswith(Refusal.EXCEPTION) and result.sent

    run(go())


def test_a_fire_whose_readback_fails_is_unconfirmed() -> None:
    async def go() -> None:
        link, model, _, _ = virtual(read_retries=0)
        await link.connect()
        await link.arm()
        real = model.handle_rtu
        fired: list[bool] = []

        def lose_readback(adu: bytes, device_id: int) -> bytes | None:
            answer = real(adu, device_id)
            if fired and adu[1] == 4:
                return None
            fired.append(adu[1] == 16)
            return answer

        model.handle_rtu = lose_readback  # type: ignore[method-assign]
        fired.clear()
        result = await link.fire(3, 0.0, 0.1, 500.0, 1.0)
        assert result.unconfirmed and len(model.launches) == 1
        with pytest.raises(LinkError):
            await link.reconcile()  # the board is still silent: still unreconciled
        assert (await link.fire(3, 0.0, 0.1)).reason == Refusal.UNRECONCILED
        model.handle_rtu = real  # type: ignore[method-assign]
        assert (await link.reconcile()).launched

    run(go())


def test_a_launcher_that_stops_answering_is_lost_refused_and_reconnects_after_backoff() -> None:
    async def go() -> None:
        link, model, tape, clock = virtual(lost_after=3, backoff_s=(0.5, 4.0))
        await link.connect()
        await link.arm()
        model.responding = False
        for _ in range(3):
            with pytest.raises(LinkError):
                await link.heartbeat()
        assert link.lost
        sent = len(tape.pdus("tx"))
        result = await link.fire(1, 0.0, 0.1)
        assert result.reason == Refusal.LOST and not result.sent
        with pytest.raises(LinkError, match="next reconnect"):
            await link.read_status()
        assert len(tape.pdus("tx")) == sent  # nothing at all goes to a lost board before its backoff
        clock.ns += 600_000_000
        with pytest.raises(LinkError, match="reconnect failed"):
            await link.read_status()  # it tries, the board is still silent: the backoff doubles
        model.responding = True
        clock.ns += 600_000_000
        with pytest.raises(LinkError, match="next reconnect"):
            await link.read_status()
        clock.ns += 600_000_000
        status = await link.read_status()
        assert not link.lost and link.counters.reconnects == 1
        assert not status.armed  # its watchdog safed it meanwhile
        await link.arm()
        assert (await link.fire(2, 0.0, 0.1)).accepted

    run(go())


def test_configure_refuses_rounds_when_armed() -> None:
    async def go() -> None:
        link, _, _, _ = virtual()
        await link.connect()
        status = await link.configure(watchdog_ms=300, reload_ms=100, rounds=6)
        assert status.rounds == 6 and link.watchdog_ms == 300
        await link.arm()
        with pytest.raises(LinkError, match="SAFE"):
            await link.configure(watchdog_ms=300, reload_ms=100, rounds=2)
        with pytest.raises(ValueError):
            await link.configure(watchdog_ms=10, reload_ms=100, rounds=2)

    run(go())


def test_board_restart_resets_clock_sync_and_sequence_stays_fresh() -> None:
    async def go() -> None:
        link, _, _, clock = virtual()
        await link.connect()
        await link.arm()
        first = await link.fire(1, 0.0, 0.1)
        assert first.accepted
        fresh = LauncherModel(clock_us=lambda: clock.ns // 1000 - 4_000_000, reload_ms=0)  # booted since
        link.transport.model = fresh
        await link.read_status()
        assert link.counters.board_restarts == 1
        await link.arm()
        second = await link.fire(2, 0.0, 0.1)
        assert second.accepted and second.seq != 0

    run(go())


def test_not_connected_refuses() -> None:
    link, *_ = virtual()
    result = run(link.fire(1, 0.0, 0.1))
    assert result.reason == Refusal.NOT_CONNECTED
    with pytest.raises(LinkError):
        run(link.read_status())


def test_bad_urls() -> None:
    for url in ("udp://127.0.0.1:5", "tcp://127.0.0.1", "COM3"):
        with pytest.raises(LinkError):
            LauncherLink.from_url(url)


# --- real processes: pymodbus server over a pty pair and over TCP -----------------------------------------


@pytest.fixture
def launcher_rtu() -> Iterator[tuple[str, Child]]:
    cable = Child.python("hil.plant.nullmodem", [], name="cable")
    board = Child.python("hil.emulators.launcher", ["--rtu", cable.info["a"], "--reload-ms", "0"], name="launcher")
    try:
        yield cable.info["b"], board
    finally:
        board.stop()
        cable.stop()


@pytest.fixture
def launcher_tcp() -> Iterator[tuple[str, Child]]:
    board = Child.python("hil.emulators.launcher", ["--tcp", "127.0.0.1:0", "--reload-ms", "0"], name="launcher")
    try:
        yield "tcp://" + board.info["tcp"], board
    finally:
        board.stop()


@pytest.fixture(params=["rtu", "tcp"])
def launcher(request: pytest.FixtureRequest) -> tuple[str, Child]:
    return request.getfixturevalue(f"launcher_{request.param}")


def test_link_against_the_real_server(launcher: tuple[str, Child]) -> None:
    url, board = launcher

    async def go() -> None:
        tape = Tape()
        link = LauncherLink.from_url(url, name="real", recorder=tape, timeout_s=1.0)
        await link.connect()
        assert (await link.identify()).name == "hil-launcher-py"
        await link.configure(watchdog_ms=2000, reload_ms=0, rounds=3)
        await link.arm()
        results = [await link.fire(40 + i, math.radians(10.0 * i), 0.2) for i in range(4)]
        assert [r.accepted for r in results] == [True, True, True, False]
        assert results[3].reason == Refusal.NO_ROUNDS and not results[3].sent
        status = await link.make_safe()
        assert not status.armed and status.launch_count == 3 and status.last_fire_track == 42
        assert link.clock_sync.synced
        kind = "modbus_tcp" if url.startswith("tcp") else "modbus_rtu"
        assert {k for *_, k in tape.rows} == {kind}
        tx, rx = tape.pdus("tx"), tape.pdus("rx")
        assert len(tx) == len(rx) == link.counters.requests
        assert len(tape.fire_writes()) == 3
        link.close()

    run(go())
    assert board.alive()


def test_fire_now_writes_the_command_before_it_returns_and_waits_for_no_busy_link(launcher: tuple[str, Child]) -> None:
    """fire_now: the command is on the wire when the call returns (the decision's own call, no pass of the event loop
    first), its task gives fire()'s result; with a status read under way it sends nothing (None); a task cancelled
    before it ran leaves the link free."""
    url, _ = launcher

    async def go() -> None:
        tape = Tape()
        link = LauncherLink.from_url(url, name="real", recorder=tape, timeout_s=1.0)
        await link.connect()
        await link.configure(watchdog_ms=2000, reload_ms=0, rounds=5)
        await link.arm()
        sending = link.fire_now(50, math.radians(30.0), 0.2, 9000.0, 12.5)
        assert sending is not None and len(tape.fire_writes()) == 1  # written already, nothing awaited yet
        result = await sending
        assert result.accepted and result.sent and result.written_ns > 0
        assert link.status is not None and link.status.last_fire_track == 50

        reading = asyncio.ensure_future(link.read_status())
        await asyncio.sleep(0)  # the status read holds the link now
        assert link.fire_now(51, 0.0, 0.2, 9000.0, 12.5) is None
        assert len(tape.fire_writes()) == 1  # nothing sent
        await reading

        cancelled = link.fire_now(52, 0.0, 0.2, 9000.0, 12.5)
        assert cancelled is not None
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await asyncio.wait_for(link.read_status(), 2.0)  # the link is free again
        # the cancelled fire was written and its answer never taken: unconfirmed, as a fire whose answer is lost,
        # until the read-back settles it (the board did launch it)
        assert link.unconfirmed_seq and link.unconfirmed_track == 52
        assert (await link.fire(53, 0.0, 0.2, 9000.0, 12.5)).reason == Refusal.UNRECONCILED
        assert (await link.reconcile()).launched
        later = await link.fire(53, 0.0, 0.2, 9000.0, 12.5)
        assert later.accepted and len(tape.fire_writes()) == 3
        # fire() cancelled while it waits for the answer: unconfirmed too
        waiting = asyncio.ensure_future(link.fire(54, 0.0, 0.2, 9000.0, 12.5))
        await asyncio.sleep(0)
        assert len(tape.fire_writes()) == 4
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert link.unconfirmed_track == 54
        assert len(set(fire_seqs(tape))) == 4  # never the same command twice
        link.close()

    run(go())


def test_a_fire_abandoned_before_its_answer_still_reaches_the_board(launcher: tuple[str, Child]) -> None:
    """A fire whose task is cancelled before its answer (the run ends, say), and a request right behind it: on a
    serial line two frames with no silence between them are one frame to the board, which drops it (13 of 30
    fires lost, and read timeouts, before the link waited). The next request waits for the abandoned answer:
    the board launched every fire, no request timed out, the answers came late to nobody and were counted."""
    url, _ = launcher

    async def go() -> None:
        link = LauncherLink.from_url(url, name="real", timeout_s=1.0)
        await link.connect()
        await link.configure(watchdog_ms=5000, reload_ms=0, rounds=40)
        await link.arm()
        launched = await abandon_fires(link, 12)
        assert launched == [True] * 12
        assert link.counters.timeouts == link.counters.read_retries == 0
        assert link.counters.launches == 12
        assert not (await link.make_safe()).armed
        link.close()

    run(go())


@contextlib.asynccontextmanager
async def board_end_of_a_pty(timeout_s: float) -> AsyncIterator[tuple[int, Any]]:
    """A launcher link's transport open on a pty whose other end the test plays as the board: (board fd, transport)."""
    board, path = open_raw_pty()
    transport: Any = LauncherLink.from_url(path, timeout_s=timeout_s).transport
    await transport.open()
    try:
        yield board, transport
    finally:
        transport.close()


def test_an_rtu_request_keeps_the_silence_after_bytes_that_answer_nothing() -> None:
    """Bytes that answer nothing (a duplicate answer, noise) are on the line: the next request goes out t3.5 after
    the last of them (1.75 ms at 115200 baud), so the board can tell the frames apart. Timed from the board's end
    of a pty: a late request only makes the gap longer."""

    async def go() -> float:
        async with board_end_of_a_pty(0.05) as (board, transport):
            stray_at = time.monotonic()
            os.write(board, b"\x01\x03\x02\x00")  # a piece of an answer nobody asked for
            while not transport.rx:
                await asyncio.sleep(0)
            assert not transport.settled()
            await transport.settle()
            transport.send(modbus_rtu.read_request(4, 0, 2), None)
            readable, _, _ = select.select([board], [], [], 1.0)
            arrived = time.monotonic()
            assert readable and os.read(board, 64)
            return arrived - stray_at

    assert run(go()) >= modbus_rtu.t35_s(115200) == 1.75e-3


def test_a_request_given_up_after_its_answer_came_owes_nothing() -> None:
    """A fire task cancelled before it ran, when its answer had already come in: nothing is due, so the next request
    need not wait for the response timeout."""

    async def go() -> None:
        async with board_end_of_a_pty(5.0) as (board, transport):
            transport.send(modbus_rtu.read_request(4, 0, 1), None)
            os.write(board, modbus_rtu.encode_adu(1, bytes([4, 2, 0, 7])))  # its answer
            waiter = transport._waiter
            while not waiter.done():  # the answer taken (or, were it lost, the 5 s deadline)
                await asyncio.sleep(0.001)
            assert waiter.result() == bytes([4, 2, 0, 7])
            transport.abandon()
            assert transport.settled()
            transport.abandon()  # nothing sent since: nothing to give up
            assert transport.settled()

    run(go())


def test_the_real_server_answers_exceptions_01_02_03(launcher: tuple[str, Child]) -> None:
    url, _ = launcher

    async def go() -> None:
        from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

        client: Any
        if url.startswith("tcp://"):
            host, port = url[6:].rsplit(":", 1)
            client = AsyncModbusTcpClient(host, port=int(port), timeout=1, retries=0)
        else:
            client = AsyncModbusSerialClient(url, baudrate=115200, timeout=1, retries=0)
        assert await client.connect()
        coils = await client.read_coils(0, count=1, device_id=1)
        assert coils.isError() and coils.exception_code == 1
        past = await client.read_holding_registers(HOLDING_COUNT - 1, count=2, device_id=1)
        assert past.isError() and past.exception_code == 2
        low = await client.write_register(Holding.WATCHDOG_MS, 20, device_id=1)
        assert low.isError() and low.exception_code == 3
        ok = await client.read_input_registers(Input.IDENT_MAGIC, count=2, device_id=1)
        assert list(ok.registers) == [0x484C, REGMAP_VERSION]
        # a retried fire write (same seq twice) launches once
        await client.write_register(Holding.ARM_KEY, 0xA55A, device_id=1)
        for _ in range(2):
            await client.write_registers(Holding.FIRE_TRACK, fire_block(1, 0, 0, 100, 100, 77), device_id=1)
        regs = (await client.read_input_registers(0, count=11, device_id=1)).registers
        assert (regs[Input.LAST_FIRE_SEQ], regs[Input.LAUNCH_COUNT], regs[Input.LAST_REJECT]) == \
            (77, 1, Reject.DUPLICATE_SEQ)
        client.close()

    run(go())


def test_a_hung_board_is_lost_then_reconnects(launcher: tuple[str, Child]) -> None:
    url, board = launcher

    async def go() -> None:
        tape = Tape()
        link = LauncherLink.from_url(url, name="hung", recorder=tape, timeout_s=0.05, lost_after=2,
                                     backoff_s=(0.05, 0.2))
        await link.connect()
        await link.configure(watchdog_ms=10000, reload_ms=0, rounds=4)
        await link.arm()
        os.kill(board.proc.pid, signal.SIGSTOP)  # the board hangs: no answers at all
        try:
            for _ in range(2):
                with pytest.raises(LinkError):
                    await link.heartbeat()
            assert link.lost
            writes = len(tape.fire_writes())
            result = await link.fire(1, 0.0, 0.1)
            assert result.reason == Refusal.LOST and len(tape.fire_writes()) == writes
        finally:
            os.kill(board.proc.pid, signal.SIGCONT)
        for _ in range(100):
            try:
                await link.read_status()
                break
            except LinkError:
                await asyncio.sleep(0.05)
        assert not link.lost and link.counters.reconnects >= 1
        assert (await link.fire(2, 0.0, 0.1)).accepted  # ARMED still: the 10 s watchdog did not run out
        link.close()

    run(go())


def test_launcher_process_exits_cleanly_on_sigterm(launcher_tcp: tuple[str, Child]) -> None:
    _, board = launcher_tcp
    board.proc.send_signal(signal.SIGTERM)
    assert board.proc.wait(10) == 0


def test_the_raspberry_pi_entry_point_serves_the_same_launcher() -> None:
    import sys

    script = RPI_FIRMWARE / "launcher.py"
    board = Child([sys.executable, str(script), "--tcp", "127.0.0.1:0", "--build", "pi1"], name="rpi launcher")
    try:
        async def go() -> None:
            link = LauncherLink.from_url("tcp://" + board.info["tcp"], timeout_s=1.0)
            await link.connect()
            assert tuple(await link.identify()) == ("hil-launcher-rpi", "1.0", "pi1")
            link.close()

        run(go())
    finally:
        board.stop()
