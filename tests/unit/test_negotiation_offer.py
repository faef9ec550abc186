"""Our offer (media/negotiation `offer`) and the peer's answer to it (`accept_answer`).

Also the small API pieces around negotiation: `resolve_preferences` for
`codec_preferences` and the contract's `SrtpPolicy` numbers.
"""

from __future__ import annotations

import pytest

from sentiric_media.errors import FailedPrecondition, InvalidArgument
from sentiric_media.media.codecs import PCMA, PCMU, Codec
from sentiric_media.media.negotiation import (
    LocalEndpoint,
    SrtpPolicy,
    accept_answer,
    answer,
    offer,
    resolve_preferences,
)
from sentiric_media.media.sdp import Direction, SessionDescription, parse_sdp
from tests.unit.sdp_samples import G722, G729, LOCAL, OPUS, SUPPORTED, crlf, m_lines


def test_our_offer_lists_every_codec_and_telephone_event_per_clock_rate() -> None:
    sdp, state = offer(codecs=(OPUS, G722, PCMU, PCMA, G729), local=LOCAL)
    text = sdp.to_text()
    assert text == (
        "v=0\r\n"
        "o=- 4242 1 IN IP4 203.0.113.10\r\n"
        "s=-\r\n"
        "c=IN IP4 203.0.113.10\r\n"
        "t=0 0\r\n"
        "m=audio 40000 RTP/AVP 111 9 0 8 18 101 110\r\n"
        "a=rtpmap:111 opus/48000/2\r\n"
        "a=fmtp:111 useinbandfec=1\r\n"
        "a=rtpmap:9 G722/8000\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:18 G729/8000\r\n"
        "a=fmtp:18 annexb=no\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\n"
        "a=rtpmap:110 telephone-event/48000\r\n"
        "a=fmtp:110 0-16\r\n"
        "a=ptime:20\r\n"
        "a=rtcp-mux\r\n"
        "a=sendrecv\r\n"
    )
    assert parse_sdp(text) == sdp
    assert state.formats == {111: OPUS, 9: G722, 0: PCMU, 8: PCMA, 18: G729}
    assert state.dtmf == {8000: 101, 48000: 110}


def test_our_offer_without_opus_has_only_telephone_event_8000() -> None:
    sdp, state = offer(codecs=(PCMA,), local=LOCAL)
    assert m_lines(sdp.to_text()) == ["m=audio 40000 RTP/AVP 8 101"]
    assert state.dtmf == {8000: 101}


def test_other_dynamic_codecs_get_free_numbers_from_96() -> None:
    wideband = Codec("L16", 16000, 16000, PCMU.new_encoder, PCMU.new_decoder)
    _, state = offer(codecs=(wideband, PCMU), local=LOCAL)
    assert state.formats == {96: wideband, 0: PCMU}
    assert state.dtmf == {8000: 101, 16000: 97}


def peer_answer(body: str, *, formats: str, port: int = 6000) -> SessionDescription:
    return parse_sdp(
        crlf(
            "v=0\no=peer 1 1 IN IP4 198.51.100.9\ns=-\nc=IN IP4 198.51.100.9\nt=0 0\n"
            f"m=audio {port} RTP/AVP {formats}\n{body}"
        )
    )


def test_accept_answer_with_the_offered_numbers() -> None:
    _, state = offer(codecs=SUPPORTED, local=LOCAL)
    agreement = accept_answer(
        peer_answer("a=rtpmap:101 telephone-event/8000\na=ptime:30\na=rtcp-mux\n", formats="8 101"),
        state,
    )
    assert (agreement.send.codec, agreement.send.payload_type, agreement.send.ptime) == (
        PCMA,
        8,
        30,
    )
    assert list(agreement.receive) == [8]
    assert agreement.dtmf_payload_type == 101
    assert agreement.remote == ("198.51.100.9", 6000)
    assert agreement.rtcp_mux
    assert agreement.remote_rtcp is None
    assert agreement.direction is Direction.SENDRECV


def test_accept_answer_with_a_different_payload_type_for_the_same_codec() -> None:
    _, state = offer(codecs=SUPPORTED, local=LOCAL)
    agreement = accept_answer(
        peer_answer(
            "a=rtpmap:96 opus/48000/2\na=fmtp:96 maxaveragebitrate=20000\n"
            "a=rtpmap:97 telephone-event/48000\n",
            formats="96 97",
        ),
        state,
    )
    assert (agreement.send.codec, agreement.send.payload_type) == (OPUS, 96)
    assert agreement.send.fmtp == {"maxaveragebitrate": "20000"}
    assert set(agreement.receive) == {111, 96}  # ours per RFC 3264, and theirs for sloppy peers
    assert (agreement.dtmf_payload_type, agreement.dtmf_clock_rate) == (97, 48000)
    assert not agreement.rtcp_mux
    assert agreement.remote_rtcp == ("198.51.100.9", 6001)


def test_accept_answer_by_number_without_rtpmap() -> None:
    _, state = offer(codecs=SUPPORTED, local=LOCAL)
    agreement = accept_answer(peer_answer("a=recvonly\n", formats="111"), state)
    assert agreement.send.codec is OPUS
    assert agreement.direction is Direction.SENDONLY


def test_accept_answer_refusals() -> None:
    _, state = offer(codecs=(PCMU, PCMA), local=LOCAL)
    with pytest.raises(FailedPrecondition, match="refused our audio stream"):
        accept_answer(peer_answer("", formats="0", port=0), state)
    with pytest.raises(FailedPrecondition) as caught:
        accept_answer(peer_answer("a=rtpmap:101 telephone-event/8000\n", formats="3 101"), state)
    assert str(caught.value) == (
        "no codec in common: answer has GSM/8000; we offered PCMU/8000, PCMA/8000"
    )
    with pytest.raises(FailedPrecondition, match="no audio m-line"):
        accept_answer(
            parse_sdp(crlf("v=0\no=p 1 1 IN IP4 198.51.100.9\ns=-\nt=0 0\nm=image 0 udptl t38\n")),
            state,
        )


def test_offer_answer_round_trip_between_two_services() -> None:
    """Our offer, answered by another instance supporting only PCMA, accepted by us."""
    ours, state = offer(codecs=SUPPORTED, local=LOCAL)
    peer = LocalEndpoint("198.51.100.9", 6000, 99, 1)
    their_answer, their_agreement = answer(parse_sdp(ours.to_text()), supported=(PCMA,), local=peer)
    assert (their_agreement.send.codec, their_agreement.remote) == (PCMA, ("203.0.113.10", 40000))
    agreement = accept_answer(parse_sdp(their_answer.to_text()), state)
    assert (agreement.send.codec, agreement.send.payload_type) == (PCMA, 8)
    assert agreement.remote == ("198.51.100.9", 6000)
    assert agreement.dtmf_payload_type == 101
    assert agreement.rtcp_mux
    assert their_agreement.rtcp_mux


def test_resolve_preferences() -> None:
    assert resolve_preferences(["pcma", "OPUS", "PCMA"], SUPPORTED) == [PCMA, OPUS]
    with pytest.raises(InvalidArgument) as caught:
        resolve_preferences(["PCMU", "G729", "speex"], SUPPORTED)
    assert str(caught.value) == (
        "codec_preferences names codecs this service does not support: 'G729', 'speex' "
        "(supported: opus, G722, PCMU, PCMA)"
    )


def test_srtp_policy_numbers_are_the_contracts() -> None:
    assert [(p.name, p.value) for p in SrtpPolicy] == [
        ("OPTIONAL", 0),
        ("REQUIRED", 1),
        ("DISABLED", 2),
    ]
