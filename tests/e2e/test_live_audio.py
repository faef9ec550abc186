"""Test A: FFmpeg talks RTP to the service; `RecordAudio` streams the caller's voice live."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from tests.e2e.phone import ffmpeg_rtp_sender, finish, lavfi_source, read_wav, resample, spawn
from tests.support import best_alignment

pytestmark = pytest.mark.e2e

SEND_FROM, SEND_TO = 1.0, 5.0  # seconds of the speech file FFmpeg sends
PRE_ROLL = 0.4  # the stream runs this long before FFmpeg starts: it must be silence


@pytest.mark.parametrize(
    ("codec", "rate", "frame_ms"),
    [
        pytest.param("PCMU", None, None, id="pcmu-16k-20ms"),
        pytest.param("PCMA", None, None, id="pcma-16k-20ms"),
        pytest.param("PCMU", 8000, None, id="pcmu-8k-20ms"),
        pytest.param("PCMA", None, 100, id="pcma-16k-100ms"),
    ],
)
async def test_ffmpeg_caller_is_streamed_live(
    ffmpeg: str, stub, speech_wav: Path, codec: str, rate: int | None, frame_ms: int | None
) -> None:
    expected_rate = rate or 16000
    expected_frame = expected_rate * (frame_ms or 20) // 1000
    port = (await stub.AllocatePort(pb.AllocatePortRequest(call_id=f"e2e-live-{codec}"))).rtp_port
    request = pb.RecordAudioRequest(server_rtp_port=port)
    if rate is not None:
        request.target_sample_rate = rate
    if frame_ms is not None:
        request.frame_ms = frame_ms
    messages: list[tuple[float, str, bytes]] = []

    async def read() -> None:
        async for message in stub.RecordAudio(request):
            messages.append((time.monotonic(), message.media_type, message.audio_data))

    reader = asyncio.create_task(read())
    try:
        await asyncio.sleep(PRE_ROLL)
        command = ffmpeg_rtp_sender(
            ffmpeg, lavfi_source(speech_wav, SEND_FROM, SEND_TO), port, codec
        )
        status, errors = await finish(spawn(command), 30)
        assert status == 0, f"FFmpeg sender: exit status {status}\n{errors}"
        await asyncio.sleep(0.4)  # the jitter buffer's delay, and some trailing silence
    finally:
        await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    await asyncio.wait_for(reader, 5)  # releasing the port ends the stream cleanly

    assert messages, "RecordAudio delivered nothing"
    media_types = {media_type for _, media_type, _ in messages}
    assert media_types == {f"audio/L16;rate={expected_rate}"}
    sizes = sorted({len(audio) // 2 for _, _, audio in messages})
    assert sizes == [expected_frame], f"message sizes (samples): {sizes}"

    live = np.frombuffer(b"".join(audio for _, _, audio in messages), dtype="<i2")
    total = len(live)
    wall = messages[-1][0] - messages[0][0] + expected_frame / expected_rate
    print(
        f"{codec} rate={expected_rate} frame={expected_frame}: {len(messages)} messages, "
        f"{total / expected_rate:.3f} s of audio over {wall:.3f} s wall clock"
    )
    assert abs(total / expected_rate - wall) <= 0.060, "the live stream is not continuous in time"
    # Before FFmpeg started, the caller was silent: the stream carried silence, not nothing.
    assert not live[: int(PRE_ROLL / 2 * expected_rate)].any()

    speech, speech_rate = read_wav(speech_wav)
    sent = speech[int(SEND_FROM * speech_rate) : int(SEND_TO * speech_rate)]
    reference = resample(sent, speech_rate, expected_rate)
    middle = reference[int(1.0 * expected_rate) : int(3.0 * expected_rate)]
    score, lag = best_alignment(middle, live)
    print(f"{codec} rate={expected_rate}: correlation {score:.4f} at lag {lag}")
    assert score >= 0.9
    # The match is where the speech was, after the pre-roll silence, not in it.
    assert lag >= PRE_ROLL / 2 * expected_rate
