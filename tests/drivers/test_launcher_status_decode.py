"""LauncherStatus decoding (the link's fast path) against a field-by-field reading of the register map."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.drivers.launcher_link import LauncherStatus
from hil.drivers.modbus_rtu import ModbusFrameError
from hil.drivers.registers import IDENT_MAGIC, REGMAP_VERSION, STATUS_REGS, Input, Reject, State, StatusBit, unpack_u64


def reference(regs: list[int], host_ns: int) -> LauncherStatus:
    """The status as the register map reads, one named field at a time, through the dataclass' own __init__."""
    bits = StatusBit(regs[Input.STATUS] & 0x1F)
    state = State(regs[Input.STATE])
    try:
        reject: Reject | int = Reject(regs[Input.LAST_REJECT])
    except ValueError:
        reject = regs[Input.LAST_REJECT]

    def u64(at: int) -> int:
        return unpack_u64(regs[at:at + 4])

    return LauncherStatus(
        state=state, armed=StatusBit.ARMED in bits, ready=StatusBit.READY in bits,
        reloading=StatusBit.RELOADING in bits, watchdog_tripped=StatusBit.WATCHDOG_TRIPPED in bits,
        fault=StatusBit.FAULT in bits or state == State.FAULT, rounds=regs[Input.ROUNDS_REMAINING],
        last_fire_seq=regs[Input.LAST_FIRE_SEQ], launch_count=regs[Input.LAUNCH_COUNT],
        last_fire_track=regs[Input.LAST_FIRE_TRACK], last_reject=reject, reject_count=regs[Input.REJECT_COUNT],
        fault_code=regs[Input.FAULT_CODE], board_time_us=u64(Input.BOARD_TIME_US),
        last_launch_board_us=u64(Input.LAST_LAUNCH_T_US), last_cmd_board_us=u64(Input.LAST_CMD_T_US),
        host_ns=host_ns)


word = st.integers(0, 0xFFFF)


@given(rest=st.lists(word, min_size=STATUS_REGS - 5, max_size=STATUS_REGS - 5 + 7),
       state=st.sampled_from(list(State)), fw=word, bits=word, host_ns=st.integers(0, 2**63 - 1))
def test_decoding_agrees_with_the_register_map(rest: list[int], state: State, fw: int, bits: int,
                                               host_ns: int) -> None:
    regs = [IDENT_MAGIC, REGMAP_VERSION, fw, int(state), bits, *rest]  # a status, or a status and a fire record
    pdu = bytes([4, 2 * len(regs)]) + struct.pack(f">{len(regs)}H", *regs)
    decoded = LauncherStatus.from_pdu(pdu, host_ns)
    expected = reference(regs, host_ns)
    assert decoded == expected and LauncherStatus.from_registers(regs, host_ns) == expected
    assert vars(decoded) == {f.name: getattr(expected, f.name) for f in dataclasses.fields(LauncherStatus)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(decoded, "armed", not decoded.armed)  # noqa: B010 (what a caller may not do)


def test_a_foreign_map_or_an_insane_state_is_refused() -> None:
    regs = [IDENT_MAGIC, REGMAP_VERSION, 0, 0, 0, *([0] * (STATUS_REGS - 5))]
    for at, value, message in ((0, 0x1234, "not a hil launcher"), (1, REGMAP_VERSION - 1, "register map"),
                               (Input.STATE, 9, "insane status")):
        bad = list(regs)
        bad[at] = value
        with pytest.raises(ModbusFrameError, match=message):
            LauncherStatus.from_registers(bad, 0)
