"""RTP packets (RFC 3550): the one place where a packet is parsed or built.

Parsing honours the CSRC list, header extensions and padding, and tells RTCP
apart from RTP on a shared port (RFC 5761). The hot path uses `parse_rtp`,
which returns a plain tuple and raises `MalformedPacket` with a reason that
becomes a metric label; `RtpPacket` is the readable form for tests and tools.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

RTP_VERSION = 2
HEADER_SIZE = 12
_FIXED = struct.Struct("!BBHII")
_EXTENSION = struct.Struct("!HH")


class MalformedPacket(ValueError):
    """A datagram that is not a usable RTP packet; `reason` is a short metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class RtpHeader(NamedTuple):
    """What the receive path needs of a packet."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    marker: bool
    payload: bytes


_new_header = tuple.__new__


def is_rtcp(datagram: bytes) -> bool:
    """RFC 5761 demultiplexing: RTCP packet types 192-223 read as RTP PT 64-95."""
    return (
        len(datagram) >= 2 and datagram[0] >> 6 == RTP_VERSION and 64 <= (datagram[1] & 0x7F) <= 95
    )


def parse_rtp(datagram: bytes) -> RtpHeader:
    """Parse one RTP packet.

    Raises `MalformedPacket` for anything shorter than its own header says, a
    wrong version or bad padding. Call `is_rtcp` first on a shared port.
    """
    size = len(datagram)
    if size < HEADER_SIZE:
        raise MalformedPacket("too_short", f"{size} bytes")
    first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(datagram)
    if first >> 6 != RTP_VERSION:
        raise MalformedPacket("bad_version", f"version {first >> 6}")
    start = HEADER_SIZE + 4 * (first & 0x0F)
    if first & 0x10:
        if size < start + 4:
            raise MalformedPacket("truncated_extension", f"{size} bytes")
        _profile, words = _EXTENSION.unpack_from(datagram, start)
        start += 4 + 4 * words
    end = size
    if first & 0x20:
        padding = datagram[-1] if size > start else 0
        if padding == 0 or start + padding > size:
            raise MalformedPacket("bad_padding", f"padding {padding} in {size} bytes")
        end -= padding
    if start > end:
        raise MalformedPacket("truncated_header", f"header {start} > {end} bytes")
    # tuple.__new__ directly: the NamedTuple's own __new__ is a Python-level call.
    return _new_header(
        RtpHeader,
        (second & 0x7F, sequence, timestamp, ssrc, bool(second & 0x80), datagram[start:end]),
    )


def build_rtp(
    payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, marker: bool
) -> bytes:
    """Build a plain RTP packet (no CSRC, no extension, no padding)."""
    return (
        _FIXED.pack(
            0x80,
            payload_type | (0x80 if marker else 0),
            sequence & 0xFFFF,
            timestamp & 0xFFFFFFFF,
            ssrc,
        )
        + payload
    )


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """A decoded RTP packet, with every header field; for tests, tools and the demo."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    padding: int = 0

    @classmethod
    def parse(cls, datagram: bytes) -> RtpPacket:
        payload_type, sequence, timestamp, ssrc, marker, payload = parse_rtp(datagram)
        csrc_count = datagram[0] & 0x0F
        csrcs = struct.unpack_from(f"!{csrc_count}I", datagram, HEADER_SIZE)
        extension = None
        if datagram[0] & 0x10:
            offset = HEADER_SIZE + 4 * csrc_count
            profile, words = _EXTENSION.unpack_from(datagram, offset)
            extension = (profile, bytes(datagram[offset + 4 : offset + 4 + 4 * words]))
        padding = datagram[-1] if datagram[0] & 0x20 else 0
        return cls(
            payload_type, sequence, timestamp, ssrc, payload, marker, csrcs, extension, padding
        )

    def serialize(self) -> bytes:
        first = 0x80 | len(self.csrcs)
        body = b"".join(struct.pack("!I", csrc) for csrc in self.csrcs)
        if self.extension is not None:
            profile, data = self.extension
            if len(data) % 4:
                raise ValueError(f"extension data must be whole 32-bit words, got {len(data)}")
            first |= 0x10
            body += _EXTENSION.pack(profile, len(data) // 4) + data
        tail = b""
        if self.padding:
            first |= 0x20
            tail = bytes(self.padding - 1) + bytes([self.padding])
        second = self.payload_type | (0x80 if self.marker else 0)
        header = _FIXED.pack(first, second, self.sequence, self.timestamp, self.ssrc)
        return header + body + self.payload + tail
