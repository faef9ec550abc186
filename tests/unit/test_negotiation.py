"""Offer/answer (media/negotiation, media/agreement): codec choice, DTMF, direction, refusals.

Peers' offers are the real-world ones of sdp_samples; our answers are checked
as text (CRLF, RFC 3264 m-line rules) and as the `Agreement` the session applies.
"""

from __future__ import annotations

import pytest

from sentiric_media.errors import FailedPrecondition
from sentiric_media.media import codecs
from sentiric_media.media.codecs import PCMA, PCMU, Codec
from sentiric_media.media.negotiation import Agreement, LocalEndpoint, SrtpPolicy, answer, offer
from sentiric_media.media.sdp import Direction, SdpError, parse_sdp
from tests.unit import sdp_samples as samples
from tests.unit.sdp_samples import G722, G729, LOCAL, OPUS, SUPPORTED, crlf, m_lines, simple_offer


def negotiate(
    text: str,
    *,
    supported: tuple[Codec, ...] = SUPPORTED,
    preferences: list[Codec] | None = None,
    local: LocalEndpoint = LOCAL,
    srtp_policy: SrtpPolicy = SrtpPolicy.OPTIONAL,
) -> tuple[str, Agreement]:
    """Our answer's text, checked to re-parse, and the agreement."""
    sdp, agreement = answer(
        parse_sdp(text),
        supported=supported,
        preferences=preferences,
        local=local,
        srtp_policy=srtp_policy,
    )
    out = sdp.to_text()
    assert parse_sdp(out) == sdp
    return out, agreement


# --- codec choice --------------------------------------------------------------------------------


def test_asterisk_offer_answered_with_pcmu_and_telephone_event() -> None:
    text, agreement = negotiate(samples.ASTERISK)
    assert text == (
        "v=0\r\n"
        "o=- 4242 1 IN IP4 203.0.113.10\r\n"
        "s=-\r\n"
        "c=IN IP4 203.0.113.10\r\n"
        "t=0 0\r\n"
        "m=audio 40000 RTP/AVP 0 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    )
    assert agreement.send.codec is PCMU
    assert (agreement.send.payload_type, agreement.send.ptime) == (0, 20)
    assert list(agreement.receive) == [0]
    assert agreement.receive[0].codec is PCMU
    assert (agreement.dtmf_payload_type, agreement.dtmf_clock_rate) == (101, 8000)
    assert agreement.remote == ("192.168.1.10", 10000)
    assert agreement.remote_rtcp == ("192.168.1.10", 10001)
    assert not agreement.rtcp_mux
    assert agreement.direction is Direction.SENDRECV
    assert agreement.sends
    assert agreement.receives


def test_the_offerers_order_wins_by_default() -> None:
    _, agreement = negotiate(samples.ASTERISK, supported=(PCMA, PCMU))
    assert agreement.send.codec is PCMU  # Asterisk lists PCMU first


def test_preferences_override_the_offerers_order() -> None:
    text, agreement = negotiate(samples.ASTERISK, preferences=[PCMA, PCMU])
    assert (agreement.send.codec, agreement.send.payload_type) == (PCMA, 8)
    assert m_lines(text) == ["m=audio 40000 RTP/AVP 8 101"]


def test_preferences_restrict_what_is_accepted() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        negotiate(samples.ASTERISK, preferences=[G722])
    assert str(caught.value) == (
        "no codec in common: offer has PCMU/8000, PCMA/8000, GSM/8000; "
        "codec_preferences allow G722 (this service supports opus, G722, PCMU, PCMA)"
    )


def test_freeswitch_offer_gets_opus_with_telephone_event_48000() -> None:
    text, agreement = negotiate(samples.FREESWITCH)
    assert m_lines(text) == ["m=audio 40000 RTP/AVP 102 100"]
    assert "a=rtpmap:102 opus/48000/2\r\na=fmtp:102 useinbandfec=1\r\n" in text
    assert "a=rtpmap:100 telephone-event/48000\r\na=fmtp:100 0-16\r\n" in text
    assert agreement.send.codec is OPUS
    # The encoder follows the peer's fmtp; we receive what we declared.
    assert agreement.send.fmtp["maxaveragebitrate"] == "30000"
    assert agreement.send.fmtp["maxplaybackrate"] == "16000"
    assert agreement.receive[102].fmtp == {"useinbandfec": "1"}
    assert (agreement.dtmf_payload_type, agreement.dtmf_clock_rate) == (100, 48000)
    assert agreement.remote_rtcp == ("10.0.0.5", 24681)  # a=rtcp, not port + 1


def test_freeswitch_offer_with_g722_preferred_uses_telephone_event_8000() -> None:
    text, agreement = negotiate(samples.FREESWITCH, preferences=[G722, PCMU])
    assert m_lines(text) == ["m=audio 40000 RTP/AVP 9 101"]
    assert agreement.send.codec is G722
    assert (agreement.send.clock_rate, agreement.send.sample_rate) == (8000, 16000)
    assert (agreement.dtmf_payload_type, agreement.dtmf_clock_rate) == (101, 8000)


def test_unsupported_codecs_are_skipped() -> None:
    _, agreement = negotiate(samples.LINPHONE, supported=(G722, PCMU, PCMA))
    assert (agreement.send.codec, agreement.send.payload_type) == (PCMU, 0)  # speex skipped
    assert agreement.dtmf_payload_type == 100  # telephone-event/8000, not /48000 nor /16000


def test_linphone_opus_with_rtcp_fb_offer() -> None:
    text, agreement = negotiate(samples.LINPHONE)
    assert m_lines(text) == ["m=audio 40000 RTP/AVP 96 101"]
    assert agreement.send.payload_type == 96
    assert "rtcp-fb" not in text  # we do no RTCP feedback


def test_opus_offered_with_telephone_event_only_at_8000_gets_no_dtmf() -> None:
    offered = simple_offer(
        "a=rtpmap:111 opus/48000/2\na=rtpmap:101 telephone-event/8000\n", formats="111 101"
    )
    text, agreement = negotiate(offered)
    assert m_lines(text) == ["m=audio 40000 RTP/AVP 111"]
    assert "telephone-event" not in text
    assert agreement.dtmf_payload_type is None
    assert agreement.dtmf_clock_rate is None


def test_opus_needs_two_channels_and_rates_must_match() -> None:
    offered = simple_offer(
        "a=rtpmap:96 opus/48000\na=rtpmap:97 G722/16000\na=rtpmap:98 PCMU/16000\n",
        formats="96 97 98 8",
    )
    _, agreement = negotiate(offered)
    assert agreement.send.codec is PCMA  # the first offered codec that matches exactly


def test_encoding_names_match_in_any_case() -> None:
    _, agreement = negotiate(simple_offer("a=rtpmap:97 OPUS/48000/2\n", formats="97 0"))
    assert (agreement.send.codec, agreement.send.payload_type) == (OPUS, 97)


def test_carrier_g729_answered_with_annexb_no() -> None:
    text, agreement = negotiate(samples.CARRIER, supported=(G729, PCMA))
    assert "a=rtpmap:18 G729/8000\r\na=fmtp:18 annexb=no\r\n" in text
    assert "a=fmtp:101 0-15\r\n" in text  # the peer's event list, echoed
    assert agreement.send.fmtp == {"annexb": "yes"}  # what the peer said it receives
    assert agreement.remote == ("203.0.113.51", 31338)  # c=, not o=


def test_ffmpeg_sdp_files() -> None:
    _, agreement = negotiate(samples.FFMPEG_OPUS)
    assert (agreement.send.codec, agreement.send.payload_type) == (OPUS, 97)
    assert agreement.send.fmtp == {"sprop-stereo": "1"}
    assert agreement.remote == ("127.0.0.1", 40000)
    assert agreement.dtmf_payload_type is None
    _, agreement = negotiate(samples.FFMPEG_G722)
    assert (agreement.send.codec, agreement.send.payload_type) == (G722, 9)


def test_the_real_registry_codecs_negotiate_too() -> None:
    supported = tuple(codecs.CODECS.values())
    _, agreement = negotiate(samples.ASTERISK, supported=supported)
    assert agreement.send.codec is codecs.PCMU
    if codecs.find_codec("opus") is not None:
        _, agreement = negotiate(samples.FREESWITCH, supported=supported)
        assert agreement.send.codec is codecs.find_codec("opus")
        assert (
            "minptime=10"
            in answer(parse_sdp(samples.FREESWITCH), supported=supported, local=LOCAL)[0].to_text()
        )


# --- ptime, rtcp, direction ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ptime", "codec_rtpmap", "expected"),
    [
        ("a=ptime:30\n", "", 30),
        ("a=ptime:10\n", "", 10),
        ("a=ptime:60\n", "", 60),
        ("a=ptime:5\n", "", 20),  # below 10 ms: our default
        ("a=ptime:80\n", "", 20),  # above 60 ms: our default
        ("", "", 20),
        ("a=maxptime:10\n", "", 10),  # no ptime, but our default would exceed maxptime
        ("a=ptime:30\n", "a=rtpmap:111 opus/48000/2\n", 20),  # opus has no 30 ms frame
        ("a=ptime:40\n", "a=rtpmap:111 opus/48000/2\n", 40),
    ],
)
def test_ptime_of_the_peer_is_what_we_send(ptime: str, codec_rtpmap: str, expected: int) -> None:
    formats = "111" if codec_rtpmap else "0"
    text, agreement = negotiate(simple_offer(codec_rtpmap + ptime, formats=formats))
    assert agreement.send.ptime == expected
    assert f"a=ptime:{expected}\r\n" in text


def test_peer_ptime_outside_10_to_60_is_ignored_even_if_the_codec_could() -> None:
    long_packets = Codec(
        "PCMU", 8000, 8000, PCMU.new_encoder, PCMU.new_decoder, 0, ptimes=(20, 5, 80)
    )
    for ptime in (5, 80):
        _, agreement = negotiate(simple_offer(f"a=ptime:{ptime}\n"), supported=(long_packets,))
        assert agreement.send.ptime == 20


def test_rtcp_mux_is_echoed() -> None:
    text, agreement = negotiate(simple_offer("a=rtcp-mux\n"))
    assert "a=rtcp-mux\r\n" in text
    assert agreement.rtcp_mux
    assert agreement.remote_rtcp is None
    text, agreement = negotiate(simple_offer(""))
    assert "rtcp-mux" not in text
    assert agreement.remote_rtcp == ("192.0.2.1", 5001)


@pytest.mark.parametrize(
    ("offered", "ours"),
    [
        (Direction.SENDRECV, Direction.SENDRECV),
        (Direction.SENDONLY, Direction.RECVONLY),
        (Direction.RECVONLY, Direction.SENDONLY),
        (Direction.INACTIVE, Direction.INACTIVE),
    ],
)
def test_direction_is_mirrored(offered: Direction, ours: Direction) -> None:
    text, agreement = negotiate(simple_offer(f"a={offered}\n"))
    assert agreement.direction is ours
    assert (agreement.sends, agreement.receives) == (offered.receives, offered.sends)
    assert text.endswith(f"a={ours}\r\n")
    assert agreement.remote == ("192.0.2.1", 5000)


def test_session_level_sendonly_is_hold() -> None:
    offered = crlf(
        "v=0\no=- 7 8 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\na=sendonly\n"
        "m=audio 5000 RTP/AVP 0\n"
    )
    _, agreement = negotiate(offered)
    assert agreement.direction is Direction.RECVONLY
    assert not agreement.sends


@pytest.mark.parametrize(
    ("connection", "attribute", "ours"),
    [
        ("IN IP4 0.0.0.0", "", Direction.RECVONLY),
        ("IN IP4 0.0.0.0", "a=sendonly\n", Direction.RECVONLY),
        ("IN IP4 0.0.0.0", "a=recvonly\n", Direction.INACTIVE),
        ("IN IP6 ::", "", Direction.RECVONLY),
    ],
)
def test_old_style_hold_means_we_send_nothing(
    connection: str, attribute: str, ours: Direction
) -> None:
    text, agreement = negotiate(simple_offer(attribute, connection=connection))
    assert agreement.direction is ours
    assert not agreement.sends
    assert agreement.remote is None
    assert agreement.remote_rtcp is None
    assert text.endswith(f"a={ours}\r\n")
    assert "c=IN IP4 203.0.113.10\r\n" in text  # our own address still: we do receive


# --- our SDP -------------------------------------------------------------------------------------


def test_origin_is_ours_and_the_caller_raises_the_version() -> None:
    first, _ = negotiate(samples.ASTERISK, local=LocalEndpoint("203.0.113.10", 40000, 77, 1))
    second, _ = negotiate(samples.ASTERISK, local=LocalEndpoint("203.0.113.10", 40000, 77, 2))
    assert "o=- 77 1 IN IP4 203.0.113.10\r\n" in first
    assert "o=- 77 2 IN IP4 203.0.113.10\r\n" in second
    assert first.replace("77 1", "77 2") == second


def test_ipv6_offer_and_ipv6_local_address() -> None:
    text, agreement = negotiate(samples.IPV6, local=LocalEndpoint("2001:db8::1", 40002, 5, 1))
    assert agreement.remote == ("2001:db8::10", 30000)  # normalised
    assert "o=- 5 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\n" in text
    assert m_lines(text) == ["m=audio 40002 RTP/AVP 8 101"]


def test_video_is_refused_with_port_zero_in_place() -> None:
    text, agreement = negotiate(samples.AUDIO_VIDEO)
    assert m_lines(text) == ["m=audio 40000 RTP/AVP 0", "m=video 0 RTP/AVP 31 99"]
    assert text.endswith("m=video 0 RTP/AVP 31 99\r\n")  # no attributes for a refused stream
    assert agreement.send.codec is PCMU


def test_t38_image_is_refused_with_port_zero() -> None:
    text, _ = negotiate(samples.AUDIO_T38)
    assert m_lines(text) == ["m=audio 40000 RTP/AVP 8 101", "m=image 0 udptl t38"]


def test_the_first_audio_line_with_a_common_codec_is_answered() -> None:
    offered = crlf(
        "v=0\no=- 7 7 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
        "m=audio 0 RTP/AVP 0\n"
        "m=audio 5000 RTP/AVP 97\na=rtpmap:97 speex/8000\n"
        "m=audio 5002 RTP/AVP 8\n"
        "m=application 5004 UDP/BFCP *\n"
    )
    text, agreement = negotiate(offered)
    assert m_lines(text) == [
        "m=audio 0 RTP/AVP 0",
        "m=audio 0 RTP/AVP 97",
        "m=audio 40000 RTP/AVP 8",
        "m=application 0 UDP/BFCP *",
    ]
    assert agreement.remote == ("192.0.2.1", 5002)


def test_a_plain_rtp_alternative_beats_an_srtp_line() -> None:
    offered = crlf(
        "v=0\no=- 7 7 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
        "m=audio 5000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc\n"
        "m=audio 5002 RTP/AVP 0\n"
    )
    text, agreement = negotiate(offered)
    assert m_lines(text) == ["m=audio 0 RTP/SAVP 0", "m=audio 40000 RTP/AVP 0"]
    assert agreement.remote == ("192.0.2.1", 5002)


def test_avpf_is_answered_as_avpf() -> None:
    text, _ = negotiate(simple_offer("").replace("RTP/AVP", "RTP/AVPF"))
    assert m_lines(text) == ["m=audio 40000 RTP/AVPF 0"]


# --- refusals ------------------------------------------------------------------------------------


def test_no_codec_in_common_names_both_sides() -> None:
    offered = simple_offer("a=rtpmap:101 telephone-event/8000\n", formats="18 3 101")
    with pytest.raises(FailedPrecondition) as caught:
        negotiate(offered)
    assert str(caught.value) == (
        "no codec in common: offer has G729/8000, GSM/8000; "
        "this service supports opus, G722, PCMU, PCMA"
    )


def test_no_codec_in_common_names_dynamic_types_without_rtpmap() -> None:
    with pytest.raises(FailedPrecondition, match=r"offer has PT 96 \(no rtpmap\)"):
        negotiate(simple_offer("", formats="96"))


@pytest.mark.parametrize("name", ["WEBRTC", "SAVP"])
def test_srtp_only_offers_are_refused_for_now(name: str) -> None:
    offered = (
        samples.WEBRTC if name == "WEBRTC" else simple_offer("").replace("RTP/AVP", "RTP/SAVP")
    )
    proto = "UDP/TLS/RTP/SAVPF" if name == "WEBRTC" else "RTP/SAVP"
    for policy in (SrtpPolicy.OPTIONAL, SrtpPolicy.DISABLED):
        with pytest.raises(FailedPrecondition) as caught:
            negotiate(offered, srtp_policy=policy)
        assert str(caught.value) == f"SRTP is not supported yet (offer is {proto})"


def test_srtp_required_cannot_be_met_yet() -> None:
    with pytest.raises(FailedPrecondition, match=r"SRTP is not available yet.*REQUIRED"):
        negotiate(samples.ASTERISK, srtp_policy=SrtpPolicy.REQUIRED)
    with pytest.raises(FailedPrecondition, match="SRTP is not available yet"):
        offer(codecs=SUPPORTED, local=LOCAL, srtp_policy=SrtpPolicy.REQUIRED)


def test_an_offer_without_audio_is_refused() -> None:
    offered = crlf(
        "v=0\no=- 7 7 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n"
        "m=image 5000 udptl t38\nm=video 5002 RTP/AVP 31\n"
    )
    with pytest.raises(FailedPrecondition, match=r"no audio m-line \(it offers image, video\)"):
        negotiate(offered)
    with pytest.raises(FailedPrecondition, match="every audio port is 0"):
        negotiate(simple_offer("", port=0))


def test_a_host_name_in_c_is_invalid_argument() -> None:
    with pytest.raises(SdpError, match=r"'pbx\.example\.com' is not an IP address"):
        negotiate(simple_offer("", connection="IN IP4 pbx.example.com"))
