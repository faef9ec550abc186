"""Events on the in-process bus: playback started/finished, RTP inactivity."""

from __future__ import annotations

import asyncio

import grpc

from sentiric_media.api.v1 import media_pb2 as pb
from tests.integration.helpers import (
    PROMPT_URI,
    allocate,
    play,
    rpc_error,
    rtp_packets,
    send_paced,
    speech,
    wait_until,
    wav_uri,
)


def _of(events, port: int, kind: str) -> list:
    return [e for e in events if e.port == port and e.kind == kind]


async def test_playback_started_and_finished(service, stub, peer, events):
    port = await allocate(stub, "ev-playback")
    uri = wav_uri(speech()[:4000])  # 0.5 s
    assert (await play(stub, port, uri, peer.address_text)).success
    assert await wait_until(lambda: _of(events, port, "playback_finished"), 2.0)
    started, finished = (
        _of(events, port, "playback_started"),
        _of(events, port, "playback_finished"),
    )
    assert len(started) == 1
    assert len(finished) == 1
    assert events.index(started[0]) < events.index(finished[0])
    assert started[0].call_id == "ev-playback"
    assert started[0].data["audio_uri"].startswith("data:audio/wav;base64,")
    assert finished[0].data["interrupted"] is False
    assert finished[0].data["played_ms"] == 500
    assert finished[0].data["audio_uri"] == started[0].data["audio_uri"]
    assert len(peer.packets) == 25
    # Media time moves with the call: the prompt took half a second.
    assert 400 <= finished[0].media_time_ms - started[0].media_time_ms <= 800


async def test_stop_audio_reports_interrupted_prompts(service, stub, peer, events):
    port = await allocate(stub, "ev-interrupted")
    assert (await play(stub, port, PROMPT_URI, peer.address_text)).success
    assert (await play(stub, port, PROMPT_URI, peer.address_text)).success
    await peer.wait_for_packets(20, timeout=3)
    reply = await stub.StopAudio(pb.StopAudioRequest(server_rtp_port=port))
    assert reply.stopped == 2
    finished = _of(events, port, "playback_finished")
    assert [e.data["interrupted"] for e in finished] == [True, True]
    assert all(e.data["audio_uri"] == PROMPT_URI for e in finished)
    played = finished[0].data["played_ms"]
    assert 400 <= played <= 2000  # about what went out before StopAudio
    assert abs(played - 20 * len(peer.packets)) <= 100
    assert finished[1].data["played_ms"] == 0  # the queued one never started
    assert len(_of(events, port, "playback_started")) == 1


async def test_inactivity_is_reported_once_per_silence_and_keeps_the_session(make_service, peers):
    app, stub = await make_service(inactivity_timeout_seconds=0.5)
    peer = await peers()
    events: list = []
    app.bus.subscribe(events.append)
    port = await allocate(stub, "ev-inactive")
    await send_paced(peer, port, rtp_packets(speech()[:800]))
    assert await wait_until(lambda: _of(events, port, "rtp_timeout"), 1.5)
    timeouts = _of(events, port, "rtp_timeout")
    assert timeouts[0].data["silent_ms"] >= 500
    assert timeouts[0].call_id == "ev-inactive"
    assert app.manager.inactivity_timeouts == 1
    await asyncio.sleep(0.5)  # still silent: no second report for the same silence
    assert len(_of(events, port, "rtp_timeout")) == 1
    # The session is kept (signaling owns the call) and still works.
    assert port in app.manager.by_port
    assert (await play(stub, port, wav_uri(speech()[:800]))).success
    await peer.wait_for_packets(5, timeout=2)
    # RTP resumes, then stops again: a new silence, a new report.
    await send_paced(peer, port, rtp_packets(speech()[:800], first_sequence=1100))
    assert await wait_until(lambda: len(_of(events, port, "rtp_timeout")) == 2, 1.5)
    assert app.manager.inactivity_timeouts == 2
    assert app.snapshot().inactivity_timeouts == 2
    assert port in app.manager.by_port


async def test_release_of_unknown_port_publishes_nothing(service, stub, events):
    assert (await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=40010))).success
    await rpc_error(
        stub.StopAudio(pb.StopAudioRequest(server_rtp_port=40010)), grpc.StatusCode.NOT_FOUND
    )
    assert not events
