"""SDP offer/answer (RFC 3264) decisions for one audio stream per session, without I/O.

`answer` answers a peer's offer, `offer` makes ours and `accept_answer` reads
the peer's answer to it; each yields an `Agreement` (codec and payload type
each way, DTMF payload type, remote RTP and RTCP address, our direction) that
the session applies (read off the peer's m-line by `media.agreement`). The
syntax is `media.sdp`'s; which codecs this process runs, which address goes
into `c=` and the `o=` version are the caller's.

Refusals are `FailedPrecondition` saying why and with which values (codecs on
both sides, the offered proto); bad SDP is `SdpError` (INVALID_ARGUMENT).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from sentiric_media.errors import FailedPrecondition, InvalidArgument
from sentiric_media.media.agreement import (
    TELEPHONE_EVENT,
    Agreement,
    Choice,
    agree,
    codec_rtpmap,
    matches,
)
from sentiric_media.media.codecs import Codec
from sentiric_media.media.sdp import (
    Connection,
    Fmtp,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
)

# DTMF 0-9 * # A-D and flash (RFC 4733 §3.2): what our receiver understands.
TELEPHONE_EVENTS = "0-16"
# Payload types of our offers: the conventional ones, so peers' logs look familiar.
DTMF_PAYLOAD_TYPES = {8000: 101, 48000: 110}
OPUS_PAYLOAD_TYPE = 111
FIRST_DYNAMIC_PAYLOAD_TYPE = 96
PLAIN_RTP_PROTOS = frozenset({"RTP/AVP", "RTP/AVPF"})
# Formats that are no codec of their own: never chosen, not named in "no codec in common".
_NOT_CODECS = frozenset({TELEPHONE_EVENT, "cn", "red", "ulpfec", "rtx"})

__all__ = [
    "Agreement",
    "LocalEndpoint",
    "OfferState",
    "SrtpPolicy",
    "accept_answer",
    "answer",
    "offer",
    "resolve_preferences",
]


class SrtpPolicy(IntEnum):
    """The contract's `SrtpPolicy` (same numbers). SRTP itself is not implemented yet."""

    OPTIONAL = 0
    REQUIRED = 1
    DISABLED = 2


@dataclass(frozen=True, slots=True)
class LocalEndpoint:
    """Our side: the address for `c=`, the session's RTP port, and the `o=` id and version.

    The caller keeps `session_id` for the whole session and raises `version` for
    every new offer or answer (RFC 3264 §8).
    """

    address: str
    port: int
    session_id: int
    version: int


@dataclass(frozen=True, slots=True)
class OfferState:
    """An offer of ours waiting for its answer."""

    description: SessionDescription
    formats: Mapping[int, Codec]  # payload type we offered → codec
    dtmf: Mapping[int, int]  # clock rate → telephone-event payload type we offered
    rtcp_mux: bool


def resolve_preferences(names: Iterable[str], supported: Sequence[Codec]) -> list[Codec]:
    """`codec_preferences` names (any case) as codecs, in order; unknown names are refused."""
    by_key = {codec.key: codec for codec in supported}
    wanted = list(dict.fromkeys(name.strip() for name in names))
    unknown = [name for name in wanted if name.lower() not in by_key]
    if unknown:
        raise InvalidArgument(
            f"codec_preferences names codecs this service does not support: "
            f"{', '.join(repr(name) for name in unknown)} (supported: {_names(supported)})"
        )
    return list({by_key[name.lower()].key: by_key[name.lower()] for name in wanted}.values())


def answer(
    offer: SessionDescription,
    *,
    supported: Sequence[Codec],
    preferences: Sequence[Codec] | None = None,
    local: LocalEndpoint,
    srtp_policy: SrtpPolicy = SrtpPolicy.OPTIONAL,
) -> tuple[SessionDescription, Agreement]:
    """Our answer to `offer`: one audio stream with one codec; every other m-line refused.

    Codec order is the offer's, or `preferences`' when given (then only those are
    accepted). The first audio m-line that is plain RTP, not disabled and has a
    codec in common is answered.
    """
    audio = [media for media in offer.media if media.kind == "audio"]
    if not audio:
        kinds = ", ".join(media.kind for media in offer.media)
        raise FailedPrecondition(f"the offer has no audio m-line (it offers {kinds})")
    active = [media for media in audio if media.port != 0]
    if not active:
        raise FailedPrecondition("the offer has no active audio stream (every audio port is 0)")
    if srtp_policy is SrtpPolicy.REQUIRED:
        raise FailedPrecondition(
            f"SRTP is not available yet, but the srtp policy is REQUIRED "
            f"(offer is {active[0].proto})"
        )
    plain = [media for media in active if media.proto.upper() in PLAIN_RTP_PROTOS]
    if not plain:
        raise FailedPrecondition(f"SRTP is not supported yet (offer is {active[0].proto})")
    accepted = _accepted(supported, preferences)
    chosen: tuple[MediaDescription, Choice] | None = None
    for media in plain:
        choice = _choose(media, accepted, ours_first=preferences is not None)
        if choice is not None:
            chosen = media, choice
            break
    if chosen is None:
        raise FailedPrecondition(_no_common_codec(plain, supported, preferences, accepted))
    media, choice = chosen
    agreement = agree(offer, media, choice, choice.payload_type, mux_offered=True)
    answered = tuple(
        _answer_media(media, agreement, local.port) if item is media else _rejected(item)
        for item in offer.media
    )
    return _description(local, answered), agreement


def offer(
    *,
    codecs: Sequence[Codec],
    local: LocalEndpoint,
    srtp_policy: SrtpPolicy = SrtpPolicy.OPTIONAL,
    ptime: int = 20,
) -> tuple[SessionDescription, OfferState]:
    """Our offer: every codec of `codecs` in order, telephone-event at each clock rate, rtcp-mux."""
    if srtp_policy is SrtpPolicy.REQUIRED:
        raise FailedPrecondition(
            "SRTP is not available yet, but the srtp policy is REQUIRED (we can only offer RTP/AVP)"
        )
    unique = list({codec.key: codec for codec in codecs}.values())
    if not unique:
        raise FailedPrecondition("no codec to offer")
    static = {codec.static_payload_type for codec in unique} - {None}
    taken = static | set(DTMF_PAYLOAD_TYPES.values()) | {OPUS_PAYLOAD_TYPE}
    free = (pt for pt in range(FIRST_DYNAMIC_PAYLOAD_TYPE, 128) if pt not in taken)
    formats: dict[int, Codec] = {}
    for codec in unique:
        if codec.static_payload_type is not None:
            formats[codec.static_payload_type] = codec
        elif codec.key == "opus" and OPUS_PAYLOAD_TYPE not in formats:
            formats[OPUS_PAYLOAD_TYPE] = codec
        else:
            formats[next(free)] = codec
    dtmf = {
        rate: DTMF_PAYLOAD_TYPES.get(rate) or next(free)
        for rate in dict.fromkeys([8000, *(codec.clock_rate for codec in unique)])
    }
    rtpmap = {pt: codec_rtpmap(codec) for pt, codec in formats.items()}
    fmtp = {pt: Fmtp.of(codec.fmtp) for pt, codec in formats.items() if codec.fmtp}
    for rate, pt in dtmf.items():
        rtpmap[pt] = RtpMap(TELEPHONE_EVENT, rate)
        fmtp[pt] = Fmtp.parse(TELEPHONE_EVENTS)
    media = MediaDescription(
        kind="audio",
        port=local.port,
        proto="RTP/AVP",
        formats=tuple(str(pt) for pt in [*formats, *dtmf.values()]),
        rtpmap=rtpmap,
        fmtp=fmtp,
        ptime=ptime,
        rtcp_mux=True,
    )
    description = _description(local, (media,))
    return description, OfferState(description, formats, dtmf, rtcp_mux=True)


def accept_answer(answer: SessionDescription, state: OfferState) -> Agreement:
    """What the peer's answer to our offer agreed: the first codec of its list that we offered."""
    media = next((item for item in answer.media if item.kind == "audio"), None)
    if media is None:
        raise FailedPrecondition("the answer has no audio m-line")
    if media.port == 0:
        raise FailedPrecondition("the answer refused our audio stream (m=audio port 0)")
    if media.proto.upper() not in PLAIN_RTP_PROTOS:
        raise FailedPrecondition(f"the answer's audio is {media.proto}; we offered RTP/AVP")
    for payload_type in media.payload_types:
        codec = _offered_codec(media, payload_type, state)
        if codec is None:
            continue
        # The peer receives on the number it answered (RFC 3264 §5.1) and should send
        # with ours; accept its number on receive too, since some peers send with it.
        ours = next(pt for pt, offered in state.formats.items() if offered.key == codec.key)
        return agree(answer, media, Choice(codec, payload_type), ours, mux_offered=state.rtcp_mux)
    offered = ", ".join(str(codec_rtpmap(codec)) for codec in state.formats.values())
    raise FailedPrecondition(
        f"no codec in common: answer has {_offered_names([media]) or 'no codec'}; "
        f"we offered {offered}"
    )


# --- helpers -------------------------------------------------------------------------------------


def _accepted(supported: Sequence[Codec], preferences: Sequence[Codec] | None) -> list[Codec]:
    if preferences is None:
        return list(supported)
    # Preferences are resolved against `supported` by the caller; one the service
    # does not run (disabled meanwhile) is dropped rather than negotiated.
    keys = {codec.key for codec in supported}
    return [codec for codec in preferences if codec.key in keys]


def _choose(
    media: MediaDescription, accepted: Sequence[Codec], *, ours_first: bool
) -> Choice | None:
    offered = [(pt, enc) for pt in media.payload_types if (enc := media.encoding(pt)) is not None]
    pairs = (
        ((codec, pt, enc) for codec in accepted for pt, enc in offered)
        if ours_first
        else ((codec, pt, enc) for pt, enc in offered for codec in accepted)
    )
    return next((Choice(codec, pt) for codec, pt, enc in pairs if matches(codec, enc)), None)


def _offered_codec(media: MediaDescription, payload_type: int, state: OfferState) -> Codec | None:
    encoding = media.encoding(payload_type)
    if encoding is None:
        # A dynamic number without rtpmap can only mean what we offered under it.
        return state.formats.get(payload_type)
    return next((codec for codec in state.formats.values() if matches(codec, encoding)), None)


def _answer_media(offered: MediaDescription, agreement: Agreement, port: int) -> MediaDescription:
    send = agreement.send
    rtpmap = {send.payload_type: codec_rtpmap(send.codec)}
    fmtp = {send.payload_type: Fmtp.of(send.codec.fmtp)} if send.codec.fmtp else {}
    formats = [send.payload_type]
    if agreement.dtmf_payload_type is not None:
        pt = agreement.dtmf_payload_type
        formats.append(pt)
        rtpmap[pt] = RtpMap(TELEPHONE_EVENT, send.clock_rate)
        if pt in offered.fmtp:
            fmtp[pt] = offered.fmtp[pt]
    return MediaDescription(
        kind=offered.kind,
        port=port,
        proto=offered.proto,
        formats=tuple(str(pt) for pt in formats),
        rtpmap=rtpmap,
        fmtp=fmtp,
        ptime=send.ptime,
        rtcp_mux=agreement.rtcp_mux,
        direction=agreement.direction,
    )


def _rejected(offered: MediaDescription) -> MediaDescription:
    # RFC 3264 §6: a refused stream keeps its place, its proto and its formats, with port 0.
    return MediaDescription(offered.kind, 0, offered.proto, offered.formats)


def _description(local: LocalEndpoint, media: tuple[MediaDescription, ...]) -> SessionDescription:
    connection = Connection.for_address(local.address)
    origin = Origin("-", local.session_id, local.version, connection.address, connection.addr_type)
    return SessionDescription(origin=origin, media=media, name="-", connection=connection)


def _names(codecs: Iterable[Codec]) -> str:
    return ", ".join(codec.name for codec in codecs) or "none"


def _offered_names(media: Iterable[MediaDescription]) -> str:
    names: dict[str, None] = {}
    for item in media:
        for payload_type in item.payload_types:
            encoding = item.encoding(payload_type)
            if encoding is None:
                names[f"PT {payload_type} (no rtpmap)"] = None
            elif encoding.encoding.lower() not in _NOT_CODECS:
                names[f"{encoding.encoding}/{encoding.clock_rate}"] = None
    return ", ".join(names)


def _no_common_codec(
    media: Sequence[MediaDescription],
    supported: Sequence[Codec],
    preferences: Sequence[Codec] | None,
    accepted: Sequence[Codec],
) -> str:
    ours = f"this service supports {_names(supported)}"
    if preferences is not None:
        ours = f"codec_preferences allow {_names(accepted)} ({ours})"
    return f"no codec in common: offer has {_offered_names(media) or 'no audio codec'}; {ours}"
