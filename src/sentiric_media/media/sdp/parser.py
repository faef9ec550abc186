"""`parse_sdp`: a peer's SDP text (RFC 8866) into the records of `sdp.records`.

Tolerant where real peers differ (LF or CRLF, trailing blanks, unknown lines
and attributes, static payload types without rtpmap) and strict where a guess
could send audio to the wrong place or with the wrong codec (the v=, o=, c=
and m= lines, ports, payload type numbers): those raise `SdpError` naming the
line by number and text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sentiric_media.media.sdp.records import (
    DIRECTIONS,
    EXCERPT,
    Attribute,
    Connection,
    Direction,
    Fmtp,
    MediaDescription,
    Origin,
    Rtcp,
    RtpMap,
    SdpError,
    SessionDescription,
)

MAX_SDP_BYTES = 64 * 1024
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass
class _MediaDraft:
    """A media section while its lines are read; frozen into `MediaDescription` at the end."""

    line: int
    text: str
    kind: str
    port: int
    port_count: int
    proto: str
    formats: tuple[str, ...]
    connection: Connection | None = None
    rtpmap: dict[int, RtpMap] = field(default_factory=dict)
    fmtp: dict[int, Fmtp] = field(default_factory=dict)
    ptime: int | None = None
    maxptime: int | None = None
    direction: Direction | None = None
    rtcp_mux: bool = False
    rtcp: Rtcp | None = None
    crypto: list[str] = field(default_factory=list)
    bandwidth: list[str] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)


@dataclass
class _SessionDraft:
    origin: Origin | None = None
    name: str = "-"
    connection: Connection | None = None
    timing: str | None = None
    direction: Direction | None = None
    bandwidth: list[str] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    media: list[_MediaDraft] = field(default_factory=list)


def _error(number: int, line: str, reason: str) -> SdpError:
    excerpt = line if len(line) <= EXCERPT else line[: EXCERPT - 3] + "..."
    return SdpError(f"bad SDP line {number} {excerpt!r}: {reason}")


def parse_sdp(text: str) -> SessionDescription:
    """Read an SDP (CRLF or LF line ends); raises `SdpError` naming the line it cannot accept."""
    # Characters first: a huge string is refused without encoding it.
    if len(text) > MAX_SDP_BYTES or len(text.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise SdpError(
            f"SDP is larger than {MAX_SDP_BYTES} bytes ({len(text)} characters); refused"
        )
    lines = [
        (number, line.strip())
        for number, line in enumerate(_LINE_BREAK.split(text), 1)
        if line.strip()
    ]
    if not lines:
        raise SdpError("SDP is empty")
    first_number, first = lines[0]
    if first != "v=0":
        raise _error(first_number, first, "SDP must start with v=0")
    draft = _SessionDraft()
    for number, line in lines[1:]:
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha():
            raise _error(number, line, "not an SDP line (<type>=<value>)")
        kind, value = line[0], line[2:].strip()
        if kind == "m":
            draft.media.append(_media_line(number, line, value))
        elif draft.media:
            _media_field(draft.media[-1], kind, value, number, line)
        else:
            _session_field(draft, kind, value, number, line)
    if draft.origin is None:
        raise SdpError(f"SDP has no o= line (v=0 on line {first_number})")
    if not draft.media:
        raise SdpError("SDP has no m= line")
    media = tuple(_freeze(m, draft) for m in draft.media)
    return SessionDescription(
        origin=draft.origin,
        media=media,
        name=draft.name,
        connection=draft.connection,
        timing=draft.timing or "0 0",
        direction=draft.direction,
        bandwidth=tuple(draft.bandwidth),
        attributes=tuple(draft.attributes),
    )


def _freeze(media: _MediaDraft, session: _SessionDraft) -> MediaDescription:
    if media.kind == "audio" and media.port != 0 and not (media.connection or session.connection):
        raise _error(media.line, media.text, "no connection address (no c= in session or media)")
    return MediaDescription(
        kind=media.kind,
        port=media.port,
        proto=media.proto,
        formats=media.formats,
        port_count=media.port_count,
        connection=media.connection,
        rtpmap=media.rtpmap,
        fmtp=media.fmtp,
        ptime=media.ptime,
        maxptime=media.maxptime,
        direction=media.direction or session.direction or Direction.SENDRECV,
        rtcp_mux=media.rtcp_mux,
        rtcp=media.rtcp,
        crypto=tuple(media.crypto),
        bandwidth=tuple(media.bandwidth),
        attributes=tuple(media.attributes),
    )


def _session_field(draft: _SessionDraft, kind: str, value: str, number: int, line: str) -> None:
    if kind == "o" and draft.origin is None:
        draft.origin = _origin(value, number, line)
    elif kind == "s":
        draft.name = value or "-"
    elif kind == "c":
        draft.connection = _connection(value, number, line)
    elif kind == "t" and draft.timing is None:
        draft.timing = value
    elif kind == "b":
        draft.bandwidth.append(value)
    elif kind == "a":
        attribute = _attribute(value)
        if attribute.name in DIRECTIONS and attribute.value is None:
            draft.direction = Direction(attribute.name)
        else:
            draft.attributes.append(attribute)
    # Other lines (i=, u=, e=, p=, z=, k=, r=, and unknown types) carry nothing we use.


def _media_field(media: _MediaDraft, kind: str, value: str, number: int, line: str) -> None:
    if kind == "c":
        media.connection = _connection(value, number, line)
    elif kind == "b":
        media.bandwidth.append(value)
    elif kind == "a":
        _media_attribute(media, _attribute(value), number, line)


def _media_attribute(media: _MediaDraft, attribute: Attribute, number: int, line: str) -> None:
    name, value = attribute
    # rtpmap/fmtp of non-RTP media (udptl, DTLS/SCTP) may name non-numeric formats: keep raw.
    if name in ("rtpmap", "fmtp") and value is not None and "RTP/" in media.proto.upper():
        pt_text, _, rest = value.partition(" ")
        payload_type = _payload_type(pt_text, number, line)
        if name == "rtpmap":
            media.rtpmap[payload_type] = _rtpmap(rest.strip(), number, line)
        else:
            media.fmtp[payload_type] = Fmtp.parse(rest.strip())
    elif name == "ptime" and _milliseconds(value) is not None:
        media.ptime = _milliseconds(value)
    elif name == "maxptime" and _milliseconds(value) is not None:
        media.maxptime = _milliseconds(value)
    elif name in DIRECTIONS and value is None:
        media.direction = Direction(name)
    elif name == "rtcp-mux":
        media.rtcp_mux = True
    elif name == "rtcp" and value is not None:
        media.rtcp = _rtcp(value, number, line)
    elif name == "crypto" and value is not None:
        media.crypto.append(value)
    else:
        media.attributes.append(attribute)


def _attribute(value: str) -> Attribute:
    name, sep, rest = value.partition(":")
    return Attribute(name.strip(), rest.strip() if sep else None)


def _origin(value: str, number: int, line: str) -> Origin:
    fields = value.split()
    if len(fields) != 6 or not (fields[1].isdigit() and fields[2].isdigit()):
        raise _error(number, line, "malformed o= (user sess-id sess-version IN IP4|IP6 address)")
    address = _connection(" ".join(fields[3:]), number, line)
    return Origin(fields[0], int(fields[1]), int(fields[2]), address.address, address.addr_type)


def _connection(value: str, number: int, line: str) -> Connection:
    fields = value.split()
    if len(fields) != 3 or fields[0].upper() != "IN" or fields[1].upper() not in ("IP4", "IP6"):
        raise _error(number, line, "malformed connection (expected IN IP4|IP6 <address>)")
    return Connection(fields[2].split("/")[0], fields[1].upper())


def _media_line(number: int, line: str, value: str) -> _MediaDraft:
    fields = value.split()
    if len(fields) < 3:
        raise _error(number, line, "malformed m= (media port proto formats)")
    if len(fields) == 3:
        raise _error(number, line, "m= line has no formats")
    port_text, _, count_text = fields[1].partition("/")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise _error(number, line, f"port {fields[1]!r} is not a number in 0..65535")
    if count_text and not count_text.isdigit():
        raise _error(number, line, f"port count {count_text!r} is not a number")
    return _MediaDraft(
        line=number,
        text=line,
        kind=fields[0].lower(),
        port=int(port_text),
        port_count=int(count_text) if count_text else 1,
        proto=fields[2],
        formats=tuple(fields[3:]),
    )


def _payload_type(text: str, number: int, line: str) -> int:
    if not text.isdigit() or int(text) > 127:
        raise _error(number, line, f"payload type {text!r} is not a number in 0..127")
    return int(text)


def _rtpmap(text: str, number: int, line: str) -> RtpMap:
    parts = text.split("/")
    if len(parts) not in (2, 3) or not parts[0] or not all(p.isdigit() for p in parts[1:]):
        raise _error(number, line, "malformed rtpmap (expected <encoding>/<rate>[/<channels>])")
    return RtpMap(parts[0], int(parts[1]), int(parts[2]) if len(parts) == 3 else 1)


def _rtcp(value: str, number: int, line: str) -> Rtcp:
    port_text, _, rest = value.partition(" ")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise _error(number, line, f"rtcp port {port_text!r} is not a number in 0..65535")
    connection = _connection(rest, number, line) if rest.strip() else None
    return Rtcp(int(port_text), connection)


def _milliseconds(text: str | None) -> int | None:
    # Some phones write `a=ptime:20.0`; a value we cannot read is kept as a raw attribute.
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if 0 < value < 100_000 else None
