"""NegotiateSdp against the real server: every status, the form of our SDP, what it changes."""

from __future__ import annotations

import asyncio
import base64
import ctypes
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.media.codecs import CODECS
from sentiric_media.media.rtp import build_rtp
from tests.integration.helpers import (
    allocate,
    decoded,
    play,
    resample,
    rpc_error,
    rtp_packets,
    send_paced,
    speech,
    wait_until,
    wav_uri,
)
from tests.support import UdpPeer, best_alignment, read_wav

KEY = base64.b64encode(bytes(range(30))).decode()
CRYPTO = f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}"
SHORT = speech()[8000:16000]  # 1 s of speech at 8 kHz: a short prompt


def sdp(port: int, formats: str = "0", *attributes: str, proto: str = "RTP/AVP") -> str:
    """A peer's audio SDP on 127.0.0.1 with LF line ends (we accept LF from peers)."""
    rtpmaps = {"0": "PCMU/8000", "8": "PCMA/8000", "9": "G722/8000", "101": "telephone-event/8000"}
    lines = ["v=0", "o=peer 4242 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"]
    lines.append(f"m=audio {port} {proto} {formats}")
    lines += [f"a=rtpmap:{pt} {rtpmaps[pt]}" for pt in formats.split() if pt in rtpmaps]
    return "\n".join([*lines, *attributes]) + "\n"


async def negotiate(
    stub, port: int, remote: str, kind: int = pb.SDP_TYPE_OFFER, **fields
) -> pb.NegotiateSdpResponse:
    request = pb.NegotiateSdpRequest(server_rtp_port=port, remote_sdp=remote, type=kind, **fields)
    return await stub.NegotiateSdp(request)


def lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def audio_formats(text: str) -> list[str]:
    (m_line,) = lines(text, "m=audio ")
    return m_line.split()[3:]


def rtpmaps(text: str) -> dict[str, str]:
    return dict(line[len("a=rtpmap:") :].split(" ", 1) for line in lines(text, "a=rtpmap:"))


def direction(text: str) -> str:
    found = [a for a in ("sendrecv", "sendonly", "recvonly", "inactive") if f"a={a}" in text]
    assert len(found) <= 1, text
    return found[0] if found else "sendrecv"


def rtp_only(peer: UdpPeer) -> list:
    """What the peer received, RTCP (RFC 5761 payload types 72–76) left out."""
    return [p for p in peer.packets if not 72 <= p.payload_type <= 76]


def timestamp_steps(packets: list) -> set[int]:
    stamps = np.array([p.timestamp for p in packets], dtype=np.int64)
    return set((np.diff(stamps) % (1 << 32)).tolist())


async def test_unknown_port_is_not_found(stub) -> None:
    details = await rpc_error(negotiate(stub, 1000, sdp(4000)), grpc.StatusCode.NOT_FOUND)
    assert "1000" in details


@pytest.mark.parametrize(
    ("line", "bad_line", "named"),
    [
        ("m=audio 4000 RTP/AVP 0", "m=audio notaport RTP/AVP 0", "notaport"),
        ("m=audio 4000 RTP/AVP 0", "m=audio 70000 RTP/AVP 0", "70000"),
        ("t=0 0", "t=0 0\nthis is not sdp", "this is not sdp"),
    ],
)
async def test_malformed_sdp_is_invalid_argument_naming_the_line(
    stub, line, bad_line, named
) -> None:
    port = await allocate(stub, "sdp-bad")
    text = sdp(4000).replace(line, bad_line)
    details = await rpc_error(negotiate(stub, port, text), grpc.StatusCode.INVALID_ARGUMENT)
    assert named in details


async def test_unknown_codec_preference_is_invalid_argument(stub) -> None:
    port = await allocate(stub, "sdp-pref")
    call = negotiate(stub, port, sdp(4000), codec_preferences=["PCMU", "speex"])
    assert "speex" in await rpc_error(call, grpc.StatusCode.INVALID_ARGUMENT)


async def test_codec_preferences_win_over_the_offer_order(stub) -> None:
    port = await allocate(stub, "sdp-pref-order")
    reply = await negotiate(stub, port, sdp(4000, "0 8"), codec_preferences=["pcma", "PCMU"])
    assert (reply.codec, reply.payload_type) == ("PCMA", 8)
    assert audio_formats(reply.local_sdp) == ["8"]


async def test_no_codec_in_common_names_both_sides(stub) -> None:
    port = await allocate(stub, "sdp-none")
    text = sdp(4000, "96 97", "a=rtpmap:96 AMR/8000", "a=rtpmap:97 iLBC/8000")
    details = await rpc_error(negotiate(stub, port, text), grpc.StatusCode.FAILED_PRECONDITION)
    for name in ("AMR", "iLBC", "PCMU", "PCMA"):  # offered, and some of what we support
        assert name.lower() in details.lower(), details


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        (sdp(4000, "0", CRYPTO, proto="RTP/SAVP"), pb.SRTP_POLICY_DISABLED),
        (sdp(4000, "0"), pb.SRTP_POLICY_REQUIRED),
    ],
    ids=["srtp-only-offer-srtp-disabled", "plain-offer-srtp-required"],
)
async def test_srtp_policy_mismatch_is_failed_precondition(stub, text, policy) -> None:
    port = await allocate(stub, "sdp-srtp")
    call = negotiate(stub, port, text, srtp=policy)
    assert await rpc_error(call, grpc.StatusCode.FAILED_PRECONDITION)


async def test_wildcard_listen_address_needs_an_address_for_c(make_service) -> None:
    _, stub = await make_service(rtp_listen_address="0.0.0.0", RTP_SERVICE_ADVERTISED_ADDRESS=None)
    port = await allocate(stub, "sdp-wildcard")
    details = await rpc_error(negotiate(stub, port, sdp(4000)), grpc.StatusCode.FAILED_PRECONDITION)
    assert "RTP_SERVICE_ADVERTISED_ADDRESS" in details
    reply = await negotiate(stub, port, sdp(4000), public_address="203.0.113.9")
    assert set(lines(reply.local_sdp, "c=")) == {"c=IN IP4 203.0.113.9"}


@pytest.mark.parametrize(
    ("advertised", "public", "expected"),
    [
        (None, "", "127.0.0.1"),  # the listen address (not a wildcard)
        ("198.51.100.2", "", "198.51.100.2"),
        ("198.51.100.2", "203.0.113.9", "203.0.113.9"),  # public_address wins
    ],
)
async def test_address_in_c_line(make_service, advertised, public, expected) -> None:
    _, stub = await make_service(RTP_SERVICE_ADVERTISED_ADDRESS=advertised)
    port = await allocate(stub, "sdp-address")
    for remote in (sdp(4000), ""):  # our answer, and our offer
        reply = await negotiate(stub, port, remote, public_address=public)
        assert set(lines(reply.local_sdp, "c=")) == {f"c=IN IP4 {expected}"}, reply.local_sdp


async def test_answer_form_crlf_telephone_event_and_o_line(stub, peer) -> None:
    port = await allocate(stub, "sdp-form")
    offer = sdp(peer.address[1], "0 8 101", "a=fmtp:101 0-16")
    reply = await negotiate(stub, port, offer)
    assert (reply.codec, reply.payload_type, reply.clock_rate) == ("PCMU", 0, 8000)
    assert (reply.dtmf_payload_type, reply.srtp_suite) == (101, "")
    assert reply.remote_rtp_addr == peer.address_text
    answer = reply.local_sdp
    assert answer.endswith("\r\n"), repr(answer)
    assert "\n" not in answer.replace("\r\n", ""), f"every line ends with CRLF: {answer!r}"
    assert answer.startswith("v=0\r\n")
    for kind in ("o=", "s=", "t="):
        assert len(lines(answer, kind)) == 1, f"{kind} once:\n{answer}"
    assert set(lines(answer, "c=")) == {"c=IN IP4 127.0.0.1"}
    assert lines(answer, "m=") == [f"m=audio {port} RTP/AVP 0 101"]
    assert rtpmaps(answer) == {"0": "PCMU/8000", "101": "telephone-event/8000"}
    again = await negotiate(stub, port, offer)
    first, second = lines(answer, "o=")[0].split(), lines(again.local_sdp, "o=")[0].split()
    assert first[1] == second[1], "the o= session id must stay for the session"
    assert int(second[2]) > int(first[2]), "the o= version must grow with each new SDP"


async def test_other_m_lines_are_refused_with_port_zero_in_order(stub) -> None:
    port = await allocate(stub, "sdp-video")
    audio = sdp(4000)
    head, _, tail = audio.partition("m=audio")
    offer = head + "m=video 4002 RTP/AVP 96\na=rtpmap:96 VP8/90000\nm=audio" + tail
    reply = await negotiate(stub, port, offer)
    kinds = [line.split()[:2] for line in lines(reply.local_sdp, "m=")]
    assert kinds == [["m=video", "0"], ["m=audio", str(port)]], reply.local_sdp


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive")],
)
async def test_direction_is_mirrored(stub, theirs, ours) -> None:
    port = await allocate(stub, "sdp-direction")
    reply = await negotiate(stub, port, sdp(4000, "0", f"a={theirs}"))
    assert direction(reply.local_sdp) == ours


async def test_sendonly_peer_gets_no_rtp_until_a_sendrecv_reoffer(stub, peer) -> None:
    port = await allocate(stub, "sdp-sendonly")
    reply = await negotiate(stub, port, sdp(peer.address[1], "0", "a=sendonly"))
    assert direction(reply.local_sdp) == "recvonly"
    assert (await play(stub, port, wav_uri(SHORT))).success
    await asyncio.sleep(0.5)  # a quiet spell is what is asserted: nothing may come in it
    assert rtp_only(peer) == [], "RTP sent to a peer that said sendonly"
    reply = await negotiate(stub, port, sdp(peer.address[1], "0", "a=sendrecv"))
    assert direction(reply.local_sdp) == "sendrecv"
    assert (await play(stub, port, wav_uri(SHORT))).success
    assert await wait_until(lambda: len(rtp_only(peer)) >= 50, 4), "no prompt after sendrecv"
    await peer.wait_quiet(0.3, 4)
    score, _ = best_alignment(SHORT, decoded(peer))
    assert score >= 0.9


def expected_offer_codecs() -> list[str]:
    """The default MEDIA_SERVICE_CODECS order; G.729 only where libbcg729 is installed."""
    try:
        ctypes.CDLL("libbcg729.so.0")
    except OSError:
        return ["opus", "G722", "PCMU", "PCMA"]
    return ["opus", "G722", "PCMU", "PCMA", "G729"]


async def test_our_offer_then_the_peer_answer_picks_pcma(stub, peer) -> None:
    port = await allocate(stub, "sdp-our-offer")
    made = await negotiate(stub, port, "")
    ours = made.local_sdp
    assert ours.endswith("\r\n")
    assert "\n" not in ours.replace("\r\n", ""), f"every line ends with CRLF: {ours!r}"
    assert set(lines(ours, "c=")) == {"c=IN IP4 127.0.0.1"}
    assert audio_formats(ours) == list(rtpmaps(ours)), "every payload type has its rtpmap"
    maps = [rtpmaps(ours)[pt] for pt in audio_formats(ours)]
    assert [m.split("/")[0] for m in maps if "telephone-event" not in m] == expected_offer_codecs()
    assert {"opus/48000/2", "G722/8000"} <= set(maps), maps
    events = {m: pt for pt, m in rtpmaps(ours).items() if m.startswith("telephone-event/")}
    assert set(events) == {"telephone-event/8000", "telephone-event/48000"}
    event_pt = events["telephone-event/8000"]
    answer = sdp(peer.address[1], f"8 {event_pt}", f"a=rtpmap:{event_pt} telephone-event/8000")
    reply = await negotiate(stub, port, answer, pb.SDP_TYPE_ANSWER)
    assert (reply.codec, reply.payload_type, reply.clock_rate) == ("PCMA", 8, 8000)
    assert (reply.dtmf_payload_type, reply.remote_rtp_addr) == (int(event_pt), peer.address_text)
    assert (await play(stub, port, wav_uri(SHORT))).success
    assert await wait_until(lambda: len(rtp_only(peer)) >= 10, 3)
    assert {p.payload_type for p in rtp_only(peer)} == {8}, "the agreed PCMA is what is sent"


async def test_our_offer_honours_codec_preferences(stub) -> None:
    port = await allocate(stub, "sdp-offer-prefs")
    ours = (await negotiate(stub, port, "", codec_preferences=["PCMA", "pcmu"])).local_sdp
    maps = [rtpmaps(ours)[pt] for pt in audio_formats(ours)]
    assert maps == ["PCMA/8000", "PCMU/8000", "telephone-event/8000"], ours


async def test_answer_without_an_offer_is_failed_precondition(stub) -> None:
    port = await allocate(stub, "sdp-no-offer")
    call = negotiate(stub, port, sdp(4000, "8"), pb.SDP_TYPE_ANSWER)
    assert await rpc_error(call, grpc.StatusCode.FAILED_PRECONDITION)


async def send_g722(peer: UdpPeer, port: int, pcm16k: np.ndarray, sequence: int, stamp: int):
    """`pcm16k` as 20 ms G.722 packets (PT 9): 320 samples each, timestamps +160 (8 kHz clock)."""
    encoder = CODECS["g722"].format().new_encoder()
    start = time.monotonic()
    for index in range(len(pcm16k) // 320):
        delay = start + index * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        payload = encoder.encode(pcm16k[index * 320 : (index + 1) * 320])
        packet = build_rtp(9, sequence + index, stamp + 160 * index, 0x1234ABCD, payload, False)
        peer.send(packet, port)


async def test_reoffer_pcmu_to_g722_keeps_session_recording_and_live_stream(
    stub, peer, tmp_path: Path
) -> None:
    port = await allocate(stub, "sdp-switch")
    assert (await negotiate(stub, port, sdp(peer.address[1], "0"))).codec == "PCMU"
    started = time.monotonic()
    await stub.StartRecording(
        pb.StartRecordingRequest(server_rtp_port=port, output_uri="file://switch.wav")
    )
    live: list[tuple[float, bytes]] = []
    stream = stub.RecordAudio(pb.RecordAudioRequest(server_rtp_port=port))

    async def read() -> None:
        async for message in stream:
            live.append((time.monotonic(), message.audio_data))

    reader = asyncio.create_task(read())
    first, second = speech()[8000:16000], speech()[24000:32000]
    talking = time.monotonic()
    await send_paced(peer, port, rtp_packets(first))  # 1 s of PCMU, seq 1000.., ts 5000..
    reply = await negotiate(stub, port, sdp(peer.address[1], "9"))
    switched = time.monotonic()
    assert (reply.codec, reply.payload_type, reply.clock_rate) == ("G722", 9, 8000)
    # The same phone goes on in G.722: same SSRC, sequence and RTP clock run on.
    stamp = 5000 + round((switched - talking) * 8000)
    await send_g722(peer, port, resample(second, 8000, 16000), 1050, stamp)
    peer.packets.clear()
    assert (await play(stub, port, wav_uri(SHORT))).success
    assert await wait_until(lambda: len(rtp_only(peer)) >= 10, 3), "no G.722 from the service"
    await asyncio.sleep(0.3)
    sent = sorted(rtp_only(peer), key=lambda p: p.sequence)
    assert {p.payload_type for p in sent} == {9}
    assert {len(p.payload) for p in sent} == {160}, "20 ms of G.722 is 160 bytes"
    steps = timestamp_steps(sent)
    assert steps == {160}, f"G.722 timestamps advance 160 per 20 ms (8 kHz clock): {steps}"
    stopped_at = time.monotonic()
    stopped = await stub.StopRecording(pb.StopRecordingRequest(server_rtp_port=port))
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    await asyncio.wait_for(reader, 5)

    assert [m for m in live if m[0] > switched + 1], "the live stream stopped at the switch"
    audio = np.frombuffer(b"".join(data for _, data in live), dtype="<i2")
    wall = live[-1][0] - live[0][0] + 0.02
    assert abs(len(audio) / 16000 - wall) <= 0.1, "the live stream is not continuous in time"
    for name, part in (("PCMU", first), ("G722", second)):
        score, _ = best_alignment(resample(part, 8000, 16000), audio)
        assert score >= 0.85, f"the {name} part in the live stream: correlation {score:.3f}"
    assert stopped.recording_uri == "file://switch.wav"
    recorded, rate = read_wav(tmp_path / "recordings" / "switch.wav")
    assert abs(len(recorded) / rate - (stopped_at - started)) <= 0.1
    assert abs(stopped.duration_ms / 1000 - len(recorded) / rate) <= 0.02
    for name, part in (("PCMU", first), ("G722", second)):
        score, _ = best_alignment(resample(part, 8000, rate), recorded)
        assert score >= 0.8, f"the {name} part in the recording: correlation {score:.3f}"


@pytest.mark.parametrize(("ptime", "size"), [(40, 320), (10, 80)])
async def test_peer_ptime_sets_our_packet_size(stub, peer, ptime, size) -> None:
    port = await allocate(stub, f"sdp-ptime-{ptime}")
    await negotiate(stub, port, sdp(peer.address[1], "0", f"a=ptime:{ptime}"))
    assert (await play(stub, port, wav_uri(SHORT))).success
    assert await wait_until(lambda: len(rtp_only(peer)) >= 8000 // size, 4)
    await peer.wait_quiet(0.3, 3)
    packets = sorted(rtp_only(peer), key=lambda p: p.sequence)
    assert {len(p.payload) for p in packets[:-1]} == {size}, f"{ptime} ms of PCMU"
    assert timestamp_steps(packets) == {size}
    mean = (packets[-1].arrival - packets[0].arrival) / (len(packets) - 1) * 1000
    assert abs(mean - ptime) <= 2, f"one packet per {mean:.1f} ms on average"
    score, _ = best_alignment(SHORT, decoded(peer))
    assert score >= 0.9
