"""Live caller audio for RecordAudio readers (media/live.py: LiveAudioStream, LiveTap)."""

from __future__ import annotations

import asyncio
from collections import Counter

import numpy as np
import pytest

from sentiric_media.media.live import LiveAudioStream, LiveTap
from sentiric_media.media.placement import Anchor
from sentiric_media.media.taps import CallerFrame

SOURCE_RATE = 8000
TICK = 160  # 20 ms at 8 kHz


def tick(value: int) -> np.ndarray:
    return np.full(TICK, value, dtype=np.int16)


def samples(message: bytes) -> np.ndarray:
    return np.frombuffer(message, dtype="<i2")


@pytest.mark.parametrize("frame_ms", [20, 100, 200])
@pytest.mark.parametrize("rate", [8000, 16000, 48000])
async def test_every_message_has_exactly_rate_times_frame_samples(rate: int, frame_ms: int) -> None:
    stream = LiveAudioStream(SOURCE_RATE, rate, frame_ms, max_backlog=1000)
    expected = rate * frame_ms // 1000
    ticks_per_message = frame_ms // 20
    t = np.arange(200 * TICK) / SOURCE_RATE
    signal = np.rint(8000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    received = []
    block = ticks_per_message * TICK
    for k in range(200):
        if (k + 1) % ticks_per_message == 0:
            stream.push_block(signal[(k + 1) * TICK - block : (k + 1) * TICK])
            message = await stream.next_audio()
            assert message is not None
            assert len(message) == 2 * expected, f"message {len(received)}"
            received.append(samples(message))
    assert len(received) == 200 // ticks_per_message
    assert stream.messages == len(received)
    assert stream.bytes_sent == 2 * expected * len(received)
    assert stream.dropped_messages == 0
    # The audio is continuous: a 300 Hz tone stays a 300 Hz tone at the new rate.
    joined = np.concatenate(received).astype(np.float64)[rate // 10 :]
    spectrum = np.abs(np.fft.rfft(joined * np.hanning(len(joined))))
    assert abs(np.fft.rfftfreq(len(joined), 1 / rate)[np.argmax(spectrum)] - 300) <= 5


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_media_type_is_exact(rate: int) -> None:
    stream = LiveAudioStream(SOURCE_RATE, rate, 20, max_backlog=4)
    assert stream.media_type == f"audio/L16;rate={rate}"


async def test_audio_is_little_endian_s16_and_unchanged_at_equal_rates() -> None:
    stream = LiveAudioStream(SOURCE_RATE, SOURCE_RATE, 20, max_backlog=4)
    frame = np.arange(-80, 80, dtype=np.int16) * 200
    stream.push_block(frame)
    message = await stream.next_audio()
    assert message == frame.astype("<i2").tobytes()
    assert message[:2] == (-16000).to_bytes(2, "little", signed=True)


async def test_tap_reads_a_message_only_when_enough_ticks_passed() -> None:
    stream = LiveAudioStream(SOURCE_RATE, SOURCE_RATE, 100, max_backlog=4)
    drops: Counter[str] = Counter()
    delay = 3 * TICK
    tap = LiveTap(stream, SOURCE_RATE, TICK, delay, drops)
    tap.on_tick(0)  # the jitter buffer starts a delay behind the clock
    for k in range(5):
        anchor = Anchor(0)
        tap.on_caller(CallerFrame(k * TICK, k * TICK, anchor, k * TICK, tick(k)))
    for k in range(1, 4):
        tap.on_tick(k * TICK)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(stream.next_audio(), 0.05)
    tap.on_tick(4 * TICK)  # 100 ms of audio lie a delay behind the clock
    message = await asyncio.wait_for(stream.next_audio(), 1)
    assert message is not None
    expected = np.concatenate([np.zeros(3 * TICK, np.int16), np.repeat(np.arange(2), TICK)])
    np.testing.assert_array_equal(samples(message), expected)
    assert not drops


async def test_pending_messages_are_merged_for_a_slow_reader() -> None:
    stream = LiveAudioStream(SOURCE_RATE, SOURCE_RATE, 20, max_backlog=10)
    for value in range(3):
        stream.push_block(tick(value + 1))
    message = await stream.next_audio()
    assert message is not None
    np.testing.assert_array_equal(samples(message), np.repeat([1, 2, 3], TICK))
    assert stream.messages == 1
    assert stream.dropped_messages == 0


async def test_oldest_messages_are_dropped_beyond_the_backlog() -> None:
    stream = LiveAudioStream(SOURCE_RATE, SOURCE_RATE, 20, max_backlog=4)
    for value in range(10):
        stream.push_block(tick(value))
    assert stream.dropped_messages == 6
    message = await stream.next_audio()
    assert message is not None
    np.testing.assert_array_equal(samples(message), np.repeat([6, 7, 8, 9], TICK))


async def test_reader_waiting_is_woken_by_push_block() -> None:
    stream = LiveAudioStream(SOURCE_RATE, 16000, 20, max_backlog=4)
    reader = asyncio.ensure_future(stream.next_audio())
    await asyncio.sleep(0.01)
    assert not reader.done()
    stream.push_block(tick(100))
    message = await asyncio.wait_for(reader, 1)
    assert message is not None
    assert len(message) == 2 * 320


async def test_close_drains_then_ends_with_none() -> None:
    stream = LiveAudioStream(SOURCE_RATE, SOURCE_RATE, 20, max_backlog=8)
    stream.push_block(tick(1))
    stream.push_block(tick(2))
    stream.close()
    message = await stream.next_audio()
    assert message is not None
    np.testing.assert_array_equal(samples(message), np.repeat([1, 2], TICK))
    assert await stream.next_audio() is None
    assert await stream.next_audio() is None


async def test_close_wakes_a_waiting_reader() -> None:
    stream = LiveAudioStream(SOURCE_RATE, SOURCE_RATE, 20, max_backlog=8)
    reader = asyncio.ensure_future(stream.next_audio())
    await asyncio.sleep(0.01)
    stream.close()
    assert await asyncio.wait_for(reader, 1) is None
    assert stream.closed


async def test_silence_ticks_keep_the_clock() -> None:
    # Silence is pushed like audio: the stream's length is the call's length.
    stream = LiveAudioStream(SOURCE_RATE, 16000, 20, max_backlog=1000)
    for _ in range(50):
        stream.push_block(np.zeros(TICK, dtype=np.int16))
    message = await stream.next_audio()
    assert message is not None
    assert len(message) == 2 * 16000
    # Silent to within 1 LSB (see test_resample: int16 soxr output is dithered).
    assert np.abs(samples(message)).max() <= 1
