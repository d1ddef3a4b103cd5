"""Recording: pcapng that tshark decodes with its own dissectors, our reader, and a run killed mid-write."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersRequest,
    WriteMultipleRegistersRequest,
)

from hil.drivers.asterix import encode_cat048_block
from hil.drivers.registers import Holding, Input
from hil.records.recording import KINDS, Recorder, RecordingError, read_recording
from tests.helpers import require_tool, tshark_fields

RTU = FramerRTU(DecodePDU(False))
TCP = FramerSocket(DecodePDU(False))




def dwell(sac: int, sic: int, ranges: list[float], az_deg: list[float], heights: list[float]) -> bytes:
    n = len(ranges)
    return encode_cat048_block(sac, sic, [3600.0] * n, ranges, np.radians(az_deg), heights, [-120.0] * n,
                               [-1] * n, list(range(n)))


def test_tshark_decodes_cat048_fields_from_two_radars(tmp_path: Path) -> None:
    path = tmp_path / "r.pcapng"
    with Recorder(path) as rec:
        rec.record("north", "rx", dwell(1, 10, [18520.0, 37040.0], [45.0, 90.0], [3048.0, 1524.0]), 1_000, "asterix")
        rec.record("south", "rx", dwell(1, 20, [9260.0], [270.0], [762.0]), 2_000, "asterix")
        rec.record("north", "tx", b"\x7e\x02\x00\x00\x7e", 3_000, "frame")
    rows = tshark_fields(path, ["udp.dstport", "asterix.048_010_SIC", "asterix.048_040_RHO", "asterix.048_040_THETA",
                                "asterix.048_110_3DH"])  # no decode flags: ASTERIX's registered port
    assert rows[0] == ["8600", "0x0a,0x0a", "10,20", "45,90", "10000,5000"]  # 18520 m = 10 NM, 3048 m = 10000 ft
    assert rows[1] == ["8600", "0x14", "5", "270", "2500"]
    assert rows[2] == ["", "", "", "", ""]  # a serial frame: no UDP, no ASTERIX


def test_tshark_decodes_modbus_rtu_with_crc_check(tmp_path: Path) -> None:
    path = tmp_path / "m.pcapng"
    fire = WriteMultipleRegistersRequest(dev_id=1, address=Holding.FIRE_TRACK, registers=[17, 4500, 1200, 9])
    status = ReadHoldingRegistersResponse(dev_id=1, registers=[0, 0xA55A, 500])
    with Recorder(path) as rec:
        rec.record("lch-a", "tx", RTU.buildFrame(fire), 10, "modbus_rtu")
        rec.record("lch-a", "rx", RTU.buildFrame(status), 20, "modbus_rtu")
        bad = bytearray(RTU.buildFrame(status))
        bad[-1] ^= 0xFF
        rec.record("lch-a", "rx", bytes(bad), 30, "modbus_rtu")
    rows = tshark_fields(path, ["mbrtu.unit_id", "modbus.func_code", "modbus.reference_num", "modbus.regval_uint16",
                                "mbrtu.crc16.status"],
                         "-o", "mbrtu.crc_verification:TRUE")  # decoded without flags; the option checks CRCs
    assert rows[0][:4] == ["1", "16", str(int(Holding.FIRE_TRACK)), "17,4500,1200,9"]
    assert rows[1][1] == "3" and rows[1][3] == f"0,{0xA55A},500"
    assert rows[0][4] == rows[1][4] == "1"  # 1 = good CRC
    assert rows[2][4] == "0"  # the corrupted one is flagged bad


def test_tshark_decodes_modbus_tcp_stream(tmp_path: Path) -> None:
    path = tmp_path / "t.pcapng"
    with Recorder(path) as rec:
        for k in range(5):
            req = ReadInputRegistersRequest(dev_id=1, transaction_id=k + 1, address=Input.STATE, count=4)
            rec.record("lch-b", "tx", TCP.buildFrame(req), 1_000 * k, "modbus_tcp")
            resp = ReadHoldingRegistersResponse(dev_id=1, transaction_id=k + 1, registers=[1, 3, 4 - k, k])
            resp.function_code = 4
            rec.record("lch-b", "rx", TCP.buildFrame(resp), 1_000 * k + 500, "modbus_tcp")
    rows = tshark_fields(path, ["tcp.flags.syn", "tcp.len", "mbtcp.trans_id", "modbus.func_code",
                                "modbus.regval_uint16", "tcp.analysis.flags"])
    assert [r[0] for r in rows[:3]] == ["1", "1", "0"]  # the handshake
    data = [r for r in rows if r[1] != "0"]
    assert len(data) == 10
    assert [r[2] for r in data] == [str(k // 2 + 1) for k in range(10)]
    assert all(r[3] == "4" for r in data)
    assert [r[4] for r in data[1::2]] == [f"1,3,{4 - k},{k}" for k in range(5)]
    assert all(r[5] == "" for r in rows), "tshark found lost/retransmitted segments: sequence numbers are wrong"


def test_modbus_tcp_on_a_configured_port(tmp_path: Path) -> None:
    path = tmp_path / "p.pcapng"
    with Recorder(path, modbus_tcp_port=1502) as rec:
        rec.record("lch", "tx", TCP.buildFrame(ReadInputRegistersRequest(dev_id=1, transaction_id=3, count=2)), 0,
                   "modbus_tcp")
    rows = tshark_fields(path, ["tcp.dstport", "modbus.func_code"], "-o", "mbtcp.tcp.port:1502")
    assert rows[-1] == ["1502", "4"]
    assert [f.payload for f in read_recording(path)] == [TCP.buildFrame(
        ReadInputRegistersRequest(dev_id=1, transaction_id=3, count=2))]


def test_annotated_asterix_still_decodes_and_shows_its_comment(tmp_path: Path) -> None:
    path = tmp_path / "a.pcapng"
    t_s = 1234.000000123456789  # a plot time whose last bits matter to replay
    with Recorder(path) as rec:
        rec.record("north", "rx", dwell(1, 10, [18520.0], [45.0], [3048.0]), 1_000, "asterix",
                   {"poll": 7, "plots_t_s": [[t_s, 1]]})
        rec.record("lch", "tx", TCP.buildFrame(ReadInputRegistersRequest(dev_id=1, transaction_id=3, count=2)),
                   2_000, "modbus_tcp", {"note": "fire"})
    rows = tshark_fields(path, ["asterix.048_040_RHO", "asterix.048_110_3DH", "frame.comment", "modbus.func_code"])
    assert rows[0][:2] == ["10", "10000"]  # the comment leaves the ASTERIX dissection alone
    assert '"poll":7' in rows[0][2]
    assert rows[-1][2:] == ['{"note":"fire"}', "4"]  # on the ADU's segment, not on the handshake
    assert all(r[2] == "" for r in rows[1:-1])
    ours = list(read_recording(path))
    assert ours[0].annotation == {"poll": 7, "plots_t_s": [[t_s, 1]]}
    assert ours[0].annotation["plots_t_s"][0][0] == t_s  # exactly
    assert ours[1].annotation == {"note": "fire"}
    with Recorder(tmp_path / "n.pcapng") as rec, pytest.raises(ValueError, match="not JSON compliant"):
        rec.record("north", "rx", b"", 0, "asterix", {"t": math.nan})


def test_tshark_shows_link_names_directions_and_ns_times(tmp_path: Path) -> None:
    path = tmp_path / "n.pcapng"
    with Recorder(path, tsoffset_s=1_700_000_000) as rec:
        rec.record("radar west", "rx", dwell(2, 3, [1000.0], [1.0], [100.0]), 123_456_789_012, "asterix")
        rec.record("radar west", "tx", b"cfg", 123_456_789_999, "frame")
    rows = tshark_fields(path, ["frame.interface_name", "frame.p2p_dir", "frame.time_epoch"])
    assert rows[0][:2] == ["radar west", "1"] and rows[1][:2] == ["radar west", "0"]
    assert rows[0][2] == "1700000123.456789012"  # nanoseconds survive, shifted by if_tsoffset
    assert rows[1][2] == "1700000123.456789999"


frame_annotations = st.none() | st.dictionaries(
    st.text(max_size=8),
    st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
    | st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=4),
    max_size=4)
frames = st.lists(
    st.tuples(st.sampled_from(["r0", "r1", "l0", "l1 ü"]), st.sampled_from(["rx", "tx"]), st.sampled_from(KINDS),
              st.integers(0, 2**64 - 1), st.binary(max_size=300), frame_annotations),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames)
def test_reader_gives_back_exactly_what_was_recorded(tmp_path: Path, recorded: list[tuple]) -> None:
    path = tmp_path / "rt.pcapng"
    with Recorder(path) as rec:
        for link, direction, kind, t, payload, annotation in recorded:
            if kind == "modbus_tcp" and not payload:
                continue  # an empty TCP segment is not a frame (nor an ADU)
            rec.record(link, direction, payload, t, kind, annotation)
    # annotations come back exactly, floats bit for bit
    expected = [(lk, d, k, t, p, a) for lk, d, k, t, p, a in recorded if p or k != "modbus_tcp"]
    assert [tuple(f) for f in read_recording(path)] == expected


def _valid_recording(tmp_path: Path) -> bytes:
    path = tmp_path / "v.pcapng"
    with Recorder(path) as rec:
        rec.record("r", "rx", dwell(1, 1, [5000.0], [10.0], [300.0]), 5, "asterix")
        rec.record("l", "tx", RTU.buildFrame(ReadInputRegistersRequest(dev_id=1, count=3)), 6, "modbus_rtu")
        rec.record("t", "tx", b"\x00\x01\x00\x00\x00\x02\x01\x04", 7, "modbus_tcp")
    return path.read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_reader_rejects_corrupt_files_with_a_clear_error(tmp_path: Path, data: st.DataObject) -> None:
    blob = bytearray(_valid_recording(tmp_path))
    mode = data.draw(st.sampled_from(["flip", "truncate", "random"]))
    if mode == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    elif mode == "truncate":
        del blob[data.draw(st.integers(0, len(blob))):]
    else:
        blob = bytearray(data.draw(st.binary(max_size=200)))
    path = tmp_path / "bad.pcapng"
    path.write_bytes(bytes(blob))
    try:
        out = list(read_recording(path))
    except RecordingError:
        return
    assert all(f.kind in KINDS and f.direction in ("rx", "tx") for f in out)


def test_cut_off_last_block_reads_up_to_the_previous_frame(tmp_path: Path) -> None:
    full = _valid_recording(tmp_path)
    path = tmp_path / "cut.pcapng"
    path.write_bytes(full[:-7])  # e.g. the disk filled in the middle of a block
    assert [f.link_name for f in read_recording(path)] == ["r", "l"]


def test_bad_calls_are_refused_and_late_frames_are_counted(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "x.pcapng")
    with pytest.raises(ValueError, match="kind"):
        rec.record("r", "rx", b"", 0, "ethernet")
    with pytest.raises(ValueError, match="direction"):
        rec.record("r", "in", b"", 0, "frame")
    with pytest.raises(ValueError, match="host_ns"):
        rec.record("r", "rx", b"", -1, "frame")
    rec.record("r", "rx", b"ok", 0, "frame")
    rec.close()
    rec.record("r", "rx", b"late", 1, "frame")  # a link still talking at shutdown must not crash the run
    assert rec.counters.dropped_after_close == 1 and rec.counters.frames == 1
    assert [f.payload for f in read_recording(tmp_path / "x.pcapng")] == [b"ok"]
    with pytest.raises(ValueError, match="64 apart"):
        Recorder(tmp_path / "y.pcapng", asterix_port=8600, frame_port=8610)


def test_not_a_pcapng_file(tmp_path: Path) -> None:
    path = tmp_path / "x.pcapng"
    path.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(20))  # classic pcap, not pcapng
    with pytest.raises(RecordingError, match="not a pcapng"):
        list(read_recording(path))


WRITER = """
import math, sys
import numpy as np
from hil.drivers.asterix import encode_cat048_block
from hil.records.recording import Recorder
rec = Recorder(sys.argv[1])
k = 0
while True:
    block = encode_cat048_block(7, 9, [k / 128.0], [1852.0 * (1 + k % 200)], [math.radians(k % 360)], [np.nan],
                                [np.nan], [-1], [k % 4096])
    rec.record("radar", "rx", block, 1_000_000 * k, "asterix")
    k += 1
    if k == 300:
        print("ready", flush=True)
"""


@pytest.mark.timeout(120)
def test_sigkilled_writer_leaves_a_file_tshark_and_our_reader_read(tmp_path: Path) -> None:
    require_tool("tshark", "tshark")
    path = tmp_path / "killed.pcapng"
    child = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.05)  # let it get somewhere past the 300th frame
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    ours = list(read_recording(path))
    assert len(ours) >= 300
    assert [f.host_ns for f in ours] == [1_000_000 * k for k in range(len(ours))]  # no gap, nothing torn
    rows = tshark_fields(path, ["asterix.048_161_TRN", "asterix.048_040_THETA"])
    assert len(rows) == len(ours)
    last = len(ours) - 1
    assert rows[-1][0] == str(last % 4096)
    assert math.isclose(float(rows[-1][1]), last % 360, abs_tol=0.01)
