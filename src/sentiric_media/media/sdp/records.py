"""The SDP records (RFC 8866) and `write_sdp`, which turns them into text.

Records are small and immutable: `SessionDescription` holds the session
lines and one `MediaDescription` per m= section; attributes this package
does not model stay as raw `Attribute` pairs, so nothing a caller needs is
lost. Writing follows RFC 8866's line order and ends every line with CRLF.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from sentiric_media.errors import InvalidArgument

# How much of a bad value an error message quotes.
EXCERPT = 80


class SdpError(InvalidArgument):
    """SDP that cannot be read; the message names the line (number and text) when there is one."""


class Direction(StrEnum):
    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def of(cls, *, sends: bool, receives: bool) -> Direction:
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    def mirrored(self) -> Direction:
        """The direction of the other side: what one sends, the other receives (RFC 3264 §6.1)."""
        return Direction.of(sends=self.receives, receives=self.sends)


class Connection(NamedTuple):
    """A `c=` line (net type is always IN); a multicast `/ttl` suffix is dropped."""

    address: str
    addr_type: str = "IP4"

    @classmethod
    def for_address(cls, address: str) -> Connection:
        return cls(address, "IP6" if ":" in address else "IP4")

    def __str__(self) -> str:
        return f"IN {self.addr_type} {self.address}"


class Origin(NamedTuple):
    """The `o=` line: who made this SDP, its session id and version (RFC 8866 §5.2)."""

    username: str
    session_id: int
    version: int
    address: str
    addr_type: str = "IP4"

    def __str__(self) -> str:
        ids = f"{self.session_id} {self.version}"
        return f"{self.username} {ids} IN {self.addr_type} {self.address}"


class RtpMap(NamedTuple):
    """`a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`."""

    encoding: str
    clock_rate: int
    channels: int = 1

    def __str__(self) -> str:
        suffix = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.encoding}/{self.clock_rate}{suffix}"


class Fmtp(NamedTuple):
    """`a=fmtp:<pt> <raw>`; `params` holds its `key=value` items (a bare `0-16` stays in raw)."""

    raw: str
    params: Mapping[str, str]

    @classmethod
    def parse(cls, raw: str) -> Fmtp:
        params = {}
        for item in raw.split(";"):
            key, sep, value = item.partition("=")
            if sep and key.strip():
                params[key.strip()] = value.strip()
        return cls(raw, params)

    @classmethod
    def of(cls, params: Mapping[str, str]) -> Fmtp:
        return cls(";".join(f"{key}={value}" for key, value in params.items()), dict(params))


class Rtcp(NamedTuple):
    """`a=rtcp:<port> [IN IP4 <address>]` (RFC 3605)."""

    port: int
    connection: Connection | None = None

    def __str__(self) -> str:
        return f"{self.port} {self.connection}" if self.connection else str(self.port)


class Attribute(NamedTuple):
    """An attribute kept as written: `a=<name>` (value None) or `a=<name>:<value>`."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


DIRECTIONS = frozenset(direction.value for direction in Direction)

# RFC 3551 §6: payload types that may be used without an rtpmap.
RFC3551_PAYLOAD_TYPES: Mapping[int, RtpMap] = {
    0: RtpMap("PCMU", 8000),
    3: RtpMap("GSM", 8000),
    4: RtpMap("G723", 8000),
    5: RtpMap("DVI4", 8000),
    6: RtpMap("DVI4", 16000),
    7: RtpMap("LPC", 8000),
    8: RtpMap("PCMA", 8000),
    9: RtpMap("G722", 8000),
    10: RtpMap("L16", 44100, 2),
    11: RtpMap("L16", 44100),
    12: RtpMap("QCELP", 8000),
    13: RtpMap("CN", 8000),
    14: RtpMap("MPA", 90000),
    15: RtpMap("G728", 8000),
    16: RtpMap("DVI4", 11025),
    17: RtpMap("DVI4", 22050),
    18: RtpMap("G729", 8000),
    26: RtpMap("JPEG", 90000),
    31: RtpMap("H261", 90000),
    32: RtpMap("MPV", 90000),
    33: RtpMap("MP2T", 90000),
    34: RtpMap("H263", 90000),
}


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One `m=` section; `direction` is the effective one (media, else session, else sendrecv)."""

    kind: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int = 1
    connection: Connection | None = None
    rtpmap: Mapping[int, RtpMap] = field(default_factory=dict)
    fmtp: Mapping[int, Fmtp] = field(default_factory=dict)
    ptime: int | None = None
    maxptime: int | None = None
    direction: Direction = Direction.SENDRECV
    rtcp_mux: bool = False
    rtcp: Rtcp | None = None
    # SDES keys (RFC 4568), kept raw until SRTP is implemented.
    crypto: tuple[str, ...] = ()
    bandwidth: tuple[str, ...] = ()
    attributes: tuple[Attribute, ...] = ()

    @property
    def is_rtp(self) -> bool:
        return "RTP/" in self.proto.upper()

    @property
    def payload_types(self) -> tuple[int, ...]:
        """The m-line's formats as RTP payload types, in order (empty for non-RTP media)."""
        return tuple(int(f) for f in self.formats if f.isdigit()) if self.is_rtp else ()

    def encoding(self, payload_type: int) -> RtpMap | None:
        """The rtpmap of `payload_type`, or its RFC 3551 meaning when static and unmapped."""
        explicit = self.rtpmap.get(payload_type)
        if explicit is not None:
            return explicit
        return RFC3551_PAYLOAD_TYPES.get(payload_type)

    def attribute(self, name: str) -> str | None:
        """The value of the first raw attribute `name` ("" for a flag), or None."""
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute.value or ""
        return None


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP; `direction` is the session-level attribute (None when absent)."""

    origin: Origin
    media: tuple[MediaDescription, ...]
    name: str = "-"
    connection: Connection | None = None
    timing: str = "0 0"
    direction: Direction | None = None
    bandwidth: tuple[str, ...] = ()
    attributes: tuple[Attribute, ...] = ()

    def to_text(self) -> str:
        return write_sdp(self)


def write_sdp(session: SessionDescription) -> str:
    """The SDP text in RFC 8866 order (v o s c b t a, then each m c b a), every line ending CRLF."""
    lines = ["v=0", f"o={session.origin}", f"s={session.name}"]
    if session.connection is not None:
        lines.append(f"c={session.connection}")
    lines += [f"b={value}" for value in session.bandwidth]
    lines.append(f"t={session.timing}")
    if session.direction is not None:
        lines.append(f"a={session.direction}")
    lines += [f"a={attribute}" for attribute in session.attributes]
    for media in session.media:
        lines += _media_text(media)
    for line in lines:
        # A value with a line break would smuggle lines into the SDP.
        if "\r" in line or "\n" in line:
            raise ValueError(f"SDP value contains a line break: {line[:EXCERPT]!r}")
    return "\r\n".join(lines) + "\r\n"


def _media_text(media: MediaDescription) -> list[str]:
    port = f"{media.port}/{media.port_count}" if media.port_count != 1 else str(media.port)
    lines = [f"m={media.kind} {port} {media.proto} {' '.join(media.formats)}"]
    if media.connection is not None:
        lines.append(f"c={media.connection}")
    lines += [f"b={value}" for value in media.bandwidth]
    # rtpmap/fmtp in m-line order; maps of payload types the m-line does not list mean nothing.
    for payload_type in media.payload_types:
        if payload_type in media.rtpmap:
            lines.append(f"a=rtpmap:{payload_type} {media.rtpmap[payload_type]}")
        if payload_type in media.fmtp:
            lines.append(f"a=fmtp:{payload_type} {media.fmtp[payload_type].raw}")
    if media.ptime is not None:
        lines.append(f"a=ptime:{media.ptime}")
    if media.maxptime is not None:
        lines.append(f"a=maxptime:{media.maxptime}")
    if media.rtcp is not None:
        lines.append(f"a=rtcp:{media.rtcp}")
    if media.rtcp_mux:
        lines.append("a=rtcp-mux")
    lines += [f"a=crypto:{value}" for value in media.crypto]
    lines += [f"a={attribute}" for attribute in media.attributes]
    # A rejected stream (port 0) has no direction (RFC 3264 §6): do not write one.
    if media.port != 0:
        lines.append(f"a={media.direction}")
    return lines
