"""Round trips to the AVR firmware under simavr: a Modbus read of 10 input registers and a radar time sync.

Run `pytest tests/bench/bench_simavr.py --benchmark-enable`; with --benchmark-disable each case runs once and
checks the answer. Both are dominated by the simulated 115200 baud wire (simavr times a byte as 11 bits,
95 us) and, for Modbus, the 1.75 ms of silence that ends an RTU request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import serial

from hil.drivers.framing import (
    FrameDecoder,
    FrameType,
    decode_time_sync_resp,
    encode_frame,
    encode_time_sync_req,
)
from hil.drivers.registers import IDENT_MAGIC
from hil.plant.firmware import SimavrBoard, build_firmware
from tests.helpers import require_tool

pytestmark = pytest.mark.timeout(120)


def _board(target: str) -> SimavrBoard:
    require_tool("avr-gcc", "gcc-avr avr-libc")
    require_tool("simavr", "simavr libsimavr-dev libelf-dev")
    return SimavrBoard(build_firmware(target))


@pytest.fixture
def modbus_client() -> Iterator[tuple[asyncio.AbstractEventLoop, Any]]:
    from pymodbus.client import AsyncModbusSerialClient
    from pymodbus.framer import FramerType

    with _board("launcher") as board:
        loop = asyncio.new_event_loop()

        async def connect() -> Any:  # pymodbus builds its transport on the running loop
            c = AsyncModbusSerialClient(board.pty, framer=FramerType.RTU, baudrate=115200, bytesize=8, parity="N",
                                        stopbits=1, timeout=1.0, retries=0, reconnect_delay=0)
            assert await c.connect()
            return c

        client = loop.run_until_complete(connect())
        try:
            yield loop, client
        finally:
            client.close()
            loop.close()


def test_simavr_modbus_read_round_trip(benchmark: Any, modbus_client: tuple[asyncio.AbstractEventLoop, Any]) -> None:
    loop, client = modbus_client

    def read() -> list[int]:
        r = loop.run_until_complete(client.read_input_registers(0, count=10, device_id=1))
        assert not r.isError()
        return list(r.registers)

    assert benchmark(read)[0] == IDENT_MAGIC


@pytest.fixture
def radar_port() -> Iterator[serial.Serial]:
    with _board("radar") as board:
        port = serial.Serial(board.pty, 115200, timeout=0)
        try:
            yield port
        finally:
            port.close()


def test_simavr_time_sync_round_trip(benchmark: Any, radar_port: serial.Serial) -> None:
    decoder = FrameDecoder("bench")
    token = 0

    def sync() -> int:
        """One TIME_SYNC exchange; its round trip less the board's turnaround (what clock sync sees), in us."""
        nonlocal token
        token += 1
        h0 = time.monotonic_ns()
        radar_port.write(encode_frame(FrameType.TIME_SYNC_REQ, token, 0, encode_time_sync_req(token)))
        while True:
            data = radar_port.read(256)
            for f in decoder.feed(data):
                if f.ftype == FrameType.TIME_SYNC_RESP:
                    got, b_rx, b_tx = decode_time_sync_resp(f.payload)
                    if got == token:
                        return (time.monotonic_ns() - h0) // 1000 - (b_tx - b_rx)

    assert sync() > 0
    benchmark(sync)
