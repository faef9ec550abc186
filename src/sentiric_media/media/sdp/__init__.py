"""SDP (RFC 8866): typed records, `parse_sdp` for a peer's text, `write_sdp` for ours.

This package owns the syntax only; which codec, direction and address a call
uses is decided in `media.negotiation`. `records` holds the records and the
writer, `parser` the parser.
"""

from sentiric_media.media.sdp.parser import MAX_SDP_BYTES, parse_sdp
from sentiric_media.media.sdp.records import (
    RFC3551_PAYLOAD_TYPES,
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
    write_sdp,
)

__all__ = [
    "MAX_SDP_BYTES",
    "RFC3551_PAYLOAD_TYPES",
    "Attribute",
    "Connection",
    "Direction",
    "Fmtp",
    "MediaDescription",
    "Origin",
    "Rtcp",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "parse_sdp",
    "write_sdp",
]
