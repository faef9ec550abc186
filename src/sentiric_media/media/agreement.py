"""What a peer's audio m-line means for our media: the `Agreement` a session applies.

`negotiation` decides which m-line and codec; this module reads the rest off
the peer's SDP (its offer, or its answer to ours), as RFC 3264 asks: the
payload types each way, packet time, the peer's fmtp for our encoder, the
telephone-event payload type at the codec's clock rate, the remote RTP and
RTCP addresses, and our direction (the peer's mirrored, with old-style hold).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import NamedTuple

from sentiric_media.media.codecs import Codec, MediaFormat
from sentiric_media.media.sdp import (
    Connection,
    Direction,
    MediaDescription,
    RtpMap,
    SdpError,
    SessionDescription,
)
from sentiric_media.media.transport import Address

TELEPHONE_EVENT = "telephone-event"
# a=ptime values of a peer we follow for what we send; others get our default.
PEER_PTIME_RANGE = range(10, 61)


@dataclass(frozen=True, slots=True)
class Agreement:
    """What a negotiation agreed, for the session to apply."""

    send: MediaFormat  # ptime and fmtp are the peer's (its receive constraints)
    receive: dict[int, MediaFormat]  # payload types we accept → their format
    dtmf_payload_type: int | None
    dtmf_clock_rate: int | None
    remote: Address | None  # None: the peer's port is 0 or it is on hold (c=0.0.0.0)
    remote_rtcp: Address | None  # None with rtcp-mux, or when `remote` is None
    rtcp_mux: bool
    direction: Direction  # ours

    @property
    def sends(self) -> bool:
        return self.direction.sends

    @property
    def receives(self) -> bool:
        return self.direction.receives


class Choice(NamedTuple):
    """A codec of ours and the payload type the peer's SDP gives it."""

    codec: Codec
    payload_type: int


def codec_rtpmap(codec: Codec) -> RtpMap:
    return RtpMap(codec.name, codec.clock_rate, codec.sdp_channels)


def matches(codec: Codec, encoding: RtpMap) -> bool:
    """Same codec: name (any case), clock rate and channels (opus is `opus/48000/2`, RFC 7587)."""
    return (
        encoding.encoding.lower() == codec.key
        and encoding.clock_rate == codec.clock_rate
        and encoding.channels == codec.sdp_channels
    )


def agree(
    session: SessionDescription,
    media: MediaDescription,
    choice: Choice,
    receive_pt: int,
    *,
    mux_offered: bool,
) -> Agreement:
    """The agreement on `media` of the peer's SDP `session` (its offer, or its answer to ours).

    We send with the peer's payload type `choice.payload_type` and expect
    `receive_pt` too (a different number only when the peer answered our offer
    with its own); rtcp-mux holds when the peer has it and we offered or accept it.
    """
    codec = choice.codec
    peer_fmtp = media.fmtp.get(choice.payload_type)
    ptime = send_ptime(codec, media.ptime, media.maxptime)
    send = MediaFormat(
        codec, choice.payload_type, ptime, dict(peer_fmtp.params) if peer_fmtp else {}
    )
    receive = {
        pt: MediaFormat(codec, pt, ptime, dict(codec.fmtp))
        for pt in dict.fromkeys([receive_pt, choice.payload_type])
    }
    dtmf = telephone_event(media, codec.clock_rate)
    connection = media.connection or session.connection
    held = connection is not None and ip_of(connection).is_unspecified
    remote = None if connection is None or held else (str(ip_of(connection)), media.port)
    # RFC 3264 §8.4: c=0.0.0.0 means "send neither RTP nor RTCP to me", whatever
    # the direction attribute says; the peer is then, in effect, not receiving.
    peer = Direction.of(sends=media.direction.sends, receives=media.direction.receives and not held)
    rtcp_mux = media.rtcp_mux and mux_offered
    return Agreement(
        send=send,
        receive=receive,
        dtmf_payload_type=dtmf,
        dtmf_clock_rate=codec.clock_rate if dtmf is not None else None,
        remote=remote,
        remote_rtcp=None if rtcp_mux or remote is None else _rtcp_address(media, remote),
        rtcp_mux=rtcp_mux,
        direction=peer.mirrored(),
    )


def telephone_event(media: MediaDescription, clock_rate: int) -> int | None:
    """The payload type of telephone-event at `clock_rate` (RFC 4733 §2.1: the codec's)."""
    for payload_type in media.payload_types:
        encoding = media.encoding(payload_type)
        if encoding is not None and _is_telephone_event(encoding, clock_rate):
            return payload_type
    return None


def send_ptime(codec: Codec, ptime: int | None, maxptime: int | None) -> int:
    """The peer's a=ptime when 10–60 ms and the codec has it, else our default within maxptime."""
    if ptime is not None and ptime in PEER_PTIME_RANGE:
        return codec.packet_ms(ptime)
    default = codec.packet_ms(None)
    if maxptime is None or default <= maxptime:
        return default
    fitting = [p for p in codec.ptimes if p <= maxptime]
    return max(fitting) if fitting else default


def ip_of(connection: Connection) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(connection.address)
    except ValueError:
        raise SdpError(
            f"c= address {connection.address!r} is not an IP address (host names are not resolved)"
        ) from None


def _is_telephone_event(encoding: RtpMap, clock_rate: int) -> bool:
    return encoding.encoding.lower() == TELEPHONE_EVENT and encoding.clock_rate == clock_rate


def _rtcp_address(media: MediaDescription, remote: Address) -> Address:
    # RFC 3605 a=rtcp, else RFC 3550's default: the RTP port + 1 on the same host.
    if media.rtcp is None:
        return remote[0], remote[1] + 1
    host = str(ip_of(media.rtcp.connection)) if media.rtcp.connection else remote[0]
    return host, media.rtcp.port
