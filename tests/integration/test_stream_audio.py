"""StreamAudioToCall: TTS chunks played gap-free as they arrive, with status messages."""

from __future__ import annotations

import asyncio
import itertools
import time

import grpc
import numpy as np

from sentiric_media.api.v1 import media_pb2 as pb
from tests.integration.helpers import (
    RequestFeed,
    allocate,
    decoded,
    play,
    resample,
    speech,
    stream_error,
    wait_until,
    wav_uri,
)
from tests.support import best_alignment

CHUNK = 333  # odd on purpose: samples are split across chunks


async def _open(stub, peer, call_id: str) -> int:
    port = await allocate(stub, call_id)
    assert (await play(stub, port, "control://set_target", peer.address_text)).success
    return port


def _tts_bytes(source_8k: np.ndarray) -> bytes:
    return resample(source_8k, 8000, 16000).astype("<i2").tobytes()


async def _responses(call, into: list, times: list) -> None:
    async for response in call:
        into.append(response)
        times.append(time.monotonic())


def _assert_gap_free(peer) -> None:
    stamps = [p.timestamp for p in peer.packets]
    steps = {(b - a) % 2**32 for a, b in itertools.pairwise(stamps)}
    assert steps == {160}, sorted(steps)
    assert sum(p.marker for p in peer.packets) == 1


async def test_chunks_play_gap_free_as_they_arrive(service, stub, peer):
    await _open(stub, peer, "tts-gap-free")
    source = speech()[8000:20000]  # 1.5 s
    audio = _tts_bytes(source)
    chunks = [audio[i : i + CHUNK] for i in range(0, len(audio), CHUNK)]
    feed = RequestFeed()
    call = stub.StreamAudioToCall(feed)
    responses: list = []
    times: list = []
    reader = asyncio.create_task(_responses(call, responses, times))
    feed.send("tts-gap-free", chunks[0])
    preroll = 30  # ~0.3 s ahead, then real time
    started = time.monotonic()
    for index, chunk in enumerate(chunks[1:], start=1):
        if index > preroll:
            delay = started + (index - preroll) * CHUNK / 32000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        feed.send(chunk=chunk)
        if index % 10 == 0:
            feed.send()  # an empty keep-alive
    feed.close()
    await asyncio.wait_for(reader, 5)

    assert [r.error_message for r in responses] == [""]
    assert responses[-1].success
    _assert_gap_free(peer)
    assert abs(len(peer.packets) - 75) <= 2  # 1.5 s of audio
    score, _ = best_alignment(source[400:-400], decoded(peer))
    assert score > 0.9
    # The final status comes once the audio has played, and nothing is sent after it.
    assert times[-1] >= peer.packets[-1].arrival - 0.03
    count = len(peer.packets)
    await asyncio.sleep(0.15)
    assert len(peer.packets) == count


async def test_final_status_waits_for_the_audio_to_finish(service, stub, peer):
    await _open(stub, peer, "tts-end")
    audio = _tts_bytes(speech()[0:8000])  # 1 s, sent at once
    feed = RequestFeed()
    call = stub.StreamAudioToCall(feed)
    feed.send("tts-end", audio[:CHUNK])
    for i in range(CHUNK, len(audio), CHUNK):
        feed.send(chunk=audio[i : i + CHUNK])
    feed.close()
    closed = time.monotonic()
    responses = [r async for r in call]
    finished = time.monotonic()
    assert len(responses) == 1
    assert responses[0].success
    assert responses[0].error_message == ""
    assert finished - closed >= 0.8  # not before the second of audio has played
    assert abs(len(peer.packets) - 50) <= 1
    _assert_gap_free(peer)
    assert await call.code() == grpc.StatusCode.OK


async def test_underrun_is_reported_and_playback_resumes(service, stub, peer):
    await _open(stub, peer, "tts-underrun")
    first, second = speech()[0:4800], speech()[40000:44000]
    feed = RequestFeed()
    call = stub.StreamAudioToCall(feed)
    responses: list = []
    times: list = []
    reader = asyncio.create_task(_responses(call, responses, times))
    started = time.monotonic()
    feed.send("tts-underrun", _tts_bytes(first))  # 0.6 s
    await asyncio.sleep(1.0)
    assert [r.error_message for r in responses] == ["buffer_underrun"]
    assert not responses[0].success
    assert 0.5 <= times[0] - started <= 0.95  # reported when it happened
    count = len(peer.packets)
    assert abs(count - 30) <= 1
    feed.send(chunk=_tts_bytes(second))  # 0.5 s more
    feed.close()
    await asyncio.wait_for(reader, 5)
    assert responses[-1].success
    assert responses[-1].error_message == ""
    assert abs(len(peer.packets) - count - 25) <= 2
    resumed = decoded(peer)[count * 160 :]
    score, _ = best_alignment(second[400:3600], resumed)
    assert score > 0.9
    assert service.manager.tts_underruns == 1


async def test_unknown_call_id_is_not_found(stub):
    feed = RequestFeed()
    feed.send("no-such-call", b"\x00\x00" * 160)
    feed.close()
    details = await stream_error(stub.StreamAudioToCall(feed), grpc.StatusCode.NOT_FOUND)
    assert "no-such-call" in details


async def test_first_message_without_call_id_is_invalid_argument(stub, peer):
    await _open(stub, peer, "tts-no-id")
    feed = RequestFeed()
    feed.send("", b"\x00\x00" * 160)
    feed.close()
    details = await stream_error(stub.StreamAudioToCall(feed), grpc.StatusCode.INVALID_ARGUMENT)
    assert "call_id" in details
    await asyncio.sleep(0.1)
    assert not peer.packets


async def test_silent_stream_is_closed_with_idle_timeout(make_service, peers):
    app, stub = await make_service(stream_idle_timeout_seconds=0.5)
    peer = await peers()
    port = await _open(stub, peer, "tts-idle")
    feed = RequestFeed()
    call = stub.StreamAudioToCall(feed)
    started = time.monotonic()
    feed.send("tts-idle", _tts_bytes(speech()[:1600]))  # 0.2 s, then nothing
    responses = [r async for r in call]
    elapsed = time.monotonic() - started
    assert responses
    assert responses[-1].error_message.startswith("idle_timeout")
    assert not responses[-1].success
    assert 0.45 <= elapsed <= 2.0
    assert await call.code() == grpc.StatusCode.OK
    assert abs(len(peer.packets) - 10) <= 1  # the 0.2 s that came did play
    assert await wait_until(lambda: len(app.manager.by_port[port].playout) == 0, 0.5)
    feed.close()


async def test_stream_without_any_message_is_closed_with_idle_timeout(make_service):
    _, stub = await make_service(stream_idle_timeout_seconds=0.5)
    feed = RequestFeed()
    call = stub.StreamAudioToCall(feed)
    started = time.monotonic()
    responses = [r async for r in call]
    assert 0.45 <= time.monotonic() - started <= 2.0
    assert [r.error_message.split(":")[0] for r in responses] == ["idle_timeout"]
    feed.close()


async def test_stop_audio_ends_the_stream(service, stub, peer):
    port = await _open(stub, peer, "tts-stop")
    feed = RequestFeed()
    call = stub.StreamAudioToCall(feed)
    feed.send("tts-stop", _tts_bytes(speech()[:16000]))  # 2 s
    await peer.wait_for_packets(10, timeout=2)
    reply = await stub.StopAudio(pb.StopAudioRequest(server_rtp_port=port))
    assert reply.stopped == 1
    responses = [r async for r in call]
    assert responses[-1].error_message == "stopped"
    assert not responses[-1].success
    assert len(peer.packets) < 40
    feed.close()


async def test_stream_plays_after_queued_prompt(service, stub, peer):
    port = await _open(stub, peer, "tts-after-prompt")
    prompt, tts = speech()[0:4000], speech()[40000:44000]
    assert (await play(stub, port, wav_uri(prompt))).success
    feed = RequestFeed()
    call = stub.StreamAudioToCall(feed)
    feed.send("tts-after-prompt", _tts_bytes(tts))
    feed.close()
    responses = [r async for r in call]
    assert responses[-1].success
    received = decoded(peer)
    score_a, lag_a = best_alignment(prompt[400:3600], received)
    score_b, lag_b = best_alignment(tts[400:3600], received)
    assert score_a > 0.9
    assert score_b > 0.9
    assert abs((lag_b - lag_a) - 4000) <= 160


async def test_release_port_ends_the_stream_with_a_status(service, stub, peer):
    port = await _open(stub, peer, "tts-release")
    feed = RequestFeed()
    call = stub.StreamAudioToCall(feed)
    feed.send("tts-release", _tts_bytes(speech()[:16000]))  # 2 s
    await peer.wait_for_packets(10, timeout=2)
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    responses = await asyncio.wait_for(_all(call), 2)
    assert [(r.success, r.error_message) for r in responses] == [(False, "stopped")]
    assert await call.code() == grpc.StatusCode.OK
    feed.close()


async def test_cancelled_stream_stops_its_audio(service, stub, peer):
    port = await _open(stub, peer, "tts-cancel")
    feed = RequestFeed()
    call = stub.StreamAudioToCall(feed)
    feed.send("tts-cancel", _tts_bytes(speech()[:16000]))  # 2 s
    await peer.wait_for_packets(10, timeout=2)
    call.cancel()
    cancelled = time.monotonic()
    await asyncio.sleep(0.3)
    assert all(p.arrival < cancelled + 0.1 for p in peer.packets)
    assert len(service.manager.by_port[port].playout) == 0


async def test_stream_with_only_a_call_id_ends_at_once(service, stub, peer):
    await _open(stub, peer, "tts-empty")
    feed = RequestFeed()
    feed.send("tts-empty")
    feed.close()
    started = time.monotonic()
    responses = await asyncio.wait_for(_all(call := stub.StreamAudioToCall(feed)), 2)
    assert time.monotonic() - started < 0.5
    assert [(r.success, r.error_message) for r in responses] == [(True, "")]
    assert await call.code() == grpc.StatusCode.OK
    assert not peer.packets


async def _all(call) -> list:
    return [r async for r in call]
