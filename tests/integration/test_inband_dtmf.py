"""In-band DTMF over real UDP and gRPC: tones in the caller's PCMU audio are `dtmf` events
(source `inband`), a press sent both ways is one event, and speech gives none."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.media.codecs.g711 import ULAW
from sentiric_media.media.dtmf import build_event
from sentiric_media.media.rtp import build_rtp
from tests.integration.helpers import (
    allocate,
    drain,
    read_messages,
    rtp_packets,
    send_paced,
    speech,
    wait_until,
)
from tests.integration.test_stream_events import _press

RATE = 8000
SSRC = 0x1D7F
# ITU-T Q.23, written out here rather than taken from the service.
FREQUENCIES = {"1": (697, 1209), "5": (770, 1336), "#": (941, 1477), "0": (941, 1336)}
PEAK = 7150  # about -10 dBm0 per tone


def tones(key: str, ms: int) -> np.ndarray:
    t = np.arange(RATE * ms // 1000) / RATE
    low, high = FREQUENCIES[key]
    return (PEAK * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))).astype(np.int16)


def silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, dtype=np.int16)


async def _subscribe(service, stub, port: int):
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port))
    assert await wait_until(lambda: service.manager.events._by_port.get(port), 2.0)
    return call


async def test_tones_in_the_audio_are_inband_digits_at_their_time(service, stub, peer):
    port = await allocate(stub, "inband-digits")
    call = await _subscribe(service, stub, port)
    session = service.manager.by_port[port]
    keys = "15#"
    audio = np.concatenate(
        [silence(200)] + [np.concatenate([tones(key, 100), silence(200)]) for key in keys]
    )
    started = (time.monotonic() - session.created_at) * 1000
    await send_paced(peer, port, rtp_packets(audio, ssrc=SSRC))
    events = await read_messages(call, 3, within=3)
    assert [e.dtmf.digit for e in events] == list(keys)
    assert {e.dtmf.source for e in events} == {"inband"}
    for index, event in enumerate(events):
        assert abs(event.dtmf.duration_ms - 100) <= 10  # to the block
        sent_at = started + 200 + index * 300
        assert abs(event.media_time_ms - sent_at) <= 40, (event.media_time_ms, sent_at)
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    assert await drain(call) == []


def _offer(peer_port: int) -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {peer_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
    )


async def test_a_press_sent_both_ways_is_one_rfc4733_event(make_service, peer):
    """The phone sends the tones in its audio and RFC 4733 events for them (rtpengine #1123)."""
    service, stub = await make_service(inband_dtmf="always")
    port = await allocate(stub, "inband-both")
    sdp = pb.NegotiateSdpRequest(
        server_rtp_port=port, remote_sdp=_offer(peer.address[1]), type=pb.SDP_TYPE_OFFER
    )
    assert (await stub.NegotiateSdp(sdp)).dtmf_payload_type == 101
    call = await _subscribe(service, stub, port)
    sequence, timestamp = 100, 8000
    start = time.monotonic()
    slot = 0

    async def at_slot() -> None:
        delay = start + slot * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    for key, code in (("0", 0), ("0", 0), ("5", 5)):
        for frame in np.split(np.concatenate([silence(100), tones(key, 100)]), 10):
            await at_slot()
            peer.send(build_rtp(0, sequence, timestamp, SSRC, ULAW.encode(frame), False), port)
            sequence, timestamp, slot = sequence + 1, timestamp + 160, slot + 1
        key_down = timestamp - 5 * 160
        for k in range(1, 6):  # the event packets of the 100 ms just sent, the end three times
            for _ in range(3 if k == 5 else 1):
                payload = build_event(code, k == 5, 10, k * 160)
                peer.send(build_rtp(101, sequence, key_down, SSRC, payload, k == 1), port)
                sequence += 1
    for frame in np.split(silence(400), 20):
        await at_slot()
        peer.send(build_rtp(0, sequence, timestamp, SSRC, ULAW.encode(frame), False), port)
        sequence, timestamp, slot = sequence + 1, timestamp + 160, slot + 1
    events = await read_messages(call, 3, within=3)
    assert [(e.dtmf.digit, e.dtmf.source) for e in events] == [
        ("0", "rfc4733"),
        ("0", "rfc4733"),
        ("5", "rfc4733"),
    ]
    session = service.manager.by_port[port]
    assert await wait_until(lambda: session.dtmf_in.merge.duplicates == 3, 2.0)
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    assert await drain(call) == []


async def _tones_and_events(make_service, peer, mode: str, negotiated: bool) -> list[str]:
    """The dtmf events of a call whose audio carries "5", under MEDIA_SERVICE_INBAND_DTMF=mode."""
    app, stub = await make_service(inband_dtmf=mode)
    port = await allocate(stub, f"inband-{mode}-{negotiated}")
    if negotiated:
        sdp = pb.NegotiateSdpRequest(
            server_rtp_port=port, remote_sdp=_offer(peer.address[1]), type=pb.SDP_TYPE_OFFER
        )
        await stub.NegotiateSdp(sdp)
    call = await _subscribe(app, stub, port)
    audio = np.concatenate([silence(100), tones("5", 100), silence(200)])
    await send_paced(peer, port, rtp_packets(audio, ssrc=SSRC))
    await asyncio.sleep(0.3)  # the 200 ms hold of an in-band press on a negotiated call
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    return [e.dtmf.source for e in await drain(call) if e.WhichOneof("event") == "dtmf"]


async def test_auto_mode_listens_for_tones_only_without_telephone_events(make_service, peer):
    assert await _tones_and_events(make_service, peer, "auto", negotiated=False) == ["inband"]
    assert await _tones_and_events(make_service, peer, "auto", negotiated=True) == []
    assert await _tones_and_events(make_service, peer, "always", negotiated=True) == ["inband"]


async def test_off_mode_never_listens_for_tones(make_service, peer):
    assert await _tones_and_events(make_service, peer, "off", negotiated=False) == []


async def test_speech_is_not_taken_for_digits(service, stub, peer):
    port = await allocate(stub, "inband-speech")
    call = await _subscribe(service, stub, port)
    await send_paced(peer, port, rtp_packets(speech()[: RATE * 4], ssrc=SSRC))
    await asyncio.sleep(0.1)
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    kinds = [e.WhichOneof("event") for e in await drain(call)]
    assert "dtmf" not in kinds
    assert "speech_started" in kinds  # the speech was heard, as speech


async def test_without_sdp_payload_type_101_is_taken_as_telephone_events(service, stub, peer):
    """A call set up without NegotiateSdp (the Rust service's callers): RFC 4733 on 101."""
    port = await allocate(stub, "legacy-101")
    call = await _subscribe(service, stub, port)
    for packet in rtp_packets(silence(100), ssrc=SSRC, payload_type=0):
        peer.send(packet, port)
    sequence = await _press(peer, port, 5000, 9, 80000, 100)  # "9"
    await _press(peer, port, sequence, 10, 88000, 100)  # "*"
    (first, second) = await read_messages(call, 2, within=3)
    assert [(e.dtmf.digit, e.dtmf.source) for e in (first, second)] == [
        ("9", "rfc4733"),
        ("*", "rfc4733"),
    ]
    session = service.manager.by_port[port]
    assert session.stats.drops["unsupported_payload_type"] == 0
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    assert [e.WhichOneof("event") for e in await drain(call)] == []
