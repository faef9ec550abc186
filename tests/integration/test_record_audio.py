"""RecordAudio: the caller's live audio as L16, continuous, replaceable, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
import numpy as np
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.api.v1 import media_pb2_grpc
from tests.integration.helpers import (
    PROMPT_URI,
    allocate,
    drain,
    play,
    read_messages,
    resample,
    rtp_packets,
    send_paced,
    send_slots,
    speech,
    stream_error,
)
from tests.support import best_alignment


def _record(stub, port: int, **fields) -> grpc.aio.UnaryStreamCall:
    return stub.RecordAudio(pb.RecordAudioRequest(server_rtp_port=port, **fields))


def _pcm(messages) -> np.ndarray:
    return np.frombuffer(b"".join(m.audio_data for m in messages), dtype="<i2")


@pytest.mark.parametrize(
    ("fields", "rate", "samples", "count"),
    [
        ({}, 16000, 320, 10),
        ({"target_sample_rate": 16000}, 16000, 320, 10),
        ({"target_sample_rate": 8000}, 8000, 160, 10),
        ({"target_sample_rate": 24000}, 24000, 480, 10),
        ({"target_sample_rate": 48000}, 48000, 960, 10),
        ({"frame_ms": 100}, 16000, 1600, 4),
        ({"frame_ms": 20}, 16000, 320, 10),
        ({"target_sample_rate": 8000, "frame_ms": 200}, 8000, 1600, 3),
        ({"target_sample_rate": 48000, "frame_ms": 40}, 48000, 1920, 5),
    ],
)
async def test_message_size_and_media_type(stub, fields, rate, samples, count):
    port = await allocate(stub, "rec-sizes")
    call = _record(stub, port, **fields)
    messages = await read_messages(call, count)
    call.cancel()
    assert len(messages) == count
    assert {m.media_type for m in messages} == {f"audio/L16;rate={rate}"}
    sizes = [len(m.audio_data) for m in messages]
    # A reader that lags may get merged messages, but always whole frames.
    assert all(size % (2 * samples) == 0 for size in sizes), sizes
    assert sorted(sizes)[len(sizes) // 2] == 2 * samples, sizes


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"target_sample_rate": 11025}, "11025"),
        ({"target_sample_rate": 0}, "target_sample_rate"),
        ({"target_sample_rate": 44100}, "44100"),
        ({"frame_ms": 30}, "30"),
        ({"frame_ms": 10}, "10"),
        ({"frame_ms": 220}, "220"),
        ({"frame_ms": 0}, "frame_ms"),
    ],
)
async def test_bad_rate_or_frame_is_invalid_argument(service, stub, fields, named):
    port = await allocate(stub, "rec-invalid")
    details = await stream_error(_record(stub, port, **fields), grpc.StatusCode.INVALID_ARGUMENT)
    assert named in details
    assert service.manager.by_port[port].live is None


async def test_unknown_port_is_not_found(stub):
    details = await stream_error(_record(stub, 40006), grpc.StatusCode.NOT_FOUND)
    assert "40006" in details


async def test_stream_is_continuous_while_the_caller_is_silent(stub):
    port = await allocate(stub, "rec-silence")
    call = _record(stub, port)
    await read_messages(call, 1)
    started = time.monotonic()
    messages = []
    while time.monotonic() - started < 1.0:
        messages.extend(await read_messages(call, 1, within=1))
    call.cancel()
    audio = _pcm(messages)
    # Silence (the 8 → 16 kHz resampler dithers: ±1 LSB at most).
    assert np.abs(audio.astype(np.int32)).max() <= 2
    assert 0.8 * 16000 <= len(audio) <= 1.2 * 16000  # one second of call, one second of audio


async def test_live_audio_matches_what_the_caller_sent(stub, peer):
    port = await allocate(stub, "rec-content")
    call = _record(stub, port)
    await read_messages(call, 1)
    collected = []
    reader = asyncio.create_task(_collect(call, collected))
    source = speech()[8000:16000]
    await send_paced(peer, port, rtp_packets(source))
    await asyncio.sleep(0.3)
    call.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    live = _pcm(collected)
    reference = resample(source[800:7200], 8000, 16000)
    score, _ = best_alignment(reference, live)
    assert score > 0.9


async def test_pauses_of_the_caller_are_kept_in_time(stub, peer):
    port = await allocate(stub, "rec-pause")
    call = _record(stub, port)
    await read_messages(call, 1)
    collected = []
    reader = asyncio.create_task(_collect(call, collected))
    first, second = speech()[0:4800], speech()[40000:44800]
    # 0.6 s of speech, 0.4 s without packets, 0.6 s of speech; RTP timestamps and
    # sending times agree about the pause.
    slots = list(enumerate(rtp_packets(first)))
    later = rtp_packets(second, first_sequence=1030, first_timestamp=5000 + 8000)
    slots += [(50 + index, packet) for index, packet in enumerate(later)]
    await send_slots(peer, port, slots)
    await asyncio.sleep(0.3)
    call.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    live = _pcm(collected)
    score_a, lag_a = best_alignment(resample(first[600:4200], 8000, 16000), live)
    score_b, lag_b = best_alignment(resample(second[600:4200], 8000, 16000), live)
    assert score_a > 0.9
    assert score_b > 0.9
    # 0.6 s of speech + 0.4 s of pause between the two starts, within 20 ms.
    assert abs((lag_b - lag_a) - 16000) <= 320


async def test_second_reader_replaces_the_first(service, stub, peer):
    port = await allocate(stub, "rec-replace")
    first = _record(stub, port)
    await read_messages(first, 2)
    second = _record(stub, port)
    await read_messages(second, 2)
    # The first stream ends (cleanly) once the second is open.
    await drain(first, within=2)
    assert await first.code() == grpc.StatusCode.OK
    collected = []
    reader = asyncio.create_task(_collect(second, collected))
    source = speech()[16000:24000]
    await send_paced(peer, port, rtp_packets(source))
    await asyncio.sleep(0.3)
    second.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    score, _ = best_alignment(resample(source[1000:7000], 8000, 16000), _pcm(collected))
    assert score > 0.9
    # A reader that comes back after cancelling gets a fresh stream.
    third = _record(stub, port)
    assert len(await read_messages(third, 3)) == 3
    third.cancel()


async def test_release_port_ends_the_stream_cleanly(service, stub):
    port = await allocate(stub, "rec-release")
    call = _record(stub, port)
    await read_messages(call, 2)
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    rest = await drain(call, within=2)
    assert len(rest) < 10
    assert await call.code() == grpc.StatusCode.OK


async def test_slow_reader_gets_merged_messages_and_loses_oldest(make_service, peers):
    app, stub = await make_service(live_audio_stream_buffer=10)
    peer = await peers()
    port = await allocate(stub, "rec-slow")
    assert (await play(stub, port, PROMPT_URI, peer.address_text)).success
    # A reader with a small HTTP/2 window: its backlog builds up in the service, not in
    # the client's transport buffers.
    options = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}", options=options) as ch:
        call = _record(media_pb2_grpc.MediaServiceStub(ch), port)
        await read_messages(call, 1)
        session = app.manager.by_port[port]
        stream = session.live
        packets_before = len(peer.packets)
        await asyncio.sleep(1.5)  # the reader does not read
        # The call kept going: the prompt was paced out meanwhile.
        assert len(peer.packets) - packets_before >= 60
        assert stream.dropped_messages > 40
        assert app.manager.clock.member_errors == 0
        messages = await read_messages(call, 20)
        sizes = [len(m.audio_data) for m in messages]
        assert max(sizes) > 640  # the backlog came merged
        assert max(sizes) <= 10 * 640  # ... and bounded
        assert all(size % 640 == 0 for size in sizes)
        call.cancel()
        await asyncio.sleep(0.1)
    assert app.manager.live_messages_dropped == stream.dropped_messages
    assert app.snapshot().live_messages_dropped > 40


async def _collect(call, into: list) -> None:
    while (message := await call.read()) is not grpc.aio.EOF:
        into.append(message)


async def test_without_send_silence_messages_come_only_while_the_caller_talks(make_service, peer):
    # LIVE_AUDIO_SEND_SILENCE=false: the Rust service's behaviour, for readers that stop
    # after a quiet spell.
    _, stub = await make_service(live_audio_send_silence=False)
    port = await allocate(stub, "live-no-silence")
    call = stub.RecordAudio(pb.RecordAudioRequest(server_rtp_port=port, frame_ms=100))
    received: list[bytes] = []

    async def collect() -> None:
        async for message in call:
            received.append(message.audio_data)

    reader = asyncio.create_task(collect())
    await asyncio.sleep(0.6)
    assert received == []  # no caller audio: nothing is sent
    source = speech()[:8000]  # 1 s, with one packet in ten lost
    packets = rtp_packets(source)
    await send_paced(peer, port, [p for k, p in enumerate(packets) if k % 10 != 5])
    await asyncio.sleep(0.6)
    # The talkspurt, its lost packets filled, plus at most the 200 ms hangover.
    assert 10 <= len(received) <= 13, len(received)
    audio = np.concatenate([np.frombuffer(chunk, "<i2") for chunk in received])
    assert len(audio) == 1600 * len(received)
    settled = len(received)
    await asyncio.sleep(0.5)
    assert len(received) == settled  # the caller stopped: so did the stream
    call.cancel()
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        await reader
