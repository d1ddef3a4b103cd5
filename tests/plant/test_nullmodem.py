"""The mock rig's null-modem: two real tty paths, bytes both ways, paced like a wire when asked."""

from __future__ import annotations

import time

import serial

from hil.procutil import Child


def test_bytes_cross_both_ways_and_the_child_stops() -> None:
    cable = Child.python("hil.plant.nullmodem", [], "cable")
    try:
        a = serial.Serial(cable.info["a"], timeout=2)
        b = serial.Serial(cable.info["b"], timeout=2)
        a.write(b"\x7e\x00ping\x7d")
        assert b.read(7) == b"\x7e\x00ping\x7d"
        b.write(bytes(range(256)))
        assert a.read(256) == bytes(range(256))
    finally:
        cable.stop()
    assert not cable.alive()


def test_paced_wire_takes_the_time_of_its_baud_rate() -> None:
    cable = Child.python("hil.plant.nullmodem", ["--baud", "9600"], "cable")
    try:
        a = serial.Serial(cable.info["a"], timeout=3)
        b = serial.Serial(cable.info["b"], timeout=3)
        t0 = time.monotonic()
        a.write(b"x" * 480)  # 480 bytes x 10 bits at 9600 baud = 0.5 s on a wire
        assert b.read(480) == b"x" * 480
        # a lower bound only: pacing never delivers early (a pty alone would take microseconds)
        assert time.monotonic() - t0 >= 0.45
    finally:
        cable.stop()
