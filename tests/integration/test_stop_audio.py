"""StopAudio: cancels the playing prompt and the queue, and the packets stop."""

from __future__ import annotations

import asyncio
import time

import grpc

from sentiric_media.api.v1 import media_pb2 as pb
from tests.integration.helpers import PROMPT_URI, allocate, play, rpc_error, speech, wav_uri


async def test_stop_audio_cancels_playing_and_queued_prompts(service, stub, peer):
    port = await allocate(stub, "stop-three")
    for _ in range(3):
        assert (await play(stub, port, PROMPT_URI, peer.address_text)).success
    await peer.wait_for_packets(10, timeout=3)
    reply = await stub.StopAudio(pb.StopAudioRequest(server_rtp_port=port))
    stopped_at = time.monotonic()
    assert reply.success
    assert reply.stopped == 3
    assert len(service.manager.by_port[port].playout) == 0
    await asyncio.sleep(0.4)
    late = [p.arrival - stopped_at for p in peer.packets if p.arrival > stopped_at + 0.1]
    assert not late, f"packets after StopAudio: {late}"
    assert len(peer.packets) < 100


async def test_stop_audio_with_nothing_playing_stops_nothing(stub, peer):
    port = await allocate(stub, "stop-idle")
    reply = await stub.StopAudio(pb.StopAudioRequest(server_rtp_port=port))
    assert reply.success
    assert reply.stopped == 0


async def test_play_after_stop_plays_again(stub, peer):
    port = await allocate(stub, "stop-then-play")
    await play(stub, port, PROMPT_URI, peer.address_text)
    await peer.wait_for_packets(5, timeout=3)
    assert (await stub.StopAudio(pb.StopAudioRequest(server_rtp_port=port))).stopped == 1
    await asyncio.sleep(0.1)
    count = len(peer.packets)
    assert (await play(stub, port, wav_uri(speech()[:4000]))).success
    await peer.wait_for_packets(count + 25, timeout=3)
    await peer.wait_quiet(0.2, timeout=3)
    assert len(peer.packets) - count == 25  # exactly the new 0.5 s prompt


async def test_stop_audio_on_unknown_port_is_not_found(stub):
    details = await rpc_error(
        stub.StopAudio(pb.StopAudioRequest(server_rtp_port=40004)), grpc.StatusCode.NOT_FOUND
    )
    assert "40004" in details
