"""Unit: the recording timeline's storage side (audio/timeline.Timeline).

Placement at positions, overwrite, late writes, block flushes to the sink, the
bounded window, the tail at finish, and the two legs kept apart. (Where the
media path puts packets on the timeline is tested elsewhere.)
"""

from __future__ import annotations

import tracemalloc

import numpy as np

from sentiric_media.audio.timeline import BOT, CALLER, Timeline


class Sink:
    """Collects what the timeline flushes: interleaved int16 (caller, bot) frames."""

    def __init__(self, keep: bool = True) -> None:
        self.keep = keep
        self.chunks: list[bytes] = []
        self.frames = 0
        self.calls = 0

    def __call__(self, data: bytes) -> None:
        assert len(data) % 4 == 0
        self.calls += 1
        self.frames += len(data) // 4
        if self.keep:
            self.chunks.append(bytes(data))  # the ring is zeroed after the call: copy

    @property
    def audio(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.chunks), dtype="<i2").reshape(-1, 2)


def ones(count: int, value: int) -> np.ndarray:
    return np.full(count, value, dtype=np.int16)


def test_samples_land_at_their_positions_and_legs_stay_apart() -> None:
    sink = Sink()
    timeline = Timeline(start=1000, window=400, sink=sink, flush_block=100)
    timeline.write(CALLER, 1100, ones(50, 7))
    timeline.write(BOT, 1120, ones(30, -5))
    assert timeline.finish(1300) == 300
    audio = sink.audio
    assert audio.shape == (300, 2)
    expected_caller = np.zeros(300, np.int16)
    expected_caller[100:150] = 7
    expected_bot = np.zeros(300, np.int16)
    expected_bot[120:150] = -5
    assert np.array_equal(audio[:, CALLER], expected_caller)
    assert np.array_equal(audio[:, BOT], expected_bot)


def test_a_later_write_overwrites_the_same_positions_of_its_own_leg_only() -> None:
    sink = Sink()
    timeline = Timeline(start=0, window=400, sink=sink, flush_block=100)
    timeline.write(BOT, 0, ones(20, 9))
    timeline.write(CALLER, 0, ones(10, 1))
    timeline.write(CALLER, 5, ones(10, 2))
    timeline.finish(20)
    audio = sink.audio
    assert audio[:, CALLER].tolist() == [1] * 5 + [2] * 10 + [0] * 5
    assert audio[:, BOT].tolist() == [9] * 20


def test_audio_before_the_start_is_cut_off() -> None:
    sink = Sink()
    timeline = Timeline(start=500, window=400, sink=sink, flush_block=100)
    timeline.write(CALLER, 490, np.arange(1, 21, dtype=np.int16))
    timeline.write(CALLER, 400, ones(50, 3))  # entirely before the start: not a late write
    assert timeline.finish(520) == 20
    assert sink.audio[:, CALLER].tolist() == list(range(11, 21)) + [0] * 10
    assert timeline.late_writes == 0


def test_writes_behind_the_flushed_edge_are_counted_late_and_dropped() -> None:
    sink = Sink()
    timeline = Timeline(start=0, window=400, sink=sink, flush_block=100)
    timeline.advance(700)  # final up to 300
    assert timeline.flushed == 300
    timeline.write(CALLER, 100, ones(50, 4))  # wholly final: dropped, counted
    assert timeline.late_writes == 1
    timeline.write(CALLER, 280, ones(40, 6))  # straddles the edge: only the tail is kept
    assert timeline.late_writes == 1
    timeline.finish(400)
    caller = sink.audio[:, CALLER]
    assert not caller[:300].any()
    assert caller[300:320].tolist() == [6] * 20
    assert not caller[320:].any()


def test_advance_flushes_whole_blocks_behind_the_window() -> None:
    sink = Sink()
    window, block = 400, 100
    timeline = Timeline(start=0, window=window, sink=sink, flush_block=block)
    sizes: list[int] = []
    for now in range(0, 5000, 20):
        timeline.write(CALLER, now, ones(20, (now // 20) % 100 + 1))
        before = sink.frames
        timeline.advance(now + 20)
        if sink.frames != before:
            sizes.append(sink.frames - before)
        # What is not final is between one window and one window + one block long.
        open_part = (now + 20) - timeline.flushed
        assert min(now + 20, window) <= open_part < window + block
    assert sizes
    assert all(size == block for size in sizes)
    assert timeline.finish(5000) == 5000
    expected = np.repeat(np.arange(250) % 100 + 1, 20).astype(np.int16)
    assert np.array_equal(sink.audio[:, CALLER], expected)


def test_writing_far_ahead_flushes_instead_of_overwriting_unflushed_audio() -> None:
    sink = Sink()
    timeline = Timeline(start=0, window=400, sink=sink, flush_block=100)  # ring of 600
    timeline.write(CALLER, 0, ones(100, 1))
    timeline.write(CALLER, 650, ones(50, 2))  # beyond the ring: the start must go out first
    timeline.finish(700)
    caller = sink.audio[:, CALLER]
    assert caller[:100].tolist() == [1] * 100
    assert not caller[100:650].any()
    assert caller[650:700].tolist() == [2] * 50


def test_writes_across_the_ring_boundary_wrap_correctly() -> None:
    sink = Sink()
    timeline = Timeline(start=0, window=400, sink=sink, flush_block=100)  # ring of 600
    timeline.advance(800)  # flushed up to 400
    ramp = np.arange(1, 301, dtype=np.int16)
    timeline.write(BOT, 450, ramp)  # ring slots 450..599 then 0..149
    timeline.finish(900)
    bot = sink.audio[:, BOT]
    assert np.array_equal(bot[450:750], ramp)
    assert not bot[:450].any()
    assert not bot[750:].any()


def test_finish_flushes_the_tail_and_closes_the_timeline() -> None:
    sink = Sink()
    timeline = Timeline(start=100, window=400, sink=sink, flush_block=100)
    timeline.write(CALLER, 100, ones(250, 5))
    assert sink.frames == 0  # all still in the open window
    assert timeline.finish(350) == 250
    assert sink.frames == 250
    assert timeline.length == 250
    assert sink.audio[:, CALLER].tolist() == [5] * 250
    timeline.write(CALLER, 340, ones(30, 8))  # after the end: dropped
    assert sink.frames == 250
    assert timeline.late_writes == 1


def test_finish_before_the_flushed_edge_keeps_what_is_final() -> None:
    sink = Sink()
    timeline = Timeline(start=0, window=400, sink=sink, flush_block=100)
    timeline.advance(1000)
    assert timeline.finish(200) == timeline.flushed == 600
    assert sink.frames == 600


def test_memory_stays_constant_however_long_the_recording() -> None:
    rate, frame = 8000, 160
    sink = Sink(keep=False)
    timeline = Timeline(start=0, window=2 * rate, sink=sink, flush_block=rate)
    ring = timeline._ring
    voice = np.full(frame, 1000, dtype=np.int16)

    def run(seconds: int, offset: int) -> None:
        for index in range(seconds * rate // frame):
            position = offset + index * frame
            timeline.write(BOT, position, voice)
            timeline.write(CALLER, position + 37, voice)
            timeline.advance(position + frame)

    tracemalloc.start()
    try:
        run(60, 0)
        after_one_minute = tracemalloc.get_traced_memory()[0]
        run(600, 60 * rate)
        after_eleven_minutes = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert timeline._ring is ring
    assert ring.shape == (4 * rate, 2)  # window + two blocks, however long the call
    assert after_eleven_minutes - after_one_minute < 64 * 1024
    assert sink.frames == 660 * rate - 2 * rate  # everything older than the window went out
    assert timeline.finish(660 * rate) == 660 * rate
    assert sink.frames == 660 * rate
