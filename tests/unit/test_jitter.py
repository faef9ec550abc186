"""The jitter buffer ring (media/jitter.py): placement by position, late/early drops, wrap."""

from __future__ import annotations

import numpy as np
import pytest

from sentiric_media.media.jitter import JitterBuffer

FRAME = 160


def frame(value: int, count: int = FRAME) -> np.ndarray:
    return np.full(count, value, dtype=np.int16)


def ramp(start: int, count: int) -> np.ndarray:
    return np.arange(start, start + count, dtype=np.int16)


def test_out_of_order_writes_read_in_order() -> None:
    buffer = JitterBuffer(FRAME * 8, cursor=0)
    for index in (3, 0, 2, 1):
        assert buffer.write(index * FRAME, frame(index + 1)) is None
    for index in range(4):
        audio, heard = buffer.read(FRAME)
        assert heard
        np.testing.assert_array_equal(audio, frame(index + 1))


def test_duplicate_write_overwrites_harmlessly() -> None:
    buffer = JitterBuffer(FRAME * 4, cursor=0)
    assert buffer.write(0, frame(7)) is None
    assert buffer.write(0, frame(7)) is None
    audio, heard = buffer.read(FRAME)
    np.testing.assert_array_equal(audio, frame(7))
    assert heard
    audio, heard = buffer.read(FRAME)
    assert not heard
    assert not audio.any()


def test_lost_packet_reads_as_silence_not_heard() -> None:
    buffer = JitterBuffer(FRAME * 4, cursor=0)
    buffer.write(0, frame(1))
    buffer.write(2 * FRAME, frame(3))
    assert buffer.read(FRAME)[1]
    audio, heard = buffer.read(FRAME)
    assert not heard
    np.testing.assert_array_equal(audio, frame(0))
    audio, heard = buffer.read(FRAME)
    assert heard
    np.testing.assert_array_equal(audio, frame(3))


def test_a_real_zero_sample_is_heard() -> None:
    buffer = JitterBuffer(FRAME * 2, cursor=0)
    buffer.write(0, frame(0))
    audio, heard = buffer.read(FRAME)
    assert heard
    assert not audio.any()


def test_reading_clears_what_was_read() -> None:
    buffer = JitterBuffer(FRAME * 2, cursor=0)
    buffer.write(0, frame(5, 2 * FRAME))
    buffer.read(2 * FRAME)
    # One lap later, the same ring slots hold nothing.
    audio, heard = buffer.read(2 * FRAME)
    assert not heard
    assert not audio.any()


def test_partially_heard_frame() -> None:
    buffer = JitterBuffer(FRAME * 4, cursor=0)
    buffer.write(100, frame(9, 20))
    audio, heard = buffer.read(FRAME)
    assert heard
    expected = np.zeros(FRAME, np.int16)
    expected[100:120] = 9
    np.testing.assert_array_equal(audio, expected)


def test_write_wholly_before_the_cursor_is_late() -> None:
    buffer = JitterBuffer(FRAME * 4, cursor=1000)
    assert buffer.write(1000 - FRAME, frame(1)) == "late"
    assert buffer.write(0, frame(1)) == "late"
    audio, heard = buffer.read(FRAME)
    assert not heard
    assert not audio.any()


def test_write_beyond_the_ring_is_too_early() -> None:
    buffer = JitterBuffer(FRAME * 4, cursor=1000)
    assert buffer.write(1000 + 4 * FRAME, frame(1)) == "too_early"
    assert buffer.write(1000 + 3 * FRAME + 1, frame(1)) == "too_early"
    assert buffer.write(1000 + 3 * FRAME, frame(1)) is None  # ends exactly at the ring's end
    for _ in range(3):
        assert not buffer.read(FRAME)[1]
    audio, heard = buffer.read(FRAME)
    assert heard
    np.testing.assert_array_equal(audio, frame(1))


def test_write_longer_than_the_ring_is_too_early() -> None:
    buffer = JitterBuffer(FRAME, cursor=0)
    assert buffer.write(0, frame(1, FRAME + 1)) == "too_early"


def test_partially_late_write_keeps_the_on_time_part() -> None:
    buffer = JitterBuffer(FRAME * 4, cursor=FRAME)
    assert buffer.write(FRAME - 60, ramp(0, FRAME)) is None
    audio, heard = buffer.read(FRAME)
    assert heard
    np.testing.assert_array_equal(audio[:100], ramp(60, 100))
    assert not audio[100:].any()
    # The late 60 samples must not have been written anywhere else in the ring.
    for _ in range(3):
        audio, heard = buffer.read(FRAME)
        assert not heard
        assert not audio.any()


def test_write_ending_exactly_at_the_cursor_is_late() -> None:
    buffer = JitterBuffer(FRAME * 4, cursor=FRAME)
    assert buffer.write(0, frame(1)) == "late"
    assert buffer.write(1, frame(1)) is None


def test_write_wraps_around_the_ring() -> None:
    size = FRAME * 3
    buffer = JitterBuffer(size, cursor=0)
    for _ in range(2):
        buffer.read(FRAME)
    # Cursor at 320; ring slots 320..479 then 0..159 hold positions 320..639.
    assert buffer.write(2 * FRAME, ramp(0, 2 * FRAME)) is None
    first, heard_first = buffer.read(FRAME)
    second, heard_second = buffer.read(FRAME)
    assert heard_first
    assert heard_second
    np.testing.assert_array_equal(np.concatenate((first, second)), ramp(0, 2 * FRAME))


def test_read_wraps_around_the_ring() -> None:
    size = 400
    buffer = JitterBuffer(size, cursor=300)
    assert buffer.write(300, ramp(1, 200)) is None  # slots 300..399 and 0..99
    audio, heard = buffer.read(200)
    assert heard
    np.testing.assert_array_equal(audio, ramp(1, 200))
    # Both halves were cleared.
    buffer.skip_to(700)
    audio, heard = buffer.read(200)
    assert not heard
    assert not audio.any()


def test_read_wrap_reports_heard_from_either_half() -> None:
    buffer = JitterBuffer(400, cursor=300)
    buffer.write(450, frame(4, 10))  # lands in slots 50..59, after the wrap
    audio, heard = buffer.read(200)
    assert heard
    assert audio[150:160].tolist() == [4] * 10
    assert np.count_nonzero(audio) == 10


def test_continuous_stream_over_many_laps() -> None:
    size = FRAME * 5
    buffer = JitterBuffer(size, cursor=0)
    rng = np.random.default_rng(11)
    written: dict[int, np.ndarray] = {}
    for k in range(300):
        # Write two frames ahead, read one frame per step: many laps of the ring.
        samples = rng.integers(-30000, 30000, FRAME, dtype=np.int16)
        written[k] = samples
        assert buffer.write(k * FRAME + 2 * FRAME, samples) is None
        audio, heard = buffer.read(FRAME)
        if k >= 2:
            assert heard
            np.testing.assert_array_equal(audio, written[k - 2])


def test_odd_sizes_and_positions() -> None:
    buffer = JitterBuffer(333, cursor=17)
    assert buffer.write(17 + 300, ramp(100, 33)) is None  # wraps: 317 % 333 .. 349 % 333
    buffer.skip_to(317)
    audio, heard = buffer.read(33)
    assert heard
    np.testing.assert_array_equal(audio, ramp(100, 33))


def test_skip_to_drops_what_lies_in_between() -> None:
    buffer = JitterBuffer(FRAME * 4, cursor=0)
    buffer.write(0, frame(1))
    buffer.write(FRAME, frame(2))
    buffer.write(2 * FRAME, frame(3))
    buffer.skip_to(2 * FRAME)
    assert buffer.cursor == 2 * FRAME
    audio, heard = buffer.read(FRAME)
    assert heard
    np.testing.assert_array_equal(audio, frame(3))
    # The skipped audio does not come back one lap later.
    buffer.skip_to(6 * FRAME)
    for _ in range(2):
        assert not buffer.read(FRAME)[1]


def test_skip_far_ahead_clears_the_ring() -> None:
    buffer = JitterBuffer(FRAME * 4, cursor=0)
    buffer.write(FRAME, frame(2, 3 * FRAME))
    buffer.skip_to(10_000)
    assert buffer.cursor == 10_000
    for _ in range(4):
        audio, heard = buffer.read(FRAME)
        assert not heard
        assert not audio.any()
    assert buffer.write(9_000, frame(1)) == "late"


@pytest.mark.parametrize("count", [1, 7, FRAME, 3 * FRAME])
def test_read_returns_exactly_count_samples_and_advances(count: int) -> None:
    buffer = JitterBuffer(FRAME * 4, cursor=5)
    audio, _ = buffer.read(count)
    assert len(audio) == count
    assert audio.dtype == np.int16
    assert buffer.cursor == 5 + count


def test_read_returns_a_copy() -> None:
    buffer = JitterBuffer(FRAME * 2, cursor=0)
    buffer.write(0, frame(3))
    audio, _ = buffer.read(FRAME)
    buffer.write(2 * FRAME, frame(8))  # reuses the same ring slots
    np.testing.assert_array_equal(audio, frame(3))
