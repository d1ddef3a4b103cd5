"""A run's recording opens in tshark as it is: ASTERIX, Modbus and, with the shipped Lua plugin, hil's own frames."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import ReadInputRegistersRequest

from hil.drivers.asterix import encode_cat048_block
from hil.drivers.framing import FrameType, encode_frame
from hil.records.recording import WIRESHARK_PLUGIN, Recorder
from hil.rig import Rig
from hil.runtime import RunOptions, run_chain
from hil.scenario import Scenario
from tests.helpers import MOCK_RIG, RAID, tshark_fields


def tshark(path: Path, fields: list[str], *extra: str) -> list[list[str]]:
    """With no decode flag (-d) and no preference (-o): what a user who opens the file sees."""
    return tshark_fields(path, fields, *extra)


def with_plugin() -> tuple[str, str]:
    return "-X", f"lua_script:{WIRESHARK_PLUGIN}"


@pytest.fixture(scope="module")
def run_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    run_chain(RunOptions(scenario=Scenario.load(RAID), rig=Rig.load(MOCK_RIG), seed=1, time_mode="virtual", out_dir=out,
                         duration_s=8.0, report=False))
    return out / "recording.pcapng"


def test_every_frame_of_a_run_decodes_without_decode_flags(run_recording: Path) -> None:
    rows = tshark(run_recording, ["frame.protocols", "asterix.category", "mbrtu.unit_id", "modbus.func_code",
                                  "hil.type", "hil.crc.status"], *with_plugin())
    protocols = Counter(r[0] for r in rows)
    assert set(protocols) == {"ip:udp:asterix", "exported_pdu:mbrtu:modbus", "exported_pdu:hil"}, protocols
    categories = Counter(c for r in rows for c in r[1].split(",") if c)
    assert categories["48"] > 100 and categories["34"] > 10  # plots and north / sector crossings
    functions = Counter(r[3] for r in rows if r[2])
    assert functions["3"] and functions["4"] and functions["16"]  # status reads and the fire / heartbeat writes
    hil = [r for r in rows if r[4]]
    types = Counter(int(r[4], 16) for r in hil)
    for t in (FrameType.SENSOR_CONFIG, FrameType.STIMULUS, FrameType.TIME_SYNC_REQ, FrameType.TIME_SYNC_RESP):
        assert types[t], f"no {t.name} frame decoded"
    assert all(r[5] == "1" for r in hil)  # the plugin's CRC agrees with the host's on every frame


def test_without_the_plugin_nothing_shows_as_bare_data(run_recording: Path) -> None:
    rows = tshark(run_recording, ["frame.protocols", "exported_pdu.prot_name"])
    assert not [r for r in rows if r[0].endswith(":data")]
    # hil's frames name their dissector, for the plugin to pick up (installed in ~/.local/lib/wireshark/plugins/ or not)
    assert {r[1] for r in rows if r[0] in ("exported_pdu", "exported_pdu:hil")} == {"hil"}


def test_modbus_tcp_decodes_on_its_registered_port(tmp_path: Path) -> None:
    path = tmp_path / "t.pcapng"
    framer = FramerSocket(DecodePDU(False))
    with Recorder(path) as rec:
        rec.record("launcher-north", "tx", framer.buildFrame(ReadInputRegistersRequest(dev_id=1, transaction_id=9,
                                                                                       count=2)), 0, "modbus_tcp")
    assert tshark(path, ["tcp.dstport", "mbtcp.trans_id", "modbus.func_code"])[-1] == ["502", "9", "4"]


def test_the_plugin_reads_every_frame_as_the_host_wrote_it(tmp_path: Path) -> None:
    rng = random.Random(7)
    path = tmp_path / "f.pcapng"
    sent = []
    with Recorder(path) as rec:
        for k in range(60):
            ftype = rng.choice([t for t in FrameType if t != FrameType.ASTERIX])
            # flag and escape bytes inside: the plugin must unstuff them
            payload = bytes(rng.choice([0x7E, 0x7D, rng.randrange(256)]) for _ in range(rng.randrange(0, 40)))
            seq, t_us = rng.randrange(1 << 16), rng.randrange(1 << 64)
            sent.append((int(ftype), seq, t_us, len(payload)))
            rec.record("radar-west", rng.choice(["rx", "tx"]), encode_frame(ftype, seq, t_us, payload), k, "frame")
    rows = tshark(path, ["hil.type", "hil.seq", "hil.t_us", "hil.payload_len", "hil.crc.status"], *with_plugin())
    assert [(int(r[0], 16), int(r[1]), int(r[2]), int(r[3])) for r in rows] == sent
    assert all(r[4] == "1" for r in rows)


def test_the_plugin_flags_a_bad_crc_and_reads_several_frames_in_one_buffer(tmp_path: Path) -> None:
    path = tmp_path / "b.pcapng"
    good = encode_frame(FrameType.LOG, 5, 1_000, b"brown-out")
    content = bytearray(good[1:-1])
    content[-1] ^= 0x01  # the CRC's low byte (0x7E/0x7D never end a stuffed CRC here: checked below)
    assert content[-1] not in (0x7E, 0x7D)
    plot = encode_cat048_block(1, 7, [3600.0], [18520.0], np.radians([45.0]), [3048.0], [-120.0], [-1], [0])
    with Recorder(path) as rec:
        rec.record("radar-west", "rx", b"\x7e" + bytes(content) + b"\x7e", 1, "frame")
        rec.record("radar-west", "rx", b"junk" + good + encode_frame(FrameType.ASTERIX, 6, 2_000, plot), 2, "frame")
    rows = tshark(path, ["hil.crc.status", "hil.seq", "hil.log", "asterix.048_010_SIC", "_ws.col.Info"],
                  *with_plugin())
    assert rows[0][0] == "0" and "bad CRC" in rows[0][4]
    assert rows[1][:4] == ["1,1", "5,6", "brown-out", "0x07"]  # an ASTERIX frame's payload goes to ASTERIX


def test_the_plugin_ships_with_the_package_and_tells_how_to_install_it() -> None:
    text = WIRESHARK_PLUGIN.read_text()
    assert "~/.local/lib/wireshark/plugins/" in text
