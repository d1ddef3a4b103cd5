"""The launcher's safety state machine (docs/PROTOCOLS.md §4) in virtual time, through its Modbus requests."""

from __future__ import annotations

import itertools
import json
import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.drivers import modbus_rtu
from hil.drivers.registers import (
    ARM_KEY,
    FW_NAME_REGS,
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
from hil.emulators.launcher import Launch, LauncherModel, LaunchEvents, StateChange


class Board:
    """A model on a clock the test moves, spoken to in Modbus PDUs as a client would."""

    def __init__(self, rounds: int = 4, reload_ms: int = 2000) -> None:
        self.t_us = 1_000_000
        self.model = LauncherModel(clock_us=lambda: self.t_us, rounds=rounds, reload_ms=reload_ms)

    def at_ms(self, ms: float) -> Board:
        self.t_us = 1_000_000 + round(ms * 1000)
        return self

    def write(self, address: int, *values: int) -> bytes:
        if len(values) == 1:
            return self.model.handle_pdu(modbus_rtu.write_single_request(address, values[0]))
        return self.model.handle_pdu(modbus_rtu.write_multiple_request(address, list(values)))

    def inputs(self) -> list[int]:
        return modbus_rtu.parse_read_response(4, INPUT_COUNT, self.model.handle_pdu(
            modbus_rtu.read_request(4, 0, INPUT_COUNT)))

    def holding(self) -> list[int]:
        return modbus_rtu.parse_read_response(3, HOLDING_COUNT, self.model.handle_pdu(
            modbus_rtu.read_request(3, 0, HOLDING_COUNT)))

    def state(self) -> State:
        return State(self.inputs()[Input.STATE])

    def status(self) -> StatusBit:
        return StatusBit(self.inputs()[Input.STATUS])

    def fire(self, seq: int, track: int = 7, az: int = 4500, el: int = 1000, range_m: int = 12_000,
             tgo_cs: int = 2150) -> None:
        answer = self.write(Holding.FIRE_TRACK, *fire_block(track, az, el, range_m, tgo_cs, seq))
        assert answer == modbus_rtu.write_response(modbus_rtu.Request(16, Holding.FIRE_TRACK, 7)), answer.hex()

    def arm(self) -> None:
        self.write(Holding.ARM_KEY, ARM_KEY)
        assert self.state() == State.ARMED


def test_power_on_is_safe_with_the_documented_defaults() -> None:
    b = Board()
    regs = b.inputs()
    assert regs[Input.IDENT_MAGIC] == IDENT_MAGIC and regs[Input.REGMAP_VERSION] == REGMAP_VERSION == 2
    assert regs[Input.STATE] == State.SAFE and regs[Input.STATUS] == 0
    assert regs[Input.ROUNDS_REMAINING] == 4 and regs[Input.LAST_FIRE_SEQ] == 0
    assert unpack_u64(regs[12:16]) == b.t_us
    assert unpack_ascii(regs[Input.FW_NAME:Input.FW_NAME + FW_NAME_REGS]) == "hil-launcher-py"
    hr = b.holding()
    assert (hr[Holding.WATCHDOG_MS], hr[Holding.RELOAD_MS], hr[Holding.ROUNDS_LOADED]) == (500, 2000, 4)


def test_arm_key_arms_only_with_the_key_and_any_other_value_makes_safe() -> None:
    b = Board()
    b.write(Holding.ARM_KEY, 0x1234)
    regs = b.inputs()
    assert regs[Input.STATE] == State.SAFE
    assert (regs[Input.LAST_REJECT], regs[Input.REJECT_COUNT]) == (Reject.BAD_KEY, 1)
    b.arm()
    assert StatusBit.ARMED in b.status() and StatusBit.READY in b.status()
    b.write(Holding.ARM_KEY, 0)
    assert b.state() == State.SAFE and b.inputs()[Input.REJECT_COUNT] == 1  # 0 is a clean disarm
    b.arm()
    b.write(Holding.ARM_KEY, 0xA55B)
    assert b.state() == State.SAFE and b.inputs()[Input.REJECT_COUNT] == 2


def test_watchdog_returns_to_safe_and_latches_until_the_next_arm() -> None:
    b = Board()
    b.arm()  # at 0 ms; the watchdog is 500 ms
    b.at_ms(400).write(Holding.HEARTBEAT, 1)
    assert b.at_ms(899).state() == State.ARMED  # 499 ms since the heartbeat
    assert b.at_ms(901).state() == State.SAFE
    assert b.status() == StatusBit.WATCHDOG_TRIPPED and b.inputs()[Input.WATCHDOG_TRIPS] == 1
    b.at_ms(950).fire(1)
    assert b.inputs()[Input.LAST_REJECT] == Reject.NOT_ARMED and not b.model.launches
    assert StatusBit.WATCHDOG_TRIPPED in b.at_ms(5000).status()
    b.arm()
    assert StatusBit.WATCHDOG_TRIPPED not in b.status()


def test_a_longer_watchdog_is_honoured() -> None:
    b = Board()
    b.write(Holding.WATCHDOG_MS, 2000)
    b.arm()
    assert b.at_ms(1900).state() == State.ARMED
    assert b.at_ms(2100).state() == State.SAFE


def test_fire_launches_once_then_reloads() -> None:
    b = Board(reload_ms=1000)
    b.arm()
    b.at_ms(10).fire(5, track=42)
    regs = b.inputs()
    assert regs[Input.LAST_FIRE_SEQ] == 5 and regs[Input.LAST_FIRE_TRACK] == 42
    assert regs[Input.ROUNDS_REMAINING] == 3 and regs[Input.LAUNCH_COUNT] == 1
    assert unpack_u64(regs[16:20]) == b.t_us == unpack_u64(regs[20:24])
    assert b.model.launches[0] == Launch(5, 42, 4500, 1000, 12_000, 2150, b.t_us)
    assert regs[Input.LAST_FIRE_AZ_CDEG:Input.LAST_FIRE_TGO_CS + 1] == [4500, 1000, 12_000, 2150]
    assert regs[Input.LAST_CMD_SEQ] == 5
    assert b.status() == StatusBit.ARMED | StatusBit.RELOADING
    b.at_ms(500).write(Holding.HEARTBEAT, 1)
    b.at_ms(600).fire(6)
    assert b.inputs()[Input.LAST_REJECT] == Reject.RELOADING and len(b.model.launches) == 1
    assert unpack_u64(b.inputs()[20:24]) == b.t_us  # a refused command still stamps LAST_CMD_T_US
    b.at_ms(900).write(Holding.HEARTBEAT, 2)
    b.at_ms(1010).write(Holding.HEARTBEAT, 3)
    assert b.status() == StatusBit.ARMED | StatusBit.READY
    b.fire(6)
    assert len(b.model.launches) == 2


def test_a_duplicate_sequence_number_never_fires_twice() -> None:
    b = Board(reload_ms=0)
    b.arm()
    b.fire(9)
    b.fire(9)  # a client retrying the same command
    regs = b.inputs()
    assert len(b.model.launches) == 1 and regs[Input.ROUNDS_REMAINING] == 3
    assert regs[Input.LAST_REJECT] == Reject.DUPLICATE_SEQ and regs[Input.REJECT_COUNT] == 1
    b.fire(10)
    assert len(b.model.launches) == 2


def test_zero_sequence_never_fires() -> None:
    b = Board(reload_ms=0)
    b.arm()
    b.fire(0)
    assert not b.model.launches and b.inputs()[Input.LAST_REJECT] == Reject.ZERO_SEQ


def test_rounds_run_out() -> None:
    b = Board(reload_ms=0, rounds=2)
    b.arm()
    for seq in (1, 2, 3):
        b.fire(seq)
    assert len(b.model.launches) == 2 and b.inputs()[Input.LAST_REJECT] == Reject.NO_ROUNDS
    assert b.status() == StatusBit.ARMED  # armed but not READY


def test_rounds_load_only_in_safe() -> None:
    b = Board()
    b.arm()
    b.write(Holding.ROUNDS_LOADED, 9)
    regs = b.inputs()
    assert regs[Input.ROUNDS_REMAINING] == 4 and regs[Input.LAST_REJECT] == Reject.NOT_SAFE
    assert b.holding()[Holding.ROUNDS_LOADED] == 4
    b.write(Holding.ARM_KEY, 0)
    b.write(Holding.ROUNDS_LOADED, 9)
    assert b.inputs()[Input.ROUNDS_REMAINING] == 9


def test_fault_refuses_arm_and_fire() -> None:
    b = Board()
    b.arm()
    b.model.inject_fault(7)
    regs = b.inputs()
    assert regs[Input.STATE] == State.FAULT and regs[Input.FAULT_CODE] == 7
    assert regs[Input.STATUS] & StatusBit.FAULT and not regs[Input.STATUS] & StatusBit.ARMED
    b.write(Holding.ARM_KEY, ARM_KEY)
    assert b.state() == State.FAULT and b.inputs()[Input.LAST_REJECT] == Reject.FAULT
    b.fire(1)
    assert not b.model.launches


@pytest.mark.parametrize(("pdu", "answer"), [
    (bytes([1, 0, 0, 0, 1]), "8101"),  # read coils: not served
    (bytes([43, 14, 1, 0]), "ab01"),  # device identification: not served
    (modbus_rtu.read_request(3, 11, 2), "8302"),  # runs past the holding map
    (modbus_rtu.read_request(4, 43, 1), "8402"),
    (modbus_rtu.write_single_request(12, 1), "8602"),
    (modbus_rtu.read_request(4, 0, 0), "8403"),  # a count of zero
    (modbus_rtu.read_request(4, 0, 126), "8403"),
    (modbus_rtu.write_single_request(Holding.WATCHDOG_MS, 20), "8603"),
    (modbus_rtu.write_single_request(Holding.FIRE_AZ_CDEG, 36000), "8603"),
    (modbus_rtu.write_single_request(Holding.RELOAD_MS, 60001), "8603"),
])
def test_modbus_exceptions(pdu: bytes, answer: str) -> None:
    b = Board()
    before = b.holding()
    assert b.model.handle_pdu(pdu).hex() == answer
    assert b.holding() == before


def test_a_write_with_one_bad_value_changes_nothing() -> None:
    b = Board(reload_ms=0)
    b.arm()
    assert b.write(Holding.FIRE_TRACK, *fire_block(1, 36000, 100, 500, 100, 5)).hex() == "9003"
    assert not b.model.launches and b.holding()[Holding.FIRE_TRACK] == 0


def test_a_fire_whose_check_fails_is_refused_counted_and_changes_nothing() -> None:
    b = Board(reload_ms=0)
    b.arm()
    good = fire_block(9, 4500, 1000, 8000, 1200, 3)
    for i in range(6):  # one bit flipped in any register the check covers, or in the check itself
        bad = list(good)
        bad[i] ^= 1 << (i + 3)
        assert b.write(Holding.FIRE_TRACK, *bad) == modbus_rtu.write_response(modbus_rtu.Request(16, 3, 7))
    bad = [*good[:-1], good[-1] ^ 0x8000]
    b.write(Holding.FIRE_TRACK, *bad)
    regs = b.inputs()
    assert not b.model.launches and regs[Input.LAUNCH_COUNT] == 0
    assert (regs[Input.LAST_REJECT], regs[Input.REJECT_COUNT], regs[Input.BAD_CHECK_COUNT]) == (Reject.BAD_CHECK, 7, 7)
    assert regs[Input.LAST_CMD_SEQ] == 0  # a corrupted command's seq is not believed
    assert b.holding()[Holding.FIRE_TRACK:Holding.FIRE_CHECK + 1] == [0] * 7
    b.fire(3, track=9)
    assert len(b.model.launches) == 1 and b.inputs()[Input.BAD_CHECK_COUNT] == 7


@pytest.mark.parametrize(("address", "values"), [
    (Holding.FIRE_SEQ, [5]),  # FC 6 on FIRE_SEQ, as the old map fired
    (Holding.FIRE_CHECK, [0x1234]),
    (Holding.FIRE_TRACK, fire_block(1, 0, 0, 0, 0, 5)[:-1]),  # the block without its check
    (Holding.FIRE_AZ_CDEG, [0, 0, 0, 0, 5, 0]),
    (Holding.HEARTBEAT, [1, ARM_KEY, 500, *fire_block(1, 0, 0, 0, 0, 5)]),  # the block inside a longer write
])
def test_a_write_touching_fire_seq_that_is_not_the_whole_block_is_refused(address: int, values: list[int]) -> None:
    b = Board(reload_ms=0)
    b.arm()
    before = b.holding()
    b.write(address, *values)
    regs = b.inputs()
    assert not b.model.launches and regs[Input.LAST_REJECT] == Reject.PARTIAL_FIRE
    assert regs[Input.BAD_CHECK_COUNT] == 1 and b.holding() == before


def test_on_launch_reports_each_launch_with_its_aim_in_si_units() -> None:
    seen: list[Launch] = []
    b = Board(reload_ms=0)
    b.model.on_launch = seen.append
    b.arm()
    b.fire(4, track=70000 & 0xFFFF, az=27000, el=4500, range_m=65535, tgo_cs=65535)
    b.fire(4)  # refused: no event
    assert len(seen) == 1
    event = seen[0].to_json()
    assert event["seq"] == 4 and event["track"] == 70000 & 0xFFFF and event["t_us"] == b.t_us
    assert abs(event["azimuth_rad"] - 3 * 3.141592653589793 / 2) < 1e-12
    assert abs(event["elevation_rad"] - 3.141592653589793 / 4) < 1e-12
    assert (event["range_m"], event["tgo_s"]) == (65535, 655.35)
    assert Launch.from_json(event) == seen[0]


def test_rtu_frames_for_another_device_or_with_a_bad_crc_get_no_answer() -> None:
    b = Board()
    adu = modbus_rtu.encode_adu(1, modbus_rtu.read_request(4, 0, 1))
    assert b.model.handle_rtu(adu, 1) == modbus_rtu.encode_adu(1, bytes.fromhex("0402484c"))
    assert b.model.handle_rtu(adu, 2) is None
    assert b.model.handle_rtu(adu[:-1] + bytes([adu[-1] ^ 1]), 1) is None
    b.model.responding = False
    assert b.model.handle_rtu(adu, 1) is None


@given(st.binary(max_size=260))
def test_any_request_gets_an_answer_and_never_a_crash(pdu: bytes) -> None:
    b = Board()
    answer = b.model.handle_pdu(pdu)
    assert answer
    if answer[0] & 0x80:
        assert len(answer) == 2 and answer[1] in (1, 2, 3)
    assert b.model.state in (State.SAFE, State.ARMED)


@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 0xFFFF), st.integers(0, 3000), st.booleans(),
                          st.integers(0, 0xFFFF)), max_size=40))
def test_no_sequence_of_writes_launches_without_arming_a_good_check_or_twice_for_one_seq(
        writes: list[tuple[int, int, int, bool, int]]) -> None:
    b = Board(reload_ms=0, rounds=100)
    t = 0
    checked: set[int] = set()  # seqs sent in a whole block with a good check
    for address, value, dt, as_block, check in writes:
        t += dt
        b.at_ms(t)
        if as_block:  # a fire block whose check is right only when the drawn check happens to be
            block = fire_block(address, 100, 100, 1000, 100, value)
            block[-1] = check if check % 3 else block[-1]
            if block[-1] == fire_block(address, 100, 100, 1000, 100, value)[-1]:
                checked.add(value)
            b.model.handle_pdu(modbus_rtu.write_multiple_request(Holding.FIRE_TRACK, block))
        else:
            b.model.handle_pdu(struct.pack(">BHH", 6, address, value))
    seqs = [launch.seq for launch in b.model.launches]
    assert 0 not in seqs and set(seqs) <= checked
    assert all(a != b_ for a, b_ in itertools.pairwise(seqs))
    if b.model.launches:
        assert any(a == Holding.ARM_KEY and v == ARM_KEY and not blk for a, v, _, blk, _ in writes)


def test_each_change_of_the_safety_state_is_told_with_its_board_time_and_cause() -> None:
    b = Board()
    told: list[StateChange] = []
    b.model.on_state = told.append
    b.arm()  # at 0 ms
    b.at_ms(400).write(Holding.HEARTBEAT, 1)
    b.at_ms(1500).state()  # the trip is seen late; it happened when the period ran out, 500 ms after the heartbeat
    b.at_ms(1600).arm()
    b.at_ms(1700).write(Holding.ARM_KEY, 0)
    b.at_ms(1800).model.inject_fault(3)
    b.at_ms(1900).model.clear_fault()
    b.at_ms(2000).write(Holding.ARM_KEY, 0)  # SAFE already: no change, nothing told
    t0 = 1_000_000
    assert told == [StateChange("ARMED", t0, "arm key"), StateChange("SAFE", t0 + 900_000, "watchdog"),
                    StateChange("ARMED", t0 + 1_600_000, "arm key"), StateChange("SAFE", t0 + 1_700_000, "disarm"),
                    StateChange("FAULT", t0 + 1_800_000, "fault"), StateChange("SAFE", t0 + 1_900_000, "fault cleared")]


def test_state_lines_are_read_back_beside_the_launch_lines() -> None:
    r, w = os.pipe()
    try:
        events = LaunchEvents(r)
        launch = Launch(5, 7, 4500, 1000, 12_000, 2150, 42)
        lines = [{"launch": launch.to_json()}, {"state": StateChange("SAFE", 9, "watchdog").to_json()}, {"other": 1}]
        os.write(w, "".join(json.dumps(line) + "\n" for line in lines).encode())
        assert events.poll() == [launch]
        assert events.states == [StateChange("SAFE", 9, "watchdog")] and events.ignored == 1
    finally:
        os.close(r)
        os.close(w)
