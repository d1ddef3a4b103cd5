"""Serial framing: CRC, stuffing, resync on hostile input, and the payload codecs."""

from __future__ import annotations

import logging
import struct

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hil.drivers.framing import (
    MAX_CONTENT,
    MAX_PAYLOAD,
    BoardStatus,
    Frame,
    FrameDecoder,
    FrameType,
    PayloadError,
    SensorConfig,
    crc16_ccitt,
    decode_ident,
    decode_status,
    decode_stimulus,
    decode_time_sync_req,
    decode_time_sync_resp,
    encode_frame,
    encode_ident,
    encode_status,
    encode_stimulus,
    encode_time_sync_req,
    encode_time_sync_resp,
)

frames_st = st.lists(
    st.tuples(st.sampled_from(list(FrameType)), st.integers(0, 0xFFFF), st.integers(0, 2**64 - 1),
              st.binary(max_size=80)),
    max_size=8,
)


def test_crc_check_value_and_known_vectors() -> None:
    assert crc16_ccitt(b"123456789") == 0x29B1
    assert crc16_ccitt(b"") == 0xFFFF
    data = bytes(range(256))
    assert crc16_ccitt(data) == crc16_bitwise(data)


def crc16_bitwise(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE bit by bit, as the firmware's hw_crc_ccitt_update does: independent of binascii."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


@given(st.binary(max_size=1100), st.integers(0, 0xFFFF))
def test_crc_equals_the_bitwise_definition_for_any_bytes_and_start_value(data: bytes, start: int) -> None:
    assert crc16_ccitt(data, start) == crc16_bitwise(data, start)
    assert crc16_ccitt(bytearray(data)) == crc16_ccitt(memoryview(data)) == crc16_bitwise(data)


def test_frame_layout_on_the_wire() -> None:
    wire = encode_frame(FrameType.TIME_SYNC_REQ, 0x1234, 0x0102030405060708, b"\x7e\x7d")
    assert wire[0] == 0x7E and wire[-1] == 0x7E
    body = wire[1:-1]
    assert 0x7E not in body
    unstuffed = body.replace(b"\x7d\x5e", b"\x7e").replace(b"\x7d\x5d", b"\x7d")
    assert unstuffed[:11] == bytes([0x10, 0x34, 0x12, 8, 7, 6, 5, 4, 3, 2, 1])
    assert unstuffed[11:13] == b"\x7e\x7d"
    assert unstuffed[13:] == struct.pack(">H", crc16_ccitt(unstuffed[:13]))


def test_oversized_payload_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        encode_frame(FrameType.LOG, 0, 0, bytes(MAX_PAYLOAD + 1))
    assert len(encode_frame(FrameType.LOG, 0, 0, bytes(MAX_PAYLOAD))) > MAX_PAYLOAD


@given(frames_st, st.lists(st.integers(1, 40), min_size=1, max_size=10))
@settings(max_examples=150, deadline=None)
def test_any_chunking_gives_the_same_frames(frames: list, cuts: list[int]) -> None:
    # a sender's (seq, clock) never repeats: a repeat is a duplicate the decoder drops
    assume(len({(f[1], f[2]) for f in frames}) == len(frames))
    wire = b"".join(encode_frame(*f) for f in frames)
    dec = FrameDecoder()
    got: list[Frame] = []
    pos, k = 0, 0
    while pos < len(wire):
        step = cuts[k % len(cuts)]
        got += dec.feed(wire[pos : pos + step])
        pos, k = pos + step, k + 1
    assert [(f.ftype, f.seq, f.t_us, f.payload) for f in got] == [(int(a), b, c, d) for a, b, c, d in frames]
    assert dec.counters.frames_ok == len(frames)
    assert sum(dec.counters.rejected.values()) == 0


@given(st.binary(max_size=600), st.binary(max_size=600))
@settings(max_examples=200, deadline=None)
def test_garbage_never_crashes_and_next_frame_survives(before: bytes, after: bytes) -> None:
    good = encode_frame(FrameType.STATUS, 7, 99, b"ok")
    dec = FrameDecoder()
    got = dec.feed(before + good + after)
    # Garbage cannot swallow a frame that starts with its own flag, whatever came before it.
    assert Frame(FrameType.STATUS, 7, 99, b"ok") in got


def test_each_reject_reason_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    good = encode_frame(FrameType.LOG, 1, 5, b"hello")
    bad_crc = bytearray(good)
    bad_crc[5] ^= 0x01
    short = b"\x7e\x01\x02\x03\x7e"
    dangling = good[:-1] + b"\x7d\x7e"
    content = struct.pack("<BHQ", 0x55, 2, 3)
    unknown = b"\x7e" + content + struct.pack(">H", crc16_ccitt(content)) + b"\x7e"
    overlong = b"\x7e" + b"\x01" * 1100 + b"\x7e"
    dec = FrameDecoder(name="radar0")
    with caplog.at_level(logging.WARNING):
        got = dec.feed(b"noise" + bytes(bad_crc) + short + dangling + unknown + overlong + good)
    assert [f.payload for f in got] == [b"hello"]
    assert dec.counters.rejected == {"crc": 1, "length": 2, "escape": 1, "unknown_type": 1}
    assert dec.counters.bytes_discarded >= 5 + 1100
    assert "radar0" in caplog.text and "crc" in caplog.text and "unknown_type" in caplog.text


def test_reject_logging_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    dec = FrameDecoder()
    with caplog.at_level(logging.WARNING):
        dec.feed(b"\x7e\x00" * 5000)
    assert dec.counters.rejected["length"] == 4999
    assert len(caplog.records) <= 11


def test_sequence_gaps_and_sender_restart_are_told_apart() -> None:
    dec = FrameDecoder()
    seqs = [65534, 65535, 0, 1, 4, 5, 0, 1]  # wrap, 2 lost, then a board reset back to 0 (its clock too)
    clock = [900, 901, 902, 903, 906, 907, 3, 4]
    dec.feed(b"".join(encode_frame(FrameType.STATUS, s, t, b"") for s, t in zip(seqs, clock, strict=True)))
    c = dec.counters
    assert (c.frames_ok, c.seq_gaps, c.frames_lost, c.seq_resets) == (8, 1, 2, 1)


def test_sensor_config_round_trip_and_size() -> None:
    cfg = SensorConfig(1.5, -2.0, 30.0, 4.0, 50.0, 0.25, 0.125, 1.0, 0.875, 3.0, 60000.0, 0.5,
                       seed=123456, sac=7, sic=9, sectors=16, north_offset_rad=0.5)
    payload = cfg.encode()
    assert len(payload) == 60
    assert SensorConfig.decode(payload) == cfg
    assert struct.unpack_from("<f", payload, 56)[0] == 0.5 and payload[52:56] == bytes([7, 9, 16, 0])
    with pytest.raises(PayloadError):
        SensorConfig.decode(payload[:-1])


@given(st.integers(0, 100))
@settings(max_examples=30, deadline=None)
def test_stimulus_chunks_round_trip(n: int) -> None:
    rng = np.random.default_rng(n)
    ids = rng.integers(0, 65536, n)
    m3a = rng.choice([-1, 0o7777, 0o1234, 0], n)
    states = rng.normal(0, 1e4, (n, 6)).astype(np.float32).astype(np.float64)
    payloads = encode_stimulus(ids, m3a, states)
    assert len(payloads) == max(1, -(-n // 32))
    chunks = [decode_stimulus(p) for p in payloads]
    assert chunks[0].start and chunks[-1].end
    assert not any(c.start for c in chunks[1:]) and not any(c.end for c in chunks[:-1])
    assert all(len(p) <= MAX_PAYLOAD for p in payloads)
    np.testing.assert_array_equal(np.concatenate([c.ids for c in chunks]), ids)
    np.testing.assert_array_equal(np.concatenate([c.mode3a for c in chunks]), m3a)
    np.testing.assert_array_equal(np.concatenate([c.states for c in chunks]).reshape(-1, 6), states.reshape(-1, 6))


def test_stimulus_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        encode_stimulus([1, 2], [0], np.zeros((2, 6)))
    with pytest.raises(ValueError):
        encode_stimulus([1], [0o10000], np.zeros((1, 6)))
    with pytest.raises(PayloadError):
        decode_stimulus(b"\x03\x02" + bytes(28))
    with pytest.raises(PayloadError):
        decode_stimulus(b"\x03\x21" + bytes(28 * 33))


def test_small_payloads_round_trip() -> None:
    assert decode_time_sync_req(encode_time_sync_req(0xDEADBEEF)) == 0xDEADBEEF
    assert decode_time_sync_resp(encode_time_sync_resp(5, 2**40, 2**40 + 17)) == (5, 2**40, 2**40 + 17)
    ident = decode_ident(encode_ident("hil-radar-avr", "1.0", "3f2a9c1"))
    assert str(ident) == "hil-radar-avr;1.0;3f2a9c1" and ident.version == "1.0"
    st_ = BoardStatus(1, 2, 3, 4)
    assert decode_status(encode_status(st_)) == st_
    for bad in (lambda: decode_ident(b"\xff;a;b"), lambda: decode_ident(b"only;two"),
                lambda: decode_time_sync_resp(b"\x00" * 19), lambda: decode_status(b"")):
        with pytest.raises(PayloadError):
            bad()


def test_a_repeated_frame_is_counted_and_not_decoded_twice() -> None:
    """A link that repeats itself (a duplicated chunk) must not hand the tracker the same plots twice, nor pass for
    a board that restarted its counter."""
    one, two = encode_frame(FrameType.LOG, 7, 100, b"a"), encode_frame(FrameType.LOG, 8, 200, b"b")
    dec = FrameDecoder()
    got = dec.feed(one + one + two + two)
    assert [f.seq for f in got] == [7, 8]
    assert dec.counters.duplicates == 2 and dec.counters.seq_resets == 0 and dec.counters.frames_lost == 0


_PIECES = st.one_of(
    st.builds(lambda ft, seq, t, payload: encode_frame(ft, seq, t, payload),
              st.sampled_from(list(FrameType)), st.integers(0, 0xFFFF), st.integers(0, 2**64 - 1),
              st.binary(max_size=64).map(lambda b: b + b"\x7e\x7d" if len(b) % 3 == 0 else b)),
    st.binary(max_size=40),  # garbage, stray flags and escapes
    st.sampled_from([b"\x7e", b"\x7d", b"\x7d\x7e", b"\x7d\x7d", b"\x7e\x7e"]),
    st.integers(MAX_CONTENT - 3, MAX_CONTENT + 40).map(lambda n: b"\x7e" + bytes([0x41]) * n),  # at the limit
    st.integers(MAX_CONTENT - 3, MAX_CONTENT + 3).map(lambda n: b"\x7e" + b"\x7d\x5e" * n),  # escapes past it
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=12), st.lists(st.integers(1, 300), min_size=1, max_size=20))
def test_piecewise_feed_is_the_byte_wise_definition(pieces: list[bytes], cuts: list[int]) -> None:
    """feed() takes the bytes between flags at once; what it gives back and counts is what one byte at a time
    gives, however the stream is cut into chunks."""
    wire = b"".join(pieces)
    fast, slow = FrameDecoder("fast"), FrameDecoder("slow")
    got: list[Frame] = []
    want: list[Frame] = []
    pos = k = 0
    while pos < len(wire):
        chunk = wire[pos:pos + cuts[k % len(cuts)]]
        got += fast.feed(chunk)
        slow._feed_bytes(chunk, want)
        pos += len(chunk)
        k += 1
    assert got == want
    assert vars(fast.counters) == vars(slow.counters)
    assert (fast._in_frame, fast._escaped, fast._overlong, bytes(fast._buf)) == (
        slow._in_frame, slow._escaped, slow._overlong, bytes(slow._buf))
