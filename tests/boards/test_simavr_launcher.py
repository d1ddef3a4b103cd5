"""The AVR launcher firmware under simavr: Modbus RTU with pymodbus and mbpoll, the arm key, fire, watchdog."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import serial

from hil.drivers import modbus_rtu
from hil.drivers.registers import (
    ARM_KEY,
    HOLDING_COUNT,
    IDENT_MAGIC,
    INPUT_COUNT,
    REGMAP_VERSION,
    Holding,
    Input,
    Reject,
    State,
    StatusBit,
    fire_block,
    unpack_ascii,
    unpack_u64,
)
from hil.emulators.launcher import Launch
from hil.plant.firmware import SimavrBoard
from hil.records.recording import Recorder
from tests.helpers import abandon_fires, head_commit, require_tool

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def launcher_board(simavr_launcher: SimavrBoard) -> SimavrBoard:
    return simavr_launcher


@pytest.fixture
def launcher(launcher_board: SimavrBoard) -> str:
    return launcher_board.pty


def board_launches(board: SimavrBoard, n: int) -> list[Launch]:
    """The launches the bench saw the board make (its launch feed), once n came or 5 s passed."""
    feed = board.launch_events()
    assert feed is not None
    got: list[Launch] = []
    end = time.monotonic() + 5.0
    while len(got) < n and time.monotonic() < end:
        got += feed.poll()
        time.sleep(0.01)
    return got


class Client:
    """pymodbus' async RTU client on the pty, one request at a time, no retries (a retry could fire twice)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    async def inputs(self, address: int = 0, count: int = INPUT_COUNT) -> list[int]:
        r = await self.raw.read_input_registers(address, count=count, device_id=1)
        assert not r.isError(), r
        return list(r.registers)

    async def holding(self, address: int = 0, count: int = HOLDING_COUNT) -> list[int]:
        r = await self.raw.read_holding_registers(address, count=count, device_id=1)
        assert not r.isError(), r
        return list(r.registers)

    async def write(self, address: int, *values: int) -> int:
        """0, or the exception code the board answered."""
        if len(values) == 1:
            r = await self.raw.write_register(address, values[0], device_id=1)
        else:
            r = await self.raw.write_registers(address, list(values), device_id=1)
        return int(r.exception_code) if r.isError() else 0

    async def fire(self, track: int, seq: int, check_ok: bool = True) -> None:
        block = fire_block(track, 4500, 1200, 15_000, 2345, seq)
        block[-1] ^= 0 if check_ok else 0x0100
        assert await self.write(Holding.FIRE_TRACK, *block) == 0

    async def until(self, check: Callable[[list[int]], bool], timeout_s: float = 5.0) -> list[int]:
        """Poll the input registers until check passes (the state machine runs on board time)."""
        end = time.monotonic() + timeout_s
        while True:
            regs = await self.inputs()
            if check(regs) or time.monotonic() > end:
                return regs
            await asyncio.sleep(0.02)


@asynccontextmanager
async def client(pty: str) -> AsyncIterator[Client]:
    from pymodbus.client import AsyncModbusSerialClient
    from pymodbus.framer import FramerType

    raw = AsyncModbusSerialClient(pty, framer=FramerType.RTU, baudrate=115200, bytesize=8, parity="N", stopbits=1,
                                  timeout=1.0, retries=0, reconnect_delay=0)
    assert await raw.connect()
    try:
        yield Client(raw)
    finally:
        raw.close()


def run(pty: str, body: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        async with client(pty) as c:
            await body(c)

    asyncio.run(main())


def test_power_on_identity_and_state(launcher: str) -> None:
    async def body(c: Client) -> None:
        ir = await c.inputs()
        assert ir[Input.IDENT_MAGIC] == IDENT_MAGIC and ir[Input.REGMAP_VERSION] == REGMAP_VERSION
        assert ir[Input.FW_VERSION] == 0x0100
        assert ir[Input.STATE] == State.SAFE and ir[Input.STATUS] == 0
        assert ir[Input.ROUNDS_REMAINING] == 4 and ir[Input.LAST_FIRE_SEQ] == 0 and ir[Input.LAUNCH_COUNT] == 0
        assert unpack_ascii(ir[Input.FW_NAME:Input.FW_NAME + 8]) == "hil-launcher-avr"
        assert unpack_ascii(ir[Input.BUILD_ID:Input.BUILD_ID + 4]).rstrip("+") == head_commit()
        t0 = unpack_u64(ir[Input.BOARD_TIME_US:Input.BOARD_TIME_US + 4])
        t1 = unpack_u64(await c.inputs(Input.BOARD_TIME_US, 4))
        assert 0 < t0 < t1  # the board's clock, sampled when each read is served
        assert await c.holding() == [0, 0, 500, 0, 0, 0, 0, 0, 0, 0, 2000, 4]

    run(launcher, body)


def mbpoll(*args: str) -> list[int]:
    tool = require_tool("mbpoll", "mbpoll")
    out = subprocess.run([tool, "-m", "rtu", "-a", "1", "-b", "115200", "-P", "none", "-0", "-1", *args],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    # "[3]: 45086 (-20450)": mbpoll adds the signed reading of a register above 32767
    return [int(line.split(":")[1].split()[0]) for line in out.stdout.splitlines() if line.startswith("[")]


def test_mbpoll_reads_and_writes_the_registers(launcher_board: SimavrBoard) -> None:
    launcher = launcher_board.pty
    # mbpoll is libmodbus, written independently of pymodbus and of the firmware
    assert mbpoll("-t", "3", "-r", "0", "-c", "10", launcher) == [IDENT_MAGIC, 2, 0x0100, 0, 0, 4, 0, 0, 0, 0]
    mbpoll("-t", "4", "-r", str(Holding.WATCHDOG_MS), launcher, "1234")
    mbpoll("-t", "4", "-r", str(Holding.FIRE_AZ_CDEG), launcher, "9000", "4500")
    assert mbpoll("-t", "4", "-r", "0", "-c", "12", launcher) == [0, 0, 1234, 0, 9000, 4500, 0, 0, 0, 0, 2000, 4]
    # the worked example of docs/PROTOCOLS.md, check word computed by hand, fired by libmodbus at the firmware
    mbpoll("-t", "4", "-r", str(Holding.ARM_KEY), launcher, str(ARM_KEY))
    mbpoll("-t", "4", "-r", str(Holding.FIRE_TRACK), launcher, "12", "18000", "500", "8000", "1250", "3", "16083")
    assert mbpoll("-t", "3", "-r", str(Input.LAST_FIRE_SEQ), "-c", "3", launcher) == [3, 1, 12]
    assert mbpoll("-t", "3", "-r", str(Input.LAST_CMD_SEQ), "-c", "7", launcher) == [3, 0, 0, 18000, 500, 8000, 1250]
    launch_us = unpack_u64(mbpoll("-t", "3", "-r", str(Input.LAST_LAUNCH_T_US), "-c", "4", launcher))
    assert board_launches(launcher_board, 1) == [Launch(3, 12, 18000, 500, 8000, 1250, launch_us)]


def test_exceptions_change_nothing(launcher: str) -> None:
    async def body(c: Client) -> None:
        r = await c.raw.read_coils(0, count=1, device_id=1)
        assert r.isError() and r.exception_code == 1  # only 3, 4, 6 and 16 are served
        r = await c.raw.read_holding_registers(5, count=10, device_id=1)
        assert r.isError() and r.exception_code == 2  # past the end of the map
        assert await c.write(Holding.WATCHDOG_MS, 10) == 3  # below 50 ms
        # azimuth out of range in a whole, checked block: nothing applies
        assert await c.write(Holding.FIRE_TRACK, *fire_block(17, 40000, 0, 100, 100, 5)) == 3
        assert await c.holding() == [0, 0, 500, 0, 0, 0, 0, 0, 0, 0, 2000, 4]
        assert (await c.inputs())[Input.REJECT_COUNT] == 0

    run(launcher, body)


def test_arm_fire_duplicate_reload_and_safe(launcher_board: SimavrBoard) -> None:
    async def body(c: Client) -> None:
        assert await c.write(Holding.WATCHDOG_MS, 10_000) == 0
        assert await c.write(Holding.RELOAD_MS, 300) == 0
        await c.fire(17, 1)
        ir = await c.inputs()
        assert ir[Input.LAST_REJECT] == Reject.NOT_ARMED and ir[Input.LAUNCH_COUNT] == 0

        assert await c.write(Holding.ARM_KEY, ARM_KEY) == 0
        ir = await c.inputs()
        assert ir[Input.STATE] == State.ARMED and ir[Input.STATUS] & StatusBit.READY
        await c.fire(17, 2)
        ir = await c.inputs()
        assert ir[Input.LAUNCH_COUNT] == 1 and ir[Input.LAST_FIRE_SEQ] == 2 and ir[Input.LAST_FIRE_TRACK] == 17
        assert ir[Input.ROUNDS_REMAINING] == 3 and ir[Input.STATUS] & StatusBit.RELOADING
        launch_t = unpack_u64(ir[Input.LAST_LAUNCH_T_US:Input.LAST_LAUNCH_T_US + 4])
        assert launch_t == unpack_u64(ir[Input.LAST_CMD_T_US:Input.LAST_CMD_T_US + 4]) > 0

        await c.fire(17, 2)  # the same command again, as a retry would send it: never a second launch
        ir = await c.inputs()
        assert ir[Input.LAUNCH_COUNT] == 1 and ir[Input.LAST_REJECT] == Reject.DUPLICATE_SEQ
        assert ir[Input.REJECT_COUNT] == 2
        await c.fire(18, 3)  # a new command while reloading
        assert (await c.inputs())[Input.LAST_REJECT] == Reject.RELOADING

        ir = await c.until(lambda r: bool(r[Input.STATUS] & StatusBit.READY))
        assert ir[Input.STATUS] & StatusBit.READY
        assert await c.write(Holding.FIRE_SEQ, 4) == 0  # FC 6 on FIRE_SEQ: not a whole block, never a fire
        ir = await c.inputs()
        assert ir[Input.LAST_REJECT] == Reject.PARTIAL_FIRE and ir[Input.LAUNCH_COUNT] == 1
        await c.fire(18, 4, check_ok=False)  # a flipped bit in the check word
        ir = await c.inputs()
        assert ir[Input.LAST_REJECT] == Reject.BAD_CHECK and ir[Input.BAD_CHECK_COUNT] == 2
        assert ir[Input.LAUNCH_COUNT] == 1 and ir[Input.LAST_CMD_SEQ] == 3  # the bad command's seq not believed
        await c.fire(18, 4)
        ir = await c.inputs()
        assert ir[Input.LAUNCH_COUNT] == 2 and ir[Input.ROUNDS_REMAINING] == 2 and ir[Input.LAST_FIRE_SEQ] == 4
        assert ir[Input.LAST_FIRE_AZ_CDEG:Input.LAST_FIRE_TGO_CS + 1] == [4500, 1200, 15_000, 2345]
        assert unpack_u64(ir[Input.LAST_LAUNCH_T_US:Input.LAST_LAUNCH_T_US + 4]) > launch_t

        assert await c.write(Holding.ROUNDS_LOADED, 8) == 0  # answered, but refused while armed
        ir = await c.inputs()
        assert ir[Input.LAST_REJECT] == Reject.NOT_SAFE and ir[Input.ROUNDS_REMAINING] == 2
        assert await c.write(Holding.ARM_KEY, 0x1234) == 0  # a wrong key makes SAFE and is counted
        ir = await c.inputs()
        assert ir[Input.STATE] == State.SAFE and ir[Input.LAST_REJECT] == Reject.BAD_KEY
        assert await c.write(Holding.ROUNDS_LOADED, 8) == 0
        assert (await c.inputs())[Input.ROUNDS_REMAINING] == 8

    run(launcher_board.pty, body)
    # the bench saw the two launches, and none of the refused commands
    assert [(g.seq, g.track) for g in board_launches(launcher_board, 3)] == [(2, 17), (4, 18)]


def test_watchdog_returns_an_unfed_launcher_to_safe(launcher: str) -> None:
    async def body(c: Client) -> None:
        assert await c.write(Holding.WATCHDOG_MS, 400) == 0
        assert await c.write(Holding.ARM_KEY, ARM_KEY) == 0
        for beat in range(10):  # fed every ~50 ms for ~0.5 s: stays armed past the 400 ms period
            assert await c.write(Holding.HEARTBEAT, beat) == 0
            await asyncio.sleep(0.05)
        assert (await c.inputs())[Input.STATE] == State.ARMED
        ir = await c.until(lambda r: r[Input.STATE] == State.SAFE)
        assert ir[Input.STATE] == State.SAFE and ir[Input.STATUS] & StatusBit.WATCHDOG_TRIPPED
        assert ir[Input.WATCHDOG_TRIPS] == 1
        await c.fire(5, 9)
        assert (await c.inputs())[Input.LAST_REJECT] == Reject.NOT_ARMED
        assert await c.write(Holding.ARM_KEY, ARM_KEY) == 0  # arming again clears the latch
        ir = await c.inputs()
        assert ir[Input.STATE] == State.ARMED and not ir[Input.STATUS] & StatusBit.WATCHDOG_TRIPPED
        assert ir[Input.WATCHDOG_TRIPS] == 1

    run(launcher, body)


def exchange(fd: int, request: bytes, timeout_s: float = 0.3) -> bytes:
    """Write one raw request and gather what comes back until the line is quiet for 20 ms."""
    os.write(fd, request)
    data = b""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.02 if data else end - time.monotonic())
        if not ready:
            if data:
                break
            continue
        data += os.read(fd, 512)
    return data


def test_rtu_bytes_pass_tshark_and_a_corrupt_request_gets_silence(launcher: str, tmp_path: Path) -> None:
    port = serial.Serial(launcher, 115200, timeout=0)
    try:
        fd = port.fileno()
        read = modbus_rtu.encode_adu(1, modbus_rtu.read_request(4, Input.IDENT_MAGIC, 6))
        write = modbus_rtu.encode_adu(1, modbus_rtu.write_multiple_request(Holding.FIRE_AZ_CDEG, [100, 200]))
        illegal = modbus_rtu.encode_adu(1, bytes([0x2B, 0x0E, 0x01, 0x00]))
        answers = [exchange(fd, read), exchange(fd, write), exchange(fd, illegal)]
        assert modbus_rtu.parse_read_response(4, 6, modbus_rtu.decode_adu(answers[0])[1])[:3] == [
            IDENT_MAGIC, REGMAP_VERSION, 0x0100]
        assert modbus_rtu.decode_adu(answers[2]) == (1, bytes([0xAB, 0x01]))
        corrupt = bytearray(read)
        corrupt[-1] ^= 0xFF
        assert exchange(fd, bytes(corrupt)) == b""  # a slave never answers a frame with a bad CRC
        assert exchange(fd, modbus_rtu.encode_adu(7, modbus_rtu.read_request(4, 0, 1))) == b""  # nor another id
    finally:
        port.close()
    path = tmp_path / "launcher.pcapng"
    with Recorder(path) as rec:
        for i, (request, answer) in enumerate(zip((read, write, illegal), answers, strict=True)):
            rec.record("simavr-launcher", "tx", request, 1000 * i, "modbus_rtu")
            rec.record("simavr-launcher", "rx", answer, 1000 * i + 500, "modbus_rtu")
    tshark = require_tool("tshark", "tshark")
    out = subprocess.run([tshark, "-r", str(path), "-d", "udp.port==5020,mbrtu", "-o", "mbrtu.crc_verification:TRUE",
                          "-T", "fields", "-e", "modbus.func_code", "-e", "mbrtu.crc16.status"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split("\n")
    rows = [line.split("\t") for line in out if line]
    assert [r[0] for r in rows] == ["4", "4", "16", "16", "43", "43"]
    assert all(r[1] == "1" for r in rows), rows  # 1: tshark found every CRC good, the firmware's included


def test_silence_frames_requests_and_broadcast_writes_are_silent(launcher: str) -> None:
    port = serial.Serial(launcher, 115200, timeout=0)
    try:
        fd = port.fileno()
        read = modbus_rtu.encode_adu(1, modbus_rtu.read_request(3, Holding.WATCHDOG_MS, 1))
        # a pause longer than t3.5 (1.75 ms) in the middle splits a request into two broken frames: no answer
        os.write(fd, read[:4])
        time.sleep(0.02)
        assert exchange(fd, read[4:]) == b""
        # a broadcast (id 0) write is applied by every slave and answered by none
        assert exchange(fd, modbus_rtu.encode_adu(0, modbus_rtu.write_single_request(Holding.WATCHDOG_MS, 777))) == b""
        answer = exchange(fd, read)
        assert modbus_rtu.parse_read_response(3, 1, modbus_rtu.decode_adu(answer)[1]) == [777]
    finally:
        port.close()


def test_launcher_link_fires_the_firmware_with_its_checked_block(launcher: str) -> None:
    import math

    from hil.drivers.launcher_link import LauncherLink

    async def main() -> None:
        link = LauncherLink.from_url(launcher, timeout_s=0.5)
        try:
            await link.connect()
            assert (await link.identify()).name == "hil-launcher-avr"
            await link.configure(watchdog_ms=5000, reload_ms=0, rounds=2)
            await link.arm()
            result = await link.fire(70_001, math.radians(123.45), math.radians(6.5), 23_456.0, 31.25)
            assert result.accepted and not result.unconfirmed, result.reason
            record = await link.read_record()
            assert record.last_aim == (12345, 650, 23_456, 3125) and record.last_cmd_seq == result.seq
            assert record.bad_check_count == 0
            assert link.status is not None and link.status.last_fire_track == 70_001 & 0xFFFF
            settled = await link.reconcile()  # nothing unconfirmed: the board's state only
            assert settled.seq == 0 and not settled.launched
            assert link.counters.late_replies == link.counters.discarded_bytes == 0
        finally:
            link.close()

    asyncio.run(main())


def test_the_firmware_gets_a_fire_abandoned_before_its_answer(launcher: str) -> None:
    """The firmware ends a request at 1.75 ms of silence: a request written while an abandoned fire's answer is
    still due would run into it and make one frame with a bad check, and both would be dropped. The link waits:
    every abandoned fire launched, nothing timed out, nothing failed the board's check."""
    from hil.drivers.launcher_link import LauncherLink

    async def main() -> None:
        link = LauncherLink.from_url(launcher, timeout_s=0.5)
        try:
            await link.connect()
            await link.configure(watchdog_ms=5000, reload_ms=0, rounds=8)
            await link.arm()
            assert await abandon_fires(link, 6) == [True] * 6
            assert link.counters.timeouts == link.counters.read_retries == 0
            record = await link.read_record()
            assert record.bad_check_count == 0
        finally:
            link.close()

    asyncio.run(main())
