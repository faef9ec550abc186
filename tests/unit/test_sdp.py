"""SDP parsing and writing (media/sdp): real offers, tolerated quirks, refused text, CRLF output."""

from __future__ import annotations

import pytest

from sentiric_media.errors import InvalidArgument
from sentiric_media.media.sdp import (
    MAX_SDP_BYTES,
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
    parse_sdp,
    write_sdp,
)
from tests.unit import sdp_samples as samples

ALL_SAMPLES = {
    "asterisk": samples.ASTERISK,
    "freeswitch": samples.FREESWITCH,
    "linphone": samples.LINPHONE,
    "carrier": samples.CARRIER,
    "webrtc": samples.WEBRTC,
    "audio_video": samples.AUDIO_VIDEO,
    "audio_t38": samples.AUDIO_T38,
    "ffmpeg_opus": samples.FFMPEG_OPUS,
    "ffmpeg_g722": samples.FFMPEG_G722,
    "ipv6": samples.IPV6,
}


# --- real offers ---------------------------------------------------------------------------------


def test_asterisk_offer() -> None:
    sdp = parse_sdp(samples.ASTERISK)
    assert sdp.origin == Origin("-", 1734043327, 1734043327, "192.168.1.10")
    assert sdp.name == "Asterisk"
    assert sdp.connection == Connection("192.168.1.10", "IP4")
    assert sdp.timing == "0 0"
    (audio,) = sdp.media
    assert (audio.kind, audio.port, audio.port_count, audio.proto) == ("audio", 10000, 1, "RTP/AVP")
    assert audio.formats == ("0", "8", "3", "101")
    assert audio.payload_types == (0, 8, 3, 101)
    assert audio.rtpmap[101] == RtpMap("telephone-event", 8000)
    assert audio.fmtp[101].raw == "0-16"
    assert (audio.ptime, audio.maxptime, audio.direction) == (20, 150, Direction.SENDRECV)
    assert not audio.rtcp_mux
    assert audio.rtcp is None
    assert audio.connection is None
    assert audio.attributes == ()


def test_freeswitch_offer_fmtp_and_rtcp() -> None:
    audio = parse_sdp(samples.FREESWITCH).media[0]
    assert audio.rtpmap[102] == RtpMap("opus", 48000, 2)
    assert str(audio.rtpmap[102]) == "opus/48000/2"
    assert audio.fmtp[102].params == {
        "useinbandfec": "1",
        "maxaveragebitrate": "30000",
        "maxplaybackrate": "16000",
        "minptime": "10",
    }
    assert audio.encoding(100) == RtpMap("telephone-event", 48000)
    assert audio.rtcp == Rtcp(24681, Connection("10.0.0.5", "IP4"))


def test_linphone_offer_keeps_session_attributes_and_rtcp_fb() -> None:
    sdp = parse_sdp(samples.LINPHONE)
    assert sdp.attributes == (
        Attribute("rtcp-xr", "rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics"),
    )
    audio = sdp.media[0]
    assert audio.attributes == (
        Attribute("rtcp-fb", "* trr-int 1000"),
        Attribute("rtcp-fb", "* ccm tmmbr"),
    )
    assert audio.encoding(97) == RtpMap("speex", 16000)
    assert audio.encoding(0) == RtpMap("PCMU", 8000)  # static, no rtpmap


def test_carrier_offer_g729_annexb_and_silence_suppression() -> None:
    audio = parse_sdp(samples.CARRIER).media[0]
    assert audio.fmtp[18].params == {"annexb": "yes"}
    assert audio.fmtp[101].raw == "0-15"
    assert audio.fmtp[101].params == {}  # a bare event list has no key=value
    assert audio.attribute("silenceSupp") == "off - - - -"
    assert audio.attribute("nothing") is None


def test_webrtc_offer() -> None:
    sdp = parse_sdp(samples.WEBRTC)
    assert sdp.connection is None
    assert Attribute("group", "BUNDLE 0") in sdp.attributes
    assert Attribute("extmap-allow-mixed") in sdp.attributes
    audio = sdp.media[0]
    assert audio.proto == "UDP/TLS/RTP/SAVPF"
    assert audio.connection == Connection("0.0.0.0")
    assert audio.rtcp == Rtcp(9, Connection("0.0.0.0"))
    assert audio.rtcp_mux
    assert audio.encoding(63) == RtpMap("red", 48000, 2)
    names = [attribute.name for attribute in audio.attributes]
    for name in ("candidate", "ice-ufrag", "ice-pwd", "fingerprint", "setup", "mid", "extmap"):
        assert name in names
    assert audio.attribute("setup") == "actpass"
    assert audio.attribute("ssrc") == "3570614608 cname:4TOk42mSjXCkVIa6"


def test_audio_video_and_t38_offers() -> None:
    audio, video = parse_sdp(samples.AUDIO_VIDEO).media
    assert (audio.kind, video.kind, video.port) == ("audio", "video", 51372)
    assert audio.encoding(97) == RtpMap("iLBC", 8000)
    assert video.encoding(31) == RtpMap("H261", 90000)
    assert video.fmtp[99].params["packetization-mode"] == "1"
    _, image = parse_sdp(samples.AUDIO_T38).media
    assert (image.kind, image.proto, image.formats) == ("image", "udptl", ("t38",))
    assert image.payload_types == ()
    assert image.attribute("T38MaxBitRate") == "14400"


def test_ffmpeg_sdp_file_with_lf_only() -> None:
    sdp = parse_sdp(samples.FFMPEG_OPUS)
    assert sdp.name == "No Name"
    assert Attribute("tool", "libavformat 61.7.100") in sdp.attributes
    audio = sdp.media[0]
    assert audio.bandwidth == ("AS:64",)
    assert audio.fmtp[97].params == {"sprop-stereo": "1"}
    assert parse_sdp(samples.FFMPEG_G722).media[0].encoding(9) == RtpMap("G722", 8000)


def test_ipv6_offer() -> None:
    sdp = parse_sdp(samples.IPV6)
    assert sdp.origin.addr_type == "IP6"
    assert sdp.connection == Connection("2001:DB8:0:0::10", "IP6")


@pytest.mark.parametrize(
    ("payload_type", "expected"),
    [
        (0, RtpMap("PCMU", 8000)),
        (3, RtpMap("GSM", 8000)),
        (4, RtpMap("G723", 8000)),
        (8, RtpMap("PCMA", 8000)),
        (9, RtpMap("G722", 8000)),
        (13, RtpMap("CN", 8000)),
        (18, RtpMap("G729", 8000)),
        (96, None),  # dynamic: meaningless without an rtpmap
    ],
)
def test_static_payload_types_resolve_to_rfc3551_names(
    payload_type: int, expected: RtpMap | None
) -> None:
    audio = parse_sdp(samples.simple_offer("", formats=str(payload_type))).media[0]
    assert audio.encoding(payload_type) == expected


def test_an_explicit_rtpmap_wins_over_the_static_meaning() -> None:
    audio = parse_sdp(samples.simple_offer("a=rtpmap:0 pcmu/8000\n", formats="0")).media[0]
    assert audio.encoding(0) == RtpMap("pcmu", 8000)


# --- tolerance -----------------------------------------------------------------------------------


def test_lf_crlf_and_trailing_whitespace_parse_alike() -> None:
    lf = samples.ASTERISK.replace("\r\n", "\n")
    messy = "\n".join(line + " \t" for line in lf.split("\n")) + "\n\n"
    assert parse_sdp(lf) == parse_sdp(samples.ASTERISK) == parse_sdp(messy)


def test_unknown_lines_and_attributes_are_tolerated() -> None:
    text = samples.crlf(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\ni=a session\nu=http://example.com\n"
        "e=ops@example.com\nc=IN IP4 192.0.2.1\nt=0 0\nr=7d 1h 0 25h\nz=2882844526 -1h\n"
        "y=unknown\nm=audio 5000 RTP/AVP 0\ni=audio\nk=clear:secret\na=x-custom:1 2 3\n"
        "a=flag\na=ptime:20.0\na=ptime-unreadable\n"
    )
    sdp = parse_sdp(text)
    audio = sdp.media[0]
    assert audio.ptime == 20  # `20.0` from some phones
    assert audio.attributes == (
        Attribute("x-custom", "1 2 3"),
        Attribute("flag"),
        Attribute("ptime-unreadable"),
    )


def test_unreadable_ptime_is_kept_raw() -> None:
    audio = parse_sdp(samples.simple_offer("a=ptime:twenty\n")).media[0]
    assert audio.ptime is None
    assert audio.attribute("ptime") == "twenty"


def test_media_level_connection_and_port_count() -> None:
    text = samples.crlf(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\n"
        "m=audio 5000/2 RTP/AVP 0\nc=IN IP4 224.2.1.1/127\n"
    )
    audio = parse_sdp(text).media[0]
    assert (audio.port, audio.port_count) == (5000, 2)
    assert audio.connection == Connection("224.2.1.1")  # TTL dropped


def test_a_disabled_audio_stream_needs_no_connection() -> None:
    text = samples.crlf("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 0 RTP/AVP 0\n")
    assert parse_sdp(text).media[0].port == 0


@pytest.mark.parametrize(
    ("session_attribute", "media_attribute", "expected"),
    [
        ("", "", Direction.SENDRECV),
        ("a=sendonly\n", "", Direction.SENDONLY),
        ("a=sendonly\n", "a=inactive\n", Direction.INACTIVE),
        ("", "a=recvonly\n", Direction.RECVONLY),
    ],
)
def test_media_direction_overrides_session_direction(
    session_attribute: str, media_attribute: str, expected: Direction
) -> None:
    text = samples.crlf(
        f"v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n{session_attribute}"
        f"m=audio 5000 RTP/AVP 0\n{media_attribute}"
    )
    sdp = parse_sdp(text)
    assert sdp.media[0].direction is expected
    assert sdp.direction == (Direction.SENDONLY if session_attribute else None)


def test_crypto_lines_are_kept_raw() -> None:
    text = samples.crlf(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
        "m=audio 5000 RTP/SAVP 0\n"
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
        "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\n"
        "a=crypto:2 AES_CM_128_HMAC_SHA1_32 "
        "inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32\n"
    )
    audio = parse_sdp(text).media[0]
    assert audio.proto == "RTP/SAVP"
    assert len(audio.crypto) == 2
    assert audio.crypto[0].startswith("1 AES_CM_128_HMAC_SHA1_80 inline:PS1u")


def test_rtpmap_of_non_rtp_media_is_kept_raw() -> None:
    text = samples.crlf(
        "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
        "m=application 5000 DTLS/SCTP webrtc-datachannel\na=fmtp:webrtc-datachannel max=1\n"
    )
    media = parse_sdp(text).media[0]
    assert media.fmtp == {}
    assert media.attribute("fmtp") == "webrtc-datachannel max=1"


# --- refused text --------------------------------------------------------------------------------

GOOD_HEAD = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("o=- 1 1 IN IP4 192.0.2.1\nv=0\n", "line 1 'o=- 1 1 IN IP4 192.0.2.1': SDP must start"),
        ("v=1\no=- 1 1 IN IP4 192.0.2.1\n", "line 1 'v=1'"),
        ("INVITE sip:bob@example.com SIP/2.0\r\nVia: x\r\n", "line 1 'INVITE sip:bob@example"),
        ('{"sdp": "v=0"}', 'line 1 \'{"sdp": "v=0"}\''),
        ("\n\n  \n", "SDP is empty"),
        ("", "SDP is empty"),
        ("v=0\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 5000 RTP/AVP 0\n", "no o= line"),
        ("v=0\no=- abc 1 IN IP4 192.0.2.1\n", "line 2 'o=- abc 1 IN IP4 192.0.2.1': malformed o="),
        ("v=0\no=- 1 1 IN IP4\n", "line 2 'o=- 1 1 IN IP4': malformed o="),
        ("v=0\no=- 1 1 IN IP4 192.0.2.1\nc=IN IP4\n", "line 3 'c=IN IP4': malformed connection"),
        ("v=0\no=- 1 1 IN IP4 192.0.2.1\nc=XX IP4 1.2.3.4\n", "line 3 'c=XX IP4 1.2.3.4'"),
        (GOOD_HEAD, "no m= line"),
        (GOOD_HEAD + "m=audio\n", "line 6 'm=audio': malformed m="),
        (GOOD_HEAD + "m=audio abc RTP/AVP 0\n", "line 6 'm=audio abc RTP/AVP 0': port 'abc'"),
        (GOOD_HEAD + "m=audio 70000 RTP/AVP 0\n", "port '70000' is not a number in 0..65535"),
        (GOOD_HEAD + "m=audio 5000/x RTP/AVP 0\n", "port count 'x'"),
        (GOOD_HEAD + "m=audio 5000 RTP/AVP\n", "line 6 'm=audio 5000 RTP/AVP': m= line has no"),
        (
            GOOD_HEAD + "m=audio 5000 RTP/AVP 0\na=rtpmap:abc PCMU/8000\n",
            "line 7 'a=rtpmap:abc PCMU/8000': payload type 'abc'",
        ),
        (
            GOOD_HEAD + "m=audio 5000 RTP/AVP 0\na=fmtp:x1 annexb=no\n",
            "line 7 'a=fmtp:x1 annexb=no': payload type 'x1'",
        ),
        (GOOD_HEAD + "m=audio 5000 RTP/AVP 96\na=rtpmap:96 opus\n", "malformed rtpmap"),
        (GOOD_HEAD + "m=audio 5000 RTP/AVP 96\na=rtpmap:96 opus/fast\n", "malformed rtpmap"),
        (GOOD_HEAD + "m=audio 5000 RTP/AVP 0\na=rtcp:abc\n", "line 7 'a=rtcp:abc': rtcp port"),
        (GOOD_HEAD + "m=audio 5000 RTP/AVP 0\njunk\n", "line 7 'junk': not an SDP line"),
        (
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nt=0 0\nm=audio 5000 RTP/AVP 0\n",
            "line 5 'm=audio 5000 RTP/AVP 0': no connection address",
        ),
    ],
)
def test_malformed_sdp_names_the_line(text: str, message: str) -> None:
    with pytest.raises(SdpError) as caught:
        parse_sdp(text)
    assert message in str(caught.value)


def test_sdp_error_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        parse_sdp("hello")
    assert SdpError.status == "INVALID_ARGUMENT"


def test_a_long_bad_line_is_quoted_truncated() -> None:
    bad = "m=audio x RTP/AVP " + "0 " * 200
    with pytest.raises(SdpError) as caught:
        parse_sdp(GOOD_HEAD + bad)
    message = str(caught.value)
    assert "line 6 'm=audio x RTP/AVP 0 0" in message
    assert "...'" in message
    assert len(message) < 200


def test_oversize_sdp_is_refused() -> None:
    padding = "a=x-padding:" + "x" * 100 + "\n"
    text = samples.ASTERISK + padding * (MAX_SDP_BYTES // len(padding) + 1)
    with pytest.raises(SdpError, match="larger than 65536 bytes"):
        parse_sdp(text)
    # Multi-byte characters count as bytes, not characters.
    with pytest.raises(SdpError, match="larger than"):
        parse_sdp(samples.ASTERISK + "s=" + "ş" * (MAX_SDP_BYTES // 2))


# --- writing -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ALL_SAMPLES))
def test_written_sdp_ends_lines_with_crlf_and_reparses_the_same(name: str) -> None:
    sdp = parse_sdp(ALL_SAMPLES[name])
    text = write_sdp(sdp)
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    assert parse_sdp(text) == sdp
    assert sdp.to_text() == text


def test_written_lines_follow_rfc_8866_order() -> None:
    sdp = SessionDescription(
        origin=Origin("-", 9, 3, "2001:db8::1", "IP6"),
        media=(
            MediaDescription(
                kind="audio",
                port=4000,
                proto="RTP/AVP",
                formats=("8", "101"),
                rtpmap={8: RtpMap("PCMA", 8000), 101: RtpMap("telephone-event", 8000)},
                fmtp={101: Fmtp.parse("0-16")},
                ptime=20,
                rtcp_mux=True,
                direction=Direction.RECVONLY,
            ),
            MediaDescription("video", 0, "RTP/AVP", ("31",)),
        ),
        connection=Connection.for_address("2001:db8::1"),
        attributes=(Attribute("tool", "sentiric"),),
    )
    assert write_sdp(sdp) == (
        "v=0\r\n"
        "o=- 9 3 IN IP6 2001:db8::1\r\n"
        "s=-\r\n"
        "c=IN IP6 2001:db8::1\r\n"
        "t=0 0\r\n"
        "a=tool:sentiric\r\n"
        "m=audio 4000 RTP/AVP 8 101\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\n"
        "a=ptime:20\r\n"
        "a=rtcp-mux\r\n"
        "a=recvonly\r\n"
        "m=video 0 RTP/AVP 31\r\n"
    )


def test_a_value_with_a_line_break_is_never_written() -> None:
    sdp = parse_sdp(samples.ASTERISK)
    sneaky = SessionDescription(origin=sdp.origin, media=sdp.media, name="x\r\na=evil")
    with pytest.raises(ValueError, match="line break"):
        write_sdp(sneaky)


def test_direction_helpers() -> None:
    assert [d.mirrored() for d in Direction] == [
        Direction.SENDRECV,
        Direction.RECVONLY,
        Direction.SENDONLY,
        Direction.INACTIVE,
    ]
    assert [(d.sends, d.receives) for d in Direction] == [
        (True, True),
        (True, False),
        (False, True),
        (False, False),
    ]
