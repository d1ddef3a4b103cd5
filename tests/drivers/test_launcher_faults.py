"""LauncherLink under wire faults: late, duplicate, garbled and mis-addressed answers are discarded and counted,
over a raw TCP socket, a pty and the in-process stream; never a stale status, never a second fire."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest

from hil.drivers import modbus_rtu
from hil.drivers.launcher_link import LauncherLink, Refusal
from hil.drivers.registers import STATUS_REGS, FunctionCode, Reject
from hil.emulators.launcher import LauncherModel

pytestmark = pytest.mark.timeout(60)

Script = Callable[[int, bytes], list[tuple[float, bytes]]]  # (request number, request PDU) -> [(delay s, PDU)]


def honest(model: LauncherModel) -> Script:
    return lambda n, pdu: [(0.0, model.handle_pdu(pdu))]


class FakeBoard:
    """A launcher over a raw byte stream whose answers the test scripts: each request gets the PDUs the script
    returns, each after its delay (a late one arrives while a later request waits)."""

    def __init__(self, model: LauncherModel, script: Script | None = None) -> None:
        self.model, self.script = model, script or honest(model)
        self.requests: list[bytes] = []
        self.tasks: set[asyncio.Task[None]] = set()

    def answer(self, pdu: bytes, send: Callable[[bytes], None]) -> None:
        n = len(self.requests)
        self.requests.append(pdu)
        for delay, answer in self.script(n, pdu):
            if delay <= 0:
                send(answer)
            else:
                task = asyncio.ensure_future(self._later(delay, answer, send))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    @staticmethod
    async def _later(delay: float, answer: bytes, send: Callable[[bytes], None]) -> None:
        await asyncio.sleep(delay)
        send(answer)


TID_SHIFT = b"\xff\x7e"  # an answer PDU starting so goes out under another transaction id (tid + 0x100)


async def tcp_board(board: FakeBoard) -> tuple[asyncio.Server, str]:
    def framed(tid: int, unit: int, answer: bytes) -> bytes:
        if answer.startswith(TID_SHIFT):
            return modbus_rtu.encode_mbap((tid + 0x100) & 0xFFFF, unit, answer[len(TID_SHIFT):])
        return modbus_rtu.encode_mbap(tid, unit, answer)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                tid, _, length, unit = struct.unpack(">HHHB", await reader.readexactly(7))
                pdu = await reader.readexactly(length - 1)

                def send(answer: bytes, tid: int = tid, unit: int = unit) -> None:
                    writer.write(framed(tid, unit, answer))

                board.answer(pdu, send)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"tcp://127.0.0.1:{port}"


def rtu_board(board: FakeBoard) -> tuple[int, str]:
    """A pty whose far end is the board: the link opens the returned path."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    os.set_blocking(master, False)
    buf = bytearray()

    def readable() -> None:
        try:
            buf.extend(os.read(master, 4096))
        except OSError:
            return
        while len(buf) >= 8:  # the link's requests here are reads (8 bytes) and writes (8 or 9 + 2n)
            size = 9 + buf[6] if buf[1] == 16 else 8
            if len(buf) < size:
                return
            adu = bytes(buf[:size])
            del buf[:size]
            dev, pdu = modbus_rtu.decode_adu(adu)

            def send(answer: bytes, dev: int = dev) -> None:
                os.write(master, modbus_rtu.encode_adu(dev, answer))

            board.answer(pdu, send)

    asyncio.get_running_loop().add_reader(master, readable)
    return master, path


def wall_model(**kw: Any) -> LauncherModel:
    boot = time.monotonic_ns()
    return LauncherModel(clock_us=lambda: (time.monotonic_ns() - boot) // 1000 + 1_000_000, reload_ms=0, **kw)


def late_first_status(model: LauncherModel, delay_s: float) -> Script:
    """The first two status reads are answered delay_s late (sampled on time, as a slow wire does): the first
    one's answer lands while the second waits for its own."""
    status_reads = 0

    def script(n: int, pdu: bytes) -> list[tuple[float, bytes]]:
        nonlocal status_reads
        answer = model.handle_pdu(pdu)
        if pdu[0] == FunctionCode.READ_INPUT and pdu[3:5] == STATUS_REGS.to_bytes(2, "big"):
            status_reads += 1  # (connect() reads the longer record: not one of these)
            if status_reads <= 2:
                return [(delay_s, answer)]
        return [(0.0, answer)]

    return script


@pytest.mark.parametrize("kind", ["tcp", "rtu"])
def test_a_late_status_answer_is_discarded_and_counted_never_taken_for_the_next(kind: str) -> None:
    async def go() -> None:
        model = wall_model()
        board = FakeBoard(model)
        board.script = late_first_status(model, 0.15)
        if kind == "tcp":
            server, url = await tcp_board(board)
        else:
            master, url = rtu_board(board)
        link = LauncherLink.from_url(url, timeout_s=0.05, read_retries=0, lost_after=5)
        try:
            await link.connect()
            with pytest.raises(Exception, match="no answer"):
                await link.read_status()  # answered 150 ms late: times out at 50 ms
            await asyncio.sleep(0.08)
            h0 = time.monotonic_ns()
            # this read's own answer comes 150 ms late too, after the first late answer has landed
            status = await asyncio.wait_for(_read_until_ok(link), 2.0)
            assert link.counters.late_replies >= 1
            if kind == "rtu":  # RTU has no transaction id: the board clock told the late answer apart
                assert link.counters.stale_statuses >= 1
            # the status taken was sampled after the request went out, not the late one from before it
            assert link.clock_sync.board_to_host_ns(status.board_time_us) >= h0 - 5_000_000
        finally:
            link.close()
            if kind == "tcp":
                server.close()
            else:
                asyncio.get_running_loop().remove_reader(master)
                os.close(master)

    asyncio.run(go())


async def _read_until_ok(link: LauncherLink) -> Any:
    for _ in range(10):
        try:
            return await link.read_status()
        except Exception:  # a timeout while the late answers drain
            await asyncio.sleep(0.01)
    raise AssertionError("no status")


def test_tcp_answer_with_a_wrong_transaction_id_is_discarded_and_counted() -> None:
    async def go() -> None:
        model = wall_model()
        board = FakeBoard(model)
        server, url = await tcp_board(board)
        link = LauncherLink.from_url(url, timeout_s=0.5)
        try:
            await link.connect()
            # each status read is answered twice: first under another transaction id (content that would pass
            # for the status: only the id gives it away), then under its own
            board.script = lambda n, pdu: [(0.0, TID_SHIFT + model.handle_pdu(pdu)), (0.01, model.handle_pdu(pdu))]
            for i in range(3):
                status = await link.read_status()
                assert status.state.name == "SAFE"
                assert link.counters.late_replies == i + 1
            board.script = honest(model)
            await link.heartbeat()
            assert link.counters.late_replies == 3 and link.counters.timeouts == 0
        finally:
            link.close()
            server.close()

    asyncio.run(go())


# --- the in-process stream: what handle_rtu returns is a byte stream -------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.ns = 2_000_000_000

    def __call__(self) -> int:
        return self.ns


def virtual_link(**kw: Any) -> tuple[LauncherLink, LauncherModel, Clock]:
    clock = Clock()
    model = LauncherModel(clock_us=lambda: clock.ns // 1000, reload_ms=0)
    link = LauncherLink.virtual(model, clock_ns=clock, **kw)
    return link, model, clock


def test_garbage_duplicates_and_late_answers_in_the_stream_are_discarded_and_counted() -> None:
    async def go() -> None:
        link, model, clock = virtual_link(read_retries=0)
        await link.connect()
        await link.arm()
        real = model.handle_rtu
        held: list[bytes] = []
        mode = {"name": ""}

        def stream(adu: bytes, device_id: int) -> bytes | None:
            answer = real(adu, device_id) or b""
            if mode["name"] == "garbage":  # line noise before and after the answer
                return b"\x01\x03\xff\x00" + answer + b"\x55\x01"
            if mode["name"] == "duplicate":
                return answer + answer
            if mode["name"] == "hold":  # this answer is late: it comes with the next one
                held.append(answer)
                return None
            if mode["name"] == "release":
                return b"".join(held) + answer
            return answer

        model.handle_rtu = stream  # type: ignore[method-assign]
        mode["name"] = "garbage"
        assert (await link.read_status()).armed
        assert link.counters.discarded_bytes >= 4 and link.counters.late_replies == 0
        mode["name"] = "duplicate"
        await link.heartbeat()
        mode["name"] = ""
        before = link.counters.late_replies
        assert (await link.read_status()).armed  # the heartbeat's duplicate echo waits in the stream: dropped
        assert link.counters.late_replies == before + 1
        mode["name"] = "hold"
        with pytest.raises(Exception, match="no answer"):
            await link.read_status()
        clock.ns += 100_000_000
        mode["name"] = "release"
        before = link.counters.late_replies
        status = await link.read_status()
        assert status.board_time_us == clock.ns // 1000  # the fresh one, not the one held 100 ms
        assert link.counters.late_replies == before + 1 and link.counters.stale_statuses == 1

    asyncio.run(go())


def test_a_fire_corrupted_on_the_wire_is_refused_by_the_board_and_never_launches() -> None:
    async def go() -> None:
        link, model, _ = virtual_link()
        await link.connect()
        await link.arm()
        real = model.handle_rtu

        def flip_a_bit_of_the_aim(adu: bytes, device_id: int) -> bytes | None:
            if adu[1] == FunctionCode.WRITE_MULTIPLE:
                body = bytearray(adu[:-2])
                body[9] ^= 0x04  # FIRE_AZ_CDEG, low byte; the RTU CRC is made good again, as on TCP
                adu = modbus_rtu.encode_adu(body[0], bytes(body[1:]))
            return real(adu, device_id)

        model.handle_rtu = flip_a_bit_of_the_aim  # type: ignore[method-assign]
        result = await link.fire(4, math.radians(45.0), 0.1, 8000.0, 10.0)
        assert result.sent and not result.accepted and not result.unconfirmed
        assert result.reason == Reject.BAD_CHECK.name and not model.launches
        record = await link.read_record()
        assert record.bad_check_count == 1 and link.summary()["board"]["bad_check_count"] == 1
        model.handle_rtu = real  # type: ignore[method-assign]
        ok = await link.fire(4, math.radians(45.0), 0.1, 8000.0, 10.0)
        assert ok.accepted and model.launches[0].azimuth_cdeg == 4500
        assert (model.launches[0].range_m, model.launches[0].tgo_cs) == (8000, 1000)

    asyncio.run(go())


def test_watchdog_trip_is_seen_counted_and_latched_until_the_next_arm() -> None:
    async def go() -> None:
        link, _, clock = virtual_link()
        await link.connect()
        await link.arm()
        clock.ns += 600_000_000  # no heartbeat for longer than the 500 ms watchdog
        status = await link.read_status()
        assert status.watchdog_tripped and not status.armed and link.watchdog_tripped
        assert link.counters.watchdog_trips_seen == 1
        await link.read_status()
        assert link.watchdog_tripped and link.counters.watchdog_trips_seen == 1  # one trip, counted once
        assert (await link.fire(1, 0.0, 0.1, 1000.0, 2.0)).reason == Refusal.NOT_ARMED
        assert (await link.read_record()).watchdog_trips == 1
        await link.arm()
        assert not link.watchdog_tripped

    asyncio.run(go())


def test_an_aim_that_does_not_fit_the_registers_is_refused_unsent() -> None:
    async def go() -> None:
        link, model, _ = virtual_link()
        await link.connect()
        await link.arm()
        requests = link.counters.requests
        for aim in ((0.0, 0.1, -1.0, 1.0), (0.0, 0.1, 70_000.0, 1.0), (0.0, 0.1, 1000.0, 700.0),
                    (0.0, 0.1, math.nan, 1.0), (math.inf, 0.1, 1000.0, 1.0)):
            assert (await link.fire(1, *aim)).reason == Refusal.BAD_AIM
        assert not model.launches and link.counters.requests == requests  # nothing went to the board

    asyncio.run(go())


def test_pymodbus_logs_one_line_at_warning_without_frame_dumps_unless_verbose(
        caplog: pytest.LogCaptureFixture) -> None:
    from pymodbus.logging import Log

    try:
        modbus_rtu.quiet_pymodbus(verbose=False)
        Log.transport_dump(Log.RECV_DATA, b"\x01\x03\x02", b"")  # a frame pymodbus keeps for its next error
        with caplog.at_level(logging.DEBUG):
            Log.error("request ask for id={} but got id={}, Skipping.", 1, 7)
            Log.debug("frame {}", b"\x01\x02", ":hex")
        records = [r for r in caplog.records if r.name.startswith("pymodbus")]
        assert [(r.levelname, r.getMessage()) for r in records] == [
            ("WARNING", "request ask for id=1 but got id=7, Skipping.")]
        caplog.clear()
        modbus_rtu.quiet_pymodbus(verbose=True)
        with caplog.at_level(logging.DEBUG):
            Log.debug("frame {}", b"\x01\x02", ":hex")
        assert [r.levelname for r in caplog.records if r.name.startswith("pymodbus")] == ["DEBUG"]
    finally:
        modbus_rtu.quiet_pymodbus(verbose=False)
