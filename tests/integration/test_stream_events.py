"""StreamEvents: every subscriber gets its session's events in order; the stream ends with
OK when the session is released; a slow subscriber loses its oldest events."""

from __future__ import annotations

import asyncio
import time

import grpc

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.control.subscriptions import Subscription
from sentiric_media.events.bus import MediaEvent
from sentiric_media.media.dtmf import build_event
from sentiric_media.media.rtp import build_rtp
from tests.integration.helpers import (
    allocate,
    drain,
    play,
    read_messages,
    speech,
    wait_until,
    wav_uri,
)


async def _subscribe(service, stub, port: int) -> grpc.aio.UnaryStreamCall:
    call = stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port, keywords=["operator"]))
    # The subscription exists once the server has registered it.
    assert await wait_until(lambda: service.manager.events._by_port.get(port), 2.0)
    return call


async def test_playback_events_reach_every_subscriber_in_order(service, stub, peer):
    port = await allocate(stub, "events-play")
    first, second = await _subscribe(service, stub, port), await _subscribe(service, stub, port)
    started = time.time() * 1000
    prompt = wav_uri(speech()[:1600])  # 200 ms
    assert (await play(stub, port, prompt, peer.address_text)).success
    for call in (first, second):
        events = await read_messages(call, 2, within=3)
        assert [e.WhichOneof("event") for e in events] == ["playback_started", "playback_finished"]
        begun, finished = events
        assert begun.playback_started.audio_uri.startswith("data:audio/wav")
        assert not finished.playback_finished.interrupted
        assert finished.playback_finished.played_ms == 200
        assert all(e.call_id == "events-play" and e.server_rtp_port == port for e in events)
        assert started - 1000 <= begun.timestamp_ms <= time.time() * 1000
        # Media time: since the session began, the end 200 ms after the start.
        assert 150 <= finished.media_time_ms - begun.media_time_ms <= 300
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    for call in (first, second):
        assert await drain(call) == []
        assert await call.code() == grpc.StatusCode.OK


async def test_release_delivers_the_interruption_then_ends_the_stream(service, stub, peer):
    port = await allocate(stub, "events-release")
    call = await _subscribe(service, stub, port)
    assert (await play(stub, port, wav_uri(speech()[:16000]), peer.address_text)).success
    (begun,) = await read_messages(call, 1, within=3)
    assert begun.WhichOneof("event") == "playback_started"
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    rest = await drain(call)
    assert [e.WhichOneof("event") for e in rest] == ["playback_finished"]
    assert rest[0].playback_finished.interrupted
    assert await call.code() == grpc.StatusCode.OK


async def test_events_of_other_sessions_are_not_delivered(service, stub, peer):
    mine, other = await allocate(stub, "events-mine"), await allocate(stub, "events-other")
    call = await _subscribe(service, stub, mine)
    assert (await play(stub, other, wav_uri(speech()[:800]), peer.address_text)).success
    await asyncio.sleep(0.3)
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=mine))
    assert await drain(call) == []


async def test_a_slow_subscriber_loses_its_oldest_events_and_they_are_counted() -> None:
    subscription = Subscription(port=10000, keywords=(), limit=3)
    for k in range(5):
        subscription.put(MediaEvent("rtp_timeout", "c", 10000, "", k, {"silent_ms": k}))
    subscription.close()
    kept = []
    while (event := await subscription.next_event()) is not None:
        kept.append(event.data["silent_ms"])
    assert kept == [2, 3, 4]
    assert subscription.dropped == 2


def _offer(peer_port: int) -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {peer_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
    )


async def _press(peer, port: int, sequence: int, code: int, timestamp: int, ms: int) -> int:
    """Send one RFC 4733 press (a packet per 20 ms, the end three times); next sequence."""
    steps = ms // 20
    for k in range(1, steps + 1):
        end = k == steps
        for _ in range(3 if end else 1):
            payload = build_event(code, end, 10, k * 160)
            peer.send(build_rtp(101, sequence, timestamp, 0x4733, payload, k == 1), port)
            sequence += 1
        await asyncio.sleep(0.02)
    return sequence


async def test_rfc4733_digits_are_events_exactly_once_at_their_key_down(service, stub, peer):
    port = await allocate(stub, "events-dtmf")
    answer = await stub.NegotiateSdp(
        pb.NegotiateSdpRequest(
            server_rtp_port=port, remote_sdp=_offer(peer.address[1]), type=pb.SDP_TYPE_OFFER
        )
    )
    assert answer.dtmf_payload_type == 101
    call = await _subscribe(service, stub, port)
    session = service.manager.by_port[port]
    sequence, sent = 1, []
    for code, timestamp in ((1, 8000), (11, 16000), (11, 24000)):  # "1", "#", "#"
        sent.append((time.monotonic() - session.created_at) * 1000)
        sequence = await _press(peer, port, sequence, code, timestamp, 100)
        await asyncio.sleep(0.1)
    events = await read_messages(call, 3, within=3)
    assert [e.WhichOneof("event") for e in events] == ["dtmf"] * 3
    assert [e.dtmf.digit for e in events] == ["1", "#", "#"]
    assert {e.dtmf.source for e in events} == {"rfc4733"}
    assert {e.dtmf.duration_ms for e in events} == {100}
    for event, at in zip(events, sent, strict=True):
        assert abs(event.media_time_ms - at) <= 40, (event.media_time_ms, at)
    assert session.stats.packets_lost == 0
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    assert await drain(call) == []  # no fourth digit from the repeated end packets
