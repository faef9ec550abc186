"""RTP packet parsing and building (media/rtp.py): RFC 3550 header fields, RFC 5761 demux."""

from __future__ import annotations

import contextlib
import random
import struct

import pytest

from sentiric_media.media.rtp import MalformedPacket, RtpPacket, build_rtp, is_rtcp, parse_rtp


def raw_packet(
    *,
    version: int = 2,
    payload_type: int = 0,
    sequence: int = 1,
    timestamp: int = 2,
    ssrc: int = 3,
    marker: bool = False,
    csrcs: tuple[int, ...] = (),
    extension: tuple[int, bytes] | None = None,
    payload: bytes = b"",
    padding: int = 0,
    padding_bit: bool | None = None,
) -> bytes:
    """Build a packet byte by byte, independently of the code under test."""
    first = (version << 6) | len(csrcs)
    if extension is not None:
        first |= 0x10
    if padding_bit if padding_bit is not None else padding:
        first |= 0x20
    second = (0x80 if marker else 0) | payload_type
    data = bytes([first, second]) + sequence.to_bytes(2, "big")
    data += timestamp.to_bytes(4, "big") + ssrc.to_bytes(4, "big")
    for csrc in csrcs:
        data += csrc.to_bytes(4, "big")
    if extension is not None:
        profile, body = extension
        data += profile.to_bytes(2, "big") + (len(body) // 4).to_bytes(2, "big") + body
    data += payload
    if padding:
        data += bytes(padding - 1) + bytes([padding])
    return data


# --- plain packets -------------------------------------------------------------------------------


@pytest.mark.parametrize("payload_type", [0, 8, 9, 13, 18, 96, 101, 111, 127])
@pytest.mark.parametrize("marker", [False, True])
def test_build_then_parse_round_trip(payload_type: int, marker: bool) -> None:
    payload = bytes(range(160))
    data = build_rtp(payload_type, 65535, 0xFFFFFFFF, 0xDEADBEEF, payload, marker)
    assert data == raw_packet(
        payload_type=payload_type,
        sequence=65535,
        timestamp=0xFFFFFFFF,
        ssrc=0xDEADBEEF,
        marker=marker,
        payload=payload,
    )
    assert parse_rtp(data) == (payload_type, 65535, 0xFFFFFFFF, 0xDEADBEEF, marker, payload)


def test_build_wraps_sequence_and_timestamp() -> None:
    data = build_rtp(0, 65536 + 7, (1 << 32) + 9, 1, b"x", False)
    _, sequence, timestamp, _, _, _ = parse_rtp(data)
    assert (sequence, timestamp) == (7, 9)


def test_header_fields_are_big_endian() -> None:
    data = build_rtp(8, 0x1234, 0x89ABCDEF, 0x01020304, b"", True)
    assert data[:12] == bytes.fromhex("80 88 1234 89ABCDEF 01020304")


def test_empty_payload_is_valid() -> None:
    assert parse_rtp(raw_packet(payload=b""))[5] == b""


def test_payload_keeps_every_byte_value() -> None:
    payload = bytes(range(256)) * 3
    assert parse_rtp(raw_packet(payload=payload))[5] == payload


# --- CSRC, extension, padding --------------------------------------------------------------------


@pytest.mark.parametrize("count", range(16))
def test_csrc_list_is_skipped_and_kept(count: int) -> None:
    csrcs = tuple(0x10000000 + i for i in range(count))
    payload = b"\xaa\xbb\xcc"
    data = raw_packet(csrcs=csrcs, payload=payload, payload_type=8)
    assert parse_rtp(data)[5] == payload
    packet = RtpPacket.parse(data)
    assert packet.csrcs == csrcs
    assert packet.payload == payload
    assert packet.serialize() == data


@pytest.mark.parametrize("words", [0, 1, 2, 3, 7, 64])
def test_header_extension_is_skipped_and_kept(words: int) -> None:
    body = bytes((i * 7) & 0xFF for i in range(4 * words))
    payload = b"\x01\x02\x03\x04\x05"
    data = raw_packet(extension=(0xBEDE, body), payload=payload)
    assert parse_rtp(data)[5] == payload
    packet = RtpPacket.parse(data)
    assert packet.extension == (0xBEDE, body)
    assert packet.serialize() == data


def test_extension_after_csrcs() -> None:
    data = raw_packet(csrcs=(1, 2, 3), extension=(0x1000, b"ABCDEFGH"), payload=b"pay")
    packet = RtpPacket.parse(data)
    assert packet.csrcs == (1, 2, 3)
    assert packet.extension == (0x1000, b"ABCDEFGH")
    assert packet.payload == b"pay"


@pytest.mark.parametrize("padding", [1, 2, 3, 4, 17, 255])
def test_padding_is_removed(padding: int) -> None:
    payload = bytes([0x55]) * 20
    data = raw_packet(payload=payload, padding=padding)
    assert parse_rtp(data)[5] == payload
    packet = RtpPacket.parse(data)
    assert packet.padding == padding
    assert packet.serialize() == data


def test_padding_with_csrc_and_extension() -> None:
    data = raw_packet(csrcs=(9,), extension=(1, b"1234"), payload=b"abcdef", padding=6)
    assert parse_rtp(data)[5] == b"abcdef"


def test_padding_may_consume_the_whole_payload() -> None:
    data = raw_packet(payload=b"", padding=4)
    assert parse_rtp(data)[5] == b""


def test_marker_and_payload_type_are_separate_bits() -> None:
    data = raw_packet(payload_type=101, marker=True)
    payload_type, _, _, _, marker, _ = parse_rtp(data)
    assert (payload_type, marker) == (101, True)
    payload_type, _, _, _, marker, _ = parse_rtp(raw_packet(payload_type=101, marker=False))
    assert (payload_type, marker) == (101, False)


def test_rtp_packet_round_trip_all_fields() -> None:
    packet = RtpPacket(
        payload_type=96,
        sequence=4242,
        timestamp=123456789,
        ssrc=0xCAFEBABE,
        payload=b"opus-frame",
        marker=True,
        csrcs=(1, 0xFFFFFFFF),
        extension=(0xBEDE, b"\x10\xff\x00\x00"),
        padding=3,
    )
    data = packet.serialize()
    assert RtpPacket.parse(data) == packet
    assert parse_rtp(data) == (96, 4242, 123456789, 0xCAFEBABE, True, b"opus-frame")


def test_serialize_rejects_partial_extension_words() -> None:
    packet = RtpPacket(0, 1, 2, 3, b"", extension=(1, b"abc"))
    with pytest.raises(ValueError, match="32-bit words"):
        packet.serialize()


# --- malformed input -----------------------------------------------------------------------------


def reason_of(data: bytes) -> str:
    with pytest.raises(MalformedPacket) as info:
        parse_rtp(data)
    return info.value.reason


@pytest.mark.parametrize("size", range(12))
def test_too_short(size: int) -> None:
    data = (b"\x80" + bytes(size - 1)) if size else b""
    assert len(data) == size
    assert reason_of(data) == "too_short"


@pytest.mark.parametrize("version", [0, 1, 3])
def test_bad_version(version: int) -> None:
    assert reason_of(raw_packet(version=version, payload=b"abcd")) == "bad_version"


def test_truncated_extension_header() -> None:
    full = raw_packet(extension=(0xBEDE, b""), payload=b"")
    for cut in range(12, 16):
        assert reason_of(full[:cut]) == "truncated_extension"


def test_truncated_extension_header_after_csrcs() -> None:
    full = raw_packet(csrcs=(1, 2), extension=(0xBEDE, b""))
    assert reason_of(full[:22]) == "truncated_extension"


def test_extension_longer_than_packet() -> None:
    data = raw_packet(extension=(0xBEDE, bytes(8)))
    # Claim 100 words of extension while only 2 are present.
    data = data[:14] + (100).to_bytes(2, "big") + data[16:]
    assert reason_of(data) == "truncated_header"


@pytest.mark.parametrize("count", range(1, 16))
def test_csrc_list_longer_than_packet(count: int) -> None:
    data = raw_packet(csrcs=tuple(range(count)))
    assert reason_of(data[: 12 + 4 * count - 1]) == "truncated_header"


def test_padding_zero_is_bad() -> None:
    data = raw_packet(payload=b"abcd\x00", padding_bit=True)
    assert reason_of(data) == "bad_padding"


@pytest.mark.parametrize("claimed", [6, 7, 100, 255])
def test_padding_larger_than_payload_is_bad(claimed: int) -> None:
    data = raw_packet(payload=b"abcde", padding_bit=True) + bytes([claimed])
    # 6 bytes after the header: a claim of 6 would be the whole body (fine), more is bad.
    if claimed == 6:
        assert parse_rtp(data)[5] == b""
    else:
        assert reason_of(data) == "bad_padding"


def test_padding_bit_without_any_body_is_bad() -> None:
    assert reason_of(raw_packet(padding_bit=True)) == "bad_padding"


def test_padding_may_not_eat_into_the_extension() -> None:
    data = raw_packet(extension=(1, b"ABCD"), payload=b"xy", padding_bit=True) + bytes([4])
    assert reason_of(data) == "bad_padding"


def test_malformed_packet_is_a_value_error_with_detail() -> None:
    with pytest.raises(ValueError, match="too_short: 3 bytes"):
        parse_rtp(b"\x80\x00\x00")


def test_rtp_packet_parse_raises_malformed_packet() -> None:
    with pytest.raises(MalformedPacket):
        RtpPacket.parse(raw_packet(version=1))


# --- RTCP demultiplexing -------------------------------------------------------------------------


@pytest.mark.parametrize("packet_type", [192, 193, 200, 201, 202, 203, 204, 205, 206, 207, 223])
def test_rtcp_packet_types_are_rtcp(packet_type: int) -> None:
    # A receiver report header: V=2, RC=1, PT, length.
    datagram = bytes([0x81, packet_type]) + struct.pack("!HI", 7, 0x1234) + bytes(24)
    assert is_rtcp(datagram)


@pytest.mark.parametrize("payload_type", [0, 8, 9, 13, 18, 63, 96, 101, 111, 127])
@pytest.mark.parametrize("marker", [False, True])
def test_rtp_payload_types_are_not_rtcp(payload_type: int, marker: bool) -> None:
    assert not is_rtcp(build_rtp(payload_type, 1, 2, 3, bytes(160), marker))


@pytest.mark.parametrize("second", [64 - 1, 96, 191, 224])
def test_rtcp_range_boundaries(second: int) -> None:
    # 0xBF & 0x7F = 63 and 0xE0 & 0x7F = 96: both just outside 64..95.
    assert not is_rtcp(bytes([0x80, second]) + bytes(10))


def test_rtcp_check_of_tiny_datagrams() -> None:
    assert not is_rtcp(b"")
    assert not is_rtcp(b"\x80")
    assert is_rtcp(b"\x80\xc8")


# --- fuzzing -------------------------------------------------------------------------------------


def test_random_bytes_only_raise_malformed_packet() -> None:
    rng = random.Random(20240611)
    parsed = 0
    reasons: set[str] = set()
    for _ in range(20000):
        size = rng.choice([rng.randrange(0, 24), rng.randrange(0, 300)])
        data = bytearray(rng.getrandbits(8) for _ in range(size))
        if data and rng.random() < 0.8:
            data[0] = (data[0] & 0x3F) | 0x80  # mostly version 2, to get past the first check
        datagram = bytes(data)
        try:
            payload_type, sequence, timestamp, ssrc, marker, payload = parse_rtp(datagram)
            packet = RtpPacket.parse(datagram)
        except MalformedPacket as exc:
            reasons.add(exc.reason)
            continue
        parsed += 1
        assert 0 <= payload_type <= 127
        assert 0 <= sequence <= 0xFFFF
        assert 0 <= timestamp <= 0xFFFFFFFF
        assert 0 <= ssrc <= 0xFFFFFFFF
        assert isinstance(marker, bool)
        assert len(payload) <= len(datagram) - 12
        assert packet.payload == payload
        assert payload in datagram
    # The fuzz must exercise the success path too, and every reason is a known label.
    assert parsed > 1000
    assert reasons == {
        "too_short",
        "bad_version",
        "truncated_extension",
        "bad_padding",
        "truncated_header",
    }


def test_mutated_valid_packets_only_raise_malformed_packet() -> None:
    rng = random.Random(7)
    base = raw_packet(
        csrcs=(1, 2), extension=(0xBEDE, bytes(8)), payload=bytes(range(40)), padding=4
    )
    for _ in range(20000):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        data = data[: rng.randrange(len(data) + 1)] if rng.random() < 0.3 else data
        with contextlib.suppress(MalformedPacket):
            RtpPacket.parse(bytes(data))
