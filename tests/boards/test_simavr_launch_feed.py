"""The simavr launcher's launch feed: the bench reports every launch the AVR firmware makes, lost reply or not."""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import json
import math
import os
import re
import select
import threading
import time
import tty

import pytest

from drivers import modbus_rtu
from drivers.launcher_link import FireRecord, LauncherLink, LauncherStatus
from drivers.registers import ARM_KEY, FIRE_BLOCK, Holding, fire_block
from hil.emulators.launcher import Launch, LaunchEvents
from hil.plant.firmware import SimavrBoard, build_firmware
from tests.helpers import require_tool

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def board(simavr_launcher: SimavrBoard) -> SimavrBoard:
    return simavr_launcher


def feed_of(board: SimavrBoard) -> LaunchEvents:
    feed = board.launch_events()
    assert feed is not None, "the launcher firmware's harness announced no launch feed"
    return feed


def launches(feed: LaunchEvents, n: int, timeout_s: float = 5.0) -> list[Launch]:
    """What the feed reports once n launches came (or timeout_s passed), and a moment more for any extra one."""
    got: list[Launch] = []
    end = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < end:
        got += feed.poll()
        time.sleep(0.01)
    time.sleep(0.1)
    return got + feed.poll()


def fired_at(result_seq: int, track: int, aim: tuple[int, int, int, int], board_us: int) -> Launch:
    return Launch(result_seq, track & 0xFFFF, *aim, board_us)


class ReplyEater:
    """A pty between the host and the board that loses the board's answer to the first `fires` fire commands, as
    a noisy line would: the board launches, the host never hears the reply. Everything else passes."""

    def __init__(self, board_pty: str, fires: int = 1) -> None:
        self.master, self._slave = os.openpty()  # our slave end stays open: no hang-up when the host reopens
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.board = os.open(board_pty, os.O_RDWR | os.O_NOCTTY)
        self.fires_left, self.bytes_eaten = fires, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._relay, daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        fire_request = bytes([0x10]) + FIRE_BLOCK.to_bytes(2, "big")
        request, answered, eating = b"", True, False
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master, self.board], [], [], 0.05)
            if self.master in ready:
                data = os.read(self.master, 512)
                if answered:  # a new request begins: the previous answer, eaten or not, is over
                    request, answered, eating = b"", False, False
                request += data
                if not eating and self.fires_left and request[1:4] == fire_request:
                    eating, self.fires_left = True, self.fires_left - 1
                os.write(self.board, data)
            if self.board in ready:
                data = os.read(self.board, 512)
                answered = True
                if eating:
                    self.bytes_eaten += len(data)
                else:
                    os.write(self.master, data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for fd in (self.master, self._slave, self.board):
            os.close(fd)


def test_a_fire_through_the_link_is_one_launch_line_in_the_mock_launchers_format(board: SimavrBoard) -> None:
    assert board.launch_events() is board.launch_events()  # one reader of the harness's stdout
    assert board._child is not None and board._child.proc.stdout is not None
    fd = board._child.proc.stdout.fileno()
    link = LauncherLink.from_url(board.pty, timeout_s=0.5)

    async def main() -> int:
        try:
            await link.connect()
            await link.configure(watchdog_ms=5000, reload_ms=0, rounds=2)
            await link.arm()
            result = await link.fire(70_001, math.radians(123.45), math.radians(6.5), 23_456.0, 31.25)
            assert result.accepted, result.reason
            return result.seq
        finally:
            link.close()

    seq = asyncio.run(main())
    assert link.status is not None
    expected = fired_at(seq, 70_001, (12345, 650, 23_456, 3125), link.status.last_launch_board_us)
    line = b""
    end = time.monotonic() + 5.0
    while not line.endswith(b"\n") and time.monotonic() < end:
        if select.select([fd], [], [], 0.1)[0]:
            line += os.read(fd, 1)
    # the very dict the mock launcher prints, floats included, so the runtime reads both the same way
    assert json.loads(line) == {"launch": expected.to_json()}


def test_a_fire_whose_reply_is_lost_still_flies_and_refusals_never_do(board: SimavrBoard) -> None:
    feed = feed_of(board)
    eater = ReplyEater(board.pty)
    link = LauncherLink.from_url(eater.path, timeout_s=0.3)
    aims = {101: (4500, 1200, 15_000, 2345), 202: (27_000, 300, 9_000, 1500)}

    async def main() -> int:
        try:
            await link.connect()
            await link.configure(watchdog_ms=5000, reload_ms=0, rounds=4)
            await link.arm()
            lost = await link.fire(202, math.radians(270), math.radians(3), 9_000.0, 15.0)
            assert lost.unconfirmed and not lost.accepted and eater.bytes_eaten > 0
            got = launches(feed, 1)
            assert got == [fired_at(lost.seq, 202, aims[202], got[0].t_us)]  # the bench saw it fly
            settled = await link.reconcile()  # the host's read-back agrees with the bench, later
            assert settled.launched and settled.seq == lost.seq and settled.board_launch_us == got[0].t_us

            heard = await link.fire(101, math.radians(45), math.radians(12), 15_000.0, 23.45)
            assert heard.accepted
            assert launches(feed, 1) == [fired_at(heard.seq, 101, aims[101], heard.board_accept_us)]
            return heard.seq
        finally:
            link.close()
            eater.close()

    last_seq = asyncio.run(main())
    # fires the board refuses (a duplicate seq, not armed, a flipped check bit) launch nothing: no line
    port = os.open(board.pty, os.O_RDWR | os.O_NOCTTY)
    try:
        raw_write(port, modbus_rtu.write_multiple_request(FIRE_BLOCK, fire_block(303, 100, 100, 100, 100, last_seq)))
        raw_write(port, modbus_rtu.write_single_request(Holding.ARM_KEY, 0))
        raw_write(port, modbus_rtu.write_multiple_request(FIRE_BLOCK, fire_block(303, 100, 100, 100, 100, 50)))
        raw_write(port, modbus_rtu.write_single_request(Holding.ARM_KEY, ARM_KEY))
        block = fire_block(303, 100, 100, 100, 100, 51)
        block[-1] ^= 1
        raw_write(port, modbus_rtu.write_multiple_request(FIRE_BLOCK, block))
    finally:
        os.close(port)
    status, record = read_back(board.pty)
    assert status.reject_count == 3 and record.bad_check_count == 1 and status.armed  # all three reached it
    assert status.launch_count == 2 and launches(feed, 1, timeout_s=0.3) == []


def read_back(pty: str) -> tuple[LauncherStatus, FireRecord]:
    """The board's own account over a fresh link: its status and fire record."""

    async def main() -> tuple[LauncherStatus, FireRecord]:
        link = LauncherLink.from_url(pty, timeout_s=0.5)
        try:
            await link.connect()
            record = await link.read_record()
            assert link.status is not None
            return link.status, record
        finally:
            link.close()

    return asyncio.run(main())


def raw_write(port: int, pdu: bytes) -> None:
    """One request on the wire, its answer never read (the board's pty holds it), then a pause for the board."""
    os.write(port, modbus_rtu.encode_adu(1, pdu))
    time.sleep(0.05)


def test_a_raw_fire_nobody_reads_is_reported_and_matches_the_boards_record(board: SimavrBoard) -> None:
    feed = feed_of(board)
    port = os.open(board.pty, os.O_RDWR | os.O_NOCTTY)
    try:
        raw_write(port, modbus_rtu.write_single_request(Holding.ARM_KEY, ARM_KEY))
        raw_write(port, modbus_rtu.write_multiple_request(FIRE_BLOCK, fire_block(4242, 35_999, 9000, 65_535, 1, 7)))
    finally:
        os.close(port)
    got = launches(feed, 1)
    assert got == [Launch(7, 4242, 35_999, 9000, 65_535, 1, got[0].t_us)]
    status, record = read_back(board.pty)
    assert (status.launch_count, status.last_fire_seq, status.last_fire_track) == (1, 7, 4242)
    assert status.last_launch_board_us == got[0].t_us and record.last_aim == (35_999, 9000, 65_535, 1)


def test_an_unread_feed_never_stalls_the_board_and_every_launch_is_reported_or_counted_lost(
        board: SimavrBoard) -> None:
    assert board._child is not None and board._child.proc.stdout is not None
    # the smallest pipe Linux gives (one page), so a few launches fill it and the harness's own buffer
    fcntl.fcntl(board._child.proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    fires = 120
    link = LauncherLink.from_url(board.pty, timeout_s=0.5)

    async def main() -> list[int]:
        try:
            await link.connect()
            await link.configure(watchdog_ms=5000, reload_ms=0, rounds=fires)
            await link.arm()
            seqs = []
            for i in range(fires):
                result = await link.fire(i, 0.5, 0.1, 1000.0 + i, 10.0)
                assert result.accepted, (i, result.reason)  # the board answered every one, never stalled
                seqs.append(result.seq)
            return seqs
        finally:
            link.close()

    seqs = asyncio.run(main())
    got = launches(board.launch_events() or feed_of(board), fires, timeout_s=1.0)
    assert 0 < len(got) < fires  # the buffer is bounded
    assert [g.seq for g in got] == seqs[:len(got)]  # the oldest kept, in order, none twice
    assert [g.range_m for g in got] == [1000 + i for i in range(len(got))]
    # the board clock only runs forward (simavr 1.6 once lost Timer1 overflows to the firmware's TIFR1 writes)
    assert all(a.t_us < b.t_us for a, b in itertools.pairwise(got))
    board.stop()
    m = re.search(r"(\d+) launches reported, (\d+) launch lines lost, (\d+) launches without an edge", board.stats)
    assert m is not None, board.stats
    assert (int(m[1]), int(m[2]), int(m[3])) == (fires, fires - len(got), 0)


def test_the_radar_firmware_has_no_launch_feed() -> None:
    require_tool("avr-gcc", "gcc-avr avr-libc")
    require_tool("simavr", "simavr libsimavr-dev libelf-dev")
    with SimavrBoard(build_firmware("radar")) as radar:
        assert radar.launch_events() is None  # the runtime keeps the read-back for such a board
