"""The outbound playout queue (media/playout.py): prompts, TTS streams, echo and events."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import numpy as np
import pytest

from sentiric_media.media.playout import FINISHED, WAITING, Playout, Prompt, TtsStream

FRAME = 160
FRAME_MS = 20


class Events:
    def __init__(self) -> None:
        self.log: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, fields: dict[str, Any]) -> None:
        self.log.append((name, dict(fields)))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [fields for event, fields in self.log if event == name]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def playout(events: Events) -> Playout:
    return Playout(FRAME, FRAME_MS, events)


def ramp(start: int, count: int) -> np.ndarray:
    return (np.arange(count) + start).astype(np.int16)


def drain(playout: Playout, ticks: int) -> list[np.ndarray | None]:
    return [playout.next_frame() for _ in range(ticks)]


# --- prompts -------------------------------------------------------------------------------------


def test_prompt_plays_frame_by_frame_with_zero_padded_tail(
    playout: Playout, events: Events
) -> None:
    samples = ramp(1, 2 * FRAME + 40)
    playout.enqueue(Prompt("file://a.wav", samples, interruptible=True))
    frames = drain(playout, 4)
    assert frames[3] is None
    played = [frame for frame in frames if frame is not None]
    assert all(len(frame) == FRAME for frame in played)
    joined = np.concatenate(played)
    np.testing.assert_array_equal(joined[: len(samples)], samples)
    assert not joined[len(samples) :].any()
    assert len(playout) == 0
    assert events.log == [
        ("playback_started", {"audio_uri": "file://a.wav"}),
        (
            "playback_finished",
            {"audio_uri": "file://a.wav", "interrupted": False, "played_ms": 60},
        ),
    ]


def test_prompts_play_in_order_without_a_gap(playout: Playout, events: Events) -> None:
    playout.enqueue(Prompt("first", np.full(2 * FRAME, 1, np.int16), True))
    playout.enqueue(Prompt("second", np.full(FRAME, 2, np.int16), True))
    playout.enqueue(Prompt("third", np.full(FRAME, 3, np.int16), False))
    frames = drain(playout, 5)
    values = [None if frame is None else int(frame[0]) for frame in frames]
    assert values == [1, 1, 2, 3, None]
    assert [(name, fields["audio_uri"]) for name, fields in events.log] == [
        ("playback_started", "first"),
        ("playback_finished", "first"),
        ("playback_started", "second"),
        ("playback_finished", "second"),
        ("playback_started", "third"),
        ("playback_finished", "third"),
    ]
    assert [fields["played_ms"] for fields in events.named("playback_finished")] == [40, 20, 20]


def test_playback_started_is_emitted_once_per_item(playout: Playout, events: Events) -> None:
    playout.enqueue(Prompt("long", np.ones(50 * FRAME, np.int16), True))
    drain(playout, 30)
    assert len(events.named("playback_started")) == 1
    assert events.named("playback_finished") == []


def test_empty_queue_is_silence(playout: Playout, events: Events) -> None:
    assert drain(playout, 3) == [None, None, None]
    assert events.log == []


def test_same_prompt_buffer_can_be_queued_twice(playout: Playout) -> None:
    shared = ramp(0, FRAME)
    shared.flags.writeable = False
    playout.enqueue(Prompt("a", shared, True))
    playout.enqueue(Prompt("a", shared, True))
    frames = drain(playout, 2)
    for frame in frames:
        assert frame is not None
        np.testing.assert_array_equal(frame, shared)


def test_stop_cancels_everything_with_interrupted_events(playout: Playout, events: Events) -> None:
    for name in ("a", "b", "c"):
        playout.enqueue(Prompt(name, np.ones(10 * FRAME, np.int16), True))
    drain(playout, 3)
    assert playout.stop() == 3
    assert len(playout) == 0
    assert playout.next_frame() is None
    finished = events.named("playback_finished")
    assert finished == [
        {"audio_uri": "a", "interrupted": True, "played_ms": 60},
        {"audio_uri": "b", "interrupted": True, "played_ms": 0},
        {"audio_uri": "c", "interrupted": True, "played_ms": 0},
    ]


def test_stop_of_an_empty_queue(playout: Playout, events: Events) -> None:
    assert playout.stop() == 0
    assert events.log == []


def test_stop_one_item_leaves_the_others(playout: Playout, events: Events) -> None:
    a = Prompt("a", np.full(2 * FRAME, 1, np.int16), True)
    b = Prompt("b", np.full(2 * FRAME, 2, np.int16), True)
    c = Prompt("c", np.full(FRAME, 3, np.int16), True)
    for item in (a, b, c):
        playout.enqueue(item)
    first = playout.next_frame()
    assert first is not None
    assert first[0] == 1
    assert playout.stop(b) == 1
    assert len(playout) == 2
    frames = drain(playout, 3)
    assert [None if f is None else int(f[0]) for f in frames] == [1, 3, None]
    assert events.named("playback_finished") == [
        {"audio_uri": "b", "interrupted": True, "played_ms": 0},
        {"audio_uri": "a", "interrupted": False, "played_ms": 40},
        {"audio_uri": "c", "interrupted": False, "played_ms": 20},
    ]


def test_stop_the_playing_item_lets_the_next_one_start(playout: Playout, events: Events) -> None:
    a = Prompt("a", np.full(5 * FRAME, 1, np.int16), True)
    b = Prompt("b", np.full(FRAME, 2, np.int16), True)
    playout.enqueue(a)
    playout.enqueue(b)
    drain(playout, 2)
    assert playout.stop(a) == 1
    frame = playout.next_frame()
    assert frame is not None
    assert frame[0] == 2
    started = [fields["audio_uri"] for fields in events.named("playback_started")]
    assert started == ["a", "b"]


def test_stop_of_an_item_that_already_finished_counts_nothing(
    playout: Playout, events: Events
) -> None:
    item = Prompt("a", np.ones(FRAME, np.int16), True)
    playout.enqueue(item)
    drain(playout, 2)
    assert len(events.named("playback_finished")) == 1
    assert playout.stop(item) == 0
    assert len(events.named("playback_finished")) == 1


def test_prompt_pull_directly() -> None:
    prompt = Prompt("p", ramp(0, 200), True)
    first = prompt.pull(FRAME)
    second = prompt.pull(FRAME)
    assert isinstance(first, np.ndarray)
    assert isinstance(second, np.ndarray)
    np.testing.assert_array_equal(second[:40], ramp(160, 40))
    assert not second[40:].any()
    assert prompt.pull(FRAME) == FINISHED
    assert prompt.frames_played == 2


# --- echo ----------------------------------------------------------------------------------------


def test_echo_alone_is_played_back(playout: Playout) -> None:
    playout.set_echo(True)
    caller = ramp(-80, FRAME)
    playout.feed_echo(caller)
    frame = playout.next_frame()
    assert frame is not None
    np.testing.assert_array_equal(frame, caller)
    assert playout.next_frame() is None


def test_echo_is_mixed_with_saturation(playout: Playout) -> None:
    playout.set_echo(True)
    playout.enqueue(Prompt("loud", np.array([30000, -30000, 100, 32767] * 40, np.int16), True))
    playout.feed_echo(np.array([30000, -30000, -300, 32767] * 40, np.int16))
    frame = playout.next_frame()
    assert frame is not None
    assert frame.dtype == np.int16
    assert frame[:4].tolist() == [32767, -32768, -200, 32767]


def test_echo_disabled_ignores_caller_audio(playout: Playout) -> None:
    playout.feed_echo(np.ones(FRAME, np.int16))
    assert playout.next_frame() is None
    playout.set_echo(True)
    playout.set_echo(False)
    playout.feed_echo(np.ones(FRAME, np.int16))
    assert playout.next_frame() is None


def test_echo_backlog_is_bounded(playout: Playout) -> None:
    playout.set_echo(True)
    for value in range(20):
        playout.feed_echo(np.full(FRAME, value, np.int16))
    frames = [frame for frame in drain(playout, 20) if frame is not None]
    assert [int(frame[0]) for frame in frames] == [15, 16, 17, 18, 19]


# --- TTS streams ---------------------------------------------------------------------------------


def pcm_bytes(samples: np.ndarray) -> bytes:
    return samples.astype("<i2").tobytes()


async def test_tts_odd_byte_lengths_are_joined_across_chunks(
    playout: Playout, events: Events
) -> None:
    tts = TtsStream(8000, 8000)
    playout.enqueue(tts)
    samples = ramp(-1000, 5 * FRAME)
    data = pcm_bytes(samples)
    cuts = [0, 1, 4, 7, 333, 334, 801, len(data)]
    for start, end in itertools.pairwise(cuts):
        tts.push(data[start:end])
    tts.close()
    frames = drain(playout, 6)
    played = np.concatenate([frame for frame in frames if frame is not None])
    np.testing.assert_array_equal(played, samples)
    assert frames[5] is None
    assert events.named("playback_finished") == [
        {"audio_uri": "stream://tts", "interrupted": False, "played_ms": 100}
    ]
    assert tts.statuses.get_nowait() == (True, "")
    assert tts.done


async def test_tts_resampling_16k_to_8k_keeps_duration() -> None:
    tts = TtsStream(16000, 8000)
    t = np.arange(16000) / 16000
    tone = np.rint(10000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    data = pcm_bytes(tone)
    position = 0
    size = 1
    while position < len(data):
        tts.push(data[position : position + size])
        position += size
        size = size * 3 % 1999 + 1  # odd and even chunk sizes, from 1 byte up
    tts.close()
    played = []
    while True:
        frame = tts.pull(FRAME)
        if isinstance(frame, str):
            assert frame == FINISHED
            break
        played.append(frame)
    audio = np.concatenate(played)
    # One second in, one second out: 50 frames, the tone from start to end (within 1 ms).
    assert len(audio) == 8000
    assert tts.frames_played == 50
    loud = np.flatnonzero(np.abs(audio) > 100)
    assert loud[0] <= 8
    assert loud[-1] >= 8000 - 8
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64)))
    assert abs(np.fft.rfftfreq(len(audio), 1 / 8000)[np.argmax(spectrum)] - 440) <= 5


async def test_tts_waits_before_enough_audio_without_reporting_underrun() -> None:
    tts = TtsStream(8000, 8000)
    tts.push(pcm_bytes(np.ones(100, np.int16)))
    assert tts.pull(FRAME) == WAITING
    assert tts.statuses.empty()
    assert tts.underruns == 0


async def test_tts_underrun_is_reported_once_per_episode(playout: Playout) -> None:
    tts = TtsStream(8000, 8000)
    playout.enqueue(tts)
    tts.push(pcm_bytes(np.ones(2 * FRAME, np.int16)))
    frames = drain(playout, 5)
    assert [frame is not None for frame in frames] == [True, True, False, False, False]
    assert tts.underruns == 1
    assert tts.statuses.get_nowait() == (False, "buffer_underrun")
    assert tts.statuses.empty()
    # Audio comes back, plays, runs dry again: a second episode, a second report.
    tts.push(pcm_bytes(np.ones(FRAME, np.int16)))
    frames = drain(playout, 3)
    assert [frame is not None for frame in frames] == [True, False, False]
    assert tts.underruns == 2
    assert tts.statuses.get_nowait() == (False, "buffer_underrun")
    assert tts.statuses.empty()


async def test_tts_end_status_after_close_and_drain(playout: Playout, events: Events) -> None:
    tts = TtsStream(8000, 8000)
    playout.enqueue(tts)
    tts.push(pcm_bytes(np.ones(FRAME + 10, np.int16)))
    tts.close()
    frames = drain(playout, 3)
    assert frames[0] is not None
    assert frames[1] is not None
    assert frames[1][:10].tolist() == [1] * 10
    assert not frames[1][10:].any()
    assert frames[2] is None
    assert tts.statuses.get_nowait() == (True, "")
    assert tts.underruns == 0
    assert events.named("playback_finished")[0]["interrupted"] is False


async def test_tts_stopped_reports_interruption(playout: Playout, events: Events) -> None:
    tts = TtsStream(8000, 8000)
    playout.enqueue(tts)
    tts.push(pcm_bytes(np.ones(10 * FRAME, np.int16)))
    drain(playout, 2)
    assert playout.stop(tts) == 1
    assert tts.cancelled
    assert tts.pull(FRAME) == FINISHED
    assert tts.statuses.get_nowait() == (False, "stopped")
    assert events.named("playback_finished") == [
        {"audio_uri": "stream://tts", "interrupted": True, "played_ms": 40}
    ]


async def test_tts_back_pressure_when_over_the_buffer() -> None:
    tts = TtsStream(8000, 8000, max_buffer_seconds=0.1)  # 800 samples
    await asyncio.wait_for(tts.wait_for_room(), 0.1)  # room at the start
    tts.push(pcm_bytes(np.ones(1000, np.int16)))
    waiter = asyncio.ensure_future(tts.wait_for_room())
    await asyncio.sleep(0.02)
    assert not waiter.done()
    assert isinstance(tts.pull(FRAME), np.ndarray)  # 1000 → 840: still over
    await asyncio.sleep(0.02)
    assert not waiter.done()
    assert isinstance(tts.pull(FRAME), np.ndarray)  # 840 → 680: room again
    await asyncio.wait_for(waiter, 1)


async def test_tts_cancel_releases_a_blocked_sender() -> None:
    tts = TtsStream(8000, 8000, max_buffer_seconds=0.05)
    tts.push(pcm_bytes(np.ones(1000, np.int16)))
    waiter = asyncio.ensure_future(tts.wait_for_room())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    tts.cancel()
    await asyncio.wait_for(waiter, 1)


async def test_tts_after_a_prompt_plays_in_order(playout: Playout, events: Events) -> None:
    playout.enqueue(Prompt("intro", np.full(FRAME, 5, np.int16), True))
    tts = TtsStream(8000, 8000)
    playout.enqueue(tts)
    tts.push(pcm_bytes(np.full(FRAME, 6, np.int16)))
    tts.close()
    frames = drain(playout, 3)
    assert [None if f is None else int(f[0]) for f in frames] == [5, 6, None]
    assert [fields["audio_uri"] for fields in events.named("playback_started")] == [
        "intro",
        "stream://tts",
    ]


async def test_empty_tts_stream_closed_at_once_finishes(playout: Playout, events: Events) -> None:
    tts = TtsStream(16000, 8000)
    playout.enqueue(tts)
    tts.push(b"")
    tts.close()
    assert playout.next_frame() is None
    assert events.named("playback_started") == []
    assert events.named("playback_finished") == [
        {"audio_uri": "stream://tts", "interrupted": False, "played_ms": 0}
    ]
