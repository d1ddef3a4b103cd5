"""AVR firmware: it builds within the Uno's budget where the user says (never beside its sources), and its CRCs and
framing agree with the host's byte for byte."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.commands.cli import main as hil_main
from hil.drivers.framing import KNOWN_TYPES, MAX_PAYLOAD, RECENT_FRAMES, FrameDecoder, crc16_ccitt, encode_frame
from hil.drivers.modbus_rtu import crc16 as crc16_modbus
from hil.errors import HilError
from hil.plant import firmware
from hil.plant.firmware import (
    ARDUINO_DIR,
    FIRMWARE_DIR,
    TARGETS,
    build_firmware,
    build_harness,
    firmware_size,
    source_id,
)
from tests.helpers import require_tool

BUDGET_PCT = 75.0
REJECT_NAMES = {1: "length", 2: "crc", 3: "escape"}  # hilwire.h HW_REJ_* -> the host decoder's counter names


@pytest.mark.parametrize("target", TARGETS)
def test_firmware_builds_within_the_uno_budget(target: str) -> None:
    require_tool("avr-gcc", "gcc-avr avr-libc")
    elf = build_firmware(target)
    assert elf.is_file() and elf.with_suffix(".hex").is_file()
    size = firmware_size(target)
    assert 0 < size.flash_pct <= BUDGET_PCT, str(size)
    assert 0 < size.ram_pct <= BUDGET_PCT, str(size)


def test_unknown_firmware_is_refused() -> None:
    with pytest.raises(HilError, match="unknown firmware"):
        build_firmware("toaster")


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def test_a_build_goes_where_the_user_says_and_leaves_the_sources_alone(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    require_tool("avr-gcc", "gcc-avr avr-libc")
    sources = _tree(FIRMWARE_DIR)
    out = tmp_path / "fw"
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert hil_main(["firmware", "build", "--out", "fw"]) == 0  # relative to the current folder
    finally:
        os.chdir(before)
    text = capsys.readouterr().out
    for target in TARGETS:
        elf = out / target / f"hil-{target}.elf"
        assert elf.is_file() and elf.with_suffix(".hex").is_file()
        assert f"{elf}  hil-{target}.elf: flash" in text
    assert _tree(FIRMWARE_DIR) == sources  # nothing written, touched or left beside the sources


def test_without_a_folder_a_build_goes_to_the_per_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("avr-gcc", "gcc-avr avr-libc")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    elf = build_firmware("launcher")
    assert elf == tmp_path / "cache" / "hil" / "firmware" / source_id() / "launcher" / "hil-launcher.elf"
    assert elf.is_file()
    assert firmware_size("launcher").flash > 0  # read from the same folder, built once


def test_the_harness_builds_into_the_named_folder(tmp_path: Path) -> None:
    require_tool("cc", "gcc")
    require_tool("simavr", "simavr libsimavr-dev libelf-dev")  # the harness's headers come with it in CI
    harness = build_harness(tmp_path)
    assert harness == tmp_path / "sim" / "hil-simavr" and os.access(harness, os.X_OK)


def test_the_cache_folder_is_named_by_the_sources_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    here = source_id()
    copy = tmp_path / "firmware_stubs"
    shutil.copytree(FIRMWARE_DIR, copy, ignore=shutil.ignore_patterns("build", "hil-simavr"))
    monkeypatch.setattr(firmware, "FIRMWARE_DIR", copy)
    assert source_id() == here  # the same sources elsewhere share the cached build
    radar_c = copy / "arduino" / "radar" / "radar.c"
    radar_c.write_text(radar_c.read_text() + "\n/* edited */\n")
    assert source_id() != here  # edited sources never reuse an older build


def test_a_build_folder_make_cannot_use_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HilError, match="white space"):
        build_firmware("radar", out=tmp_path / "my builds")


class HostWire:
    """firmware_stubs/arduino/common/hilwire.c compiled for this machine, driven over pipes (test_host.c)."""

    def __init__(self, build: Path) -> None:
        require_tool("cc", "gcc")
        subprocess.run(["make", "--no-print-directory", "-C", str(ARDUINO_DIR), f"BUILD={build}", "host-test"],
                       check=True, capture_output=True)
        self.proc = subprocess.Popen([str(build / "host" / "test_host")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def crc(self, data: bytes) -> tuple[int, int]:
        ccitt, modbus = self.ask(f"crc {data.hex()}").split()
        return int(ccitt, 16), int(modbus, 16)

    def encode(self, ftype: int, seq: int, t_us: int, payload: bytes) -> bytes:
        return bytes.fromhex(self.ask(f"enc {ftype} {seq} {t_us} {payload.hex()}"))

    def decode(self, data: bytes) -> tuple[list[tuple[int, int, int, bytes]], dict[str, int]]:
        """Good frames (type, seq, t_us, payload) and rejects by reason, for one more piece of the stream."""
        frames: list[tuple[int, int, int, bytes]] = []
        rejects: dict[str, int] = {}
        line = self.ask(f"dec {data.hex()}")
        while line != ".":
            kind, *rest = line.split(" ")
            if kind == "F":
                frames.append((int(rest[0]), int(rest[1]), int(rest[2]), bytes.fromhex(rest[3] if len(rest) > 3
                                                                                         else "")))
            else:
                name = REJECT_NAMES[int(rest[0])]
                rejects[name] = rejects.get(name, 0) + 1
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline().strip()
        return frames, rejects

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostWire]:
    w = HostWire(tmp_path_factory.mktemp("host-wire"))
    yield w
    w.close()


def test_crc_check_values(wire: HostWire) -> None:
    assert wire.crc(b"123456789") == (0x29B1, 0x4B37)  # CRC-16/CCITT-FALSE and CRC-16/MODBUS catalogue values


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_firmware_crcs_match_the_host(wire: HostWire, data: bytes) -> None:
    assert wire.crc(data) == (crc16_ccitt(data), crc16_modbus(data))


@settings(max_examples=200, deadline=None)
@given(ftype=st.integers(0, 255), seq=st.integers(0, 0xFFFF), t_us=st.integers(0, 2**64 - 1),
       payload=st.binary(max_size=MAX_PAYLOAD) | st.binary(max_size=40).map(lambda b: b.replace(b"\x00", b"\x7e")))
def test_firmware_frames_are_byte_identical_to_the_host(wire: HostWire, ftype: int, seq: int, t_us: int,
                                                        payload: bytes) -> None:
    assert wire.encode(ftype, seq, t_us, payload) == encode_frame(ftype, seq, t_us, payload)


frame_st = st.builds(lambda t, s, u, p: encode_frame(t, s, u, p), st.sampled_from(sorted(KNOWN_TYPES)),
                     st.integers(0, 0xFFFF), st.integers(0, 2**64 - 1), st.binary(max_size=64))
noise_st = st.binary(max_size=20) | st.sampled_from([b"\x7e", b"\x7d\x7e", b"\x7e\x7e", b"\x7d"])


@settings(max_examples=150, deadline=None)
@given(pieces=st.lists(frame_st | noise_st | frame_st.map(lambda f: f[:-3] + bytes([f[-3] ^ 0x01]) + f[-2:]),
                       max_size=8),
       cut=st.integers(0, 10_000))
def test_firmware_reader_agrees_with_the_host_decoder(wire: HostWire, pieces: list[bytes], cut: int) -> None:
    stream = b"".join(pieces)
    host = FrameDecoder("host")
    want = [(f.ftype, f.seq, f.t_us, f.payload) for f in host.feed(stream)]
    # the firmware's reader returns every well-formed frame; its caller drops types it does not know
    assert wire.ask("rst") == "."  # a fresh reader, like the fresh host decoder
    cut %= len(stream) + 1
    got1, rej1 = wire.decode(stream[:cut])
    got2, rej2 = wire.decode(stream[cut:])
    got = [f for f in got1 + got2 if f[0] in KNOWN_TYPES]
    # the host also drops a frame that comes again, by (seq, board time) among the last RECENT_FRAMES
    # (docs/PROTOCOLS.md §1); the board's reader hands every one to its caller
    kept: list[tuple[int, int, int, bytes]] = []
    for f in got:
        if (f[1], f[2]) not in {(k[1], k[2]) for k in kept[-RECENT_FRAMES:]}:
            kept.append(f)
    assert kept == want
    rejects = {k: rej1.get(k, 0) + rej2.get(k, 0) for k in REJECT_NAMES.values()}
    assert rejects == {k: host.counters.rejected[k] for k in REJECT_NAMES.values()}
