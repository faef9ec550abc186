"""Streaming resamplers (audio/resample.py): exact frame lengths and continuity across frames."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sentiric_media.audio.resample import ChunkResampler, FrameResampler

PAIRS = [(8000, 16000), (8000, 48000), (16000, 8000), (8000, 24000), (48000, 16000)]
FRAMES = 500
TONE_HZ = 440.0
AMPLITUDE = 10000.0


def tone(rate: int, count: int, freq: float = TONE_HZ) -> np.ndarray:
    return np.rint(AMPLITUDE * np.sin(2 * np.pi * freq * np.arange(count) / rate)).astype(np.int16)


def sine_fit(signal: np.ndarray, rate: int, freq: float) -> tuple[float, float]:
    """Correlation of `signal` with the best-fitting sine of `freq` (any phase), and amplitude."""
    t = np.arange(len(signal)) / rate
    basis = np.stack((np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)), axis=1)
    coefficients, *_ = np.linalg.lstsq(basis, signal.astype(np.float64), rcond=None)
    fitted = basis @ coefficients
    return float(np.corrcoef(fitted, signal)[0, 1]), float(np.hypot(*coefficients))


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_frame_resampler_output_is_exact_and_continuous(in_rate: int, out_rate: int) -> None:
    frame_in = in_rate // 50
    frame_out = out_rate // 50
    signal = tone(in_rate, FRAMES * frame_in)
    resampler = FrameResampler(in_rate, out_rate)
    outputs = []
    for k in range(FRAMES):
        out = resampler.process(signal[k * frame_in : (k + 1) * frame_in])
        assert len(out) == frame_in * out_rate // in_rate == frame_out, f"frame {k}"
        assert out.dtype == np.int16
        outputs.append(out)
    joined = np.concatenate(outputs)
    assert len(joined) == FRAMES * frame_out
    # The priming delay is paid once at the start: at most a few frames of lead-in.
    start = int(np.argmax(np.abs(joined) > AMPLITUDE / 10))
    assert start < 3 * frame_out
    steady = joined[start + 2 * frame_out :].astype(np.float64)
    # No jumps: a sine's steepest step per output sample is A·2πf/rate.
    slope = AMPLITUDE * 2 * np.pi * TONE_HZ / out_rate
    assert np.abs(np.diff(steady)).max() <= slope * 1.02 + 4
    correlation, amplitude = sine_fit(steady, out_rate, TONE_HZ)
    assert correlation >= 0.999
    assert amplitude == pytest.approx(AMPLITUDE, rel=0.01)


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_frame_resampler_keeps_its_delay_constant(in_rate: int, out_rate: int) -> None:
    # The same signal, cut into frames of 20 ms or of 60 ms, gives the same output: the
    # resampler inserts silence only once, when it primes.
    signal = tone(in_rate, 150 * in_rate // 50)
    small, large = FrameResampler(in_rate, out_rate), FrameResampler(in_rate, out_rate)
    by_20 = np.concatenate([small.process(block) for block in np.split(signal, 150)]).astype(
        np.int64
    )
    by_60 = np.concatenate([large.process(block) for block in np.split(signal, 50)]).astype(
        np.int64
    )
    # Compare after both have produced their first real output.
    skip = 6 * out_rate // 50
    lag_20 = int(np.argmax(np.abs(by_20) > AMPLITUDE / 10))
    lag_60 = int(np.argmax(np.abs(by_60) > AMPLITUDE / 10))
    assert abs(lag_20 - lag_60) <= 3 * out_rate // 50
    assert len(by_20) == len(by_60)
    tail_20 = by_20[skip + lag_20 : len(by_20) - out_rate // 25]
    tail_60 = by_60[skip + lag_60 : skip + lag_60 + len(tail_20)]
    assert np.abs(tail_20 - tail_60).max() <= 2


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 16000), (8000, 48000)])
def test_steady_upsampling_reports_no_underflow(in_rate: int, out_rate: int) -> None:
    resampler = FrameResampler(in_rate, out_rate)
    signal = tone(in_rate, 100 * in_rate // 50)
    for block in np.split(signal, 100):
        resampler.process(block)
    assert resampler.underflows == 0


@pytest.mark.parametrize(("in_rate", "out_rate"), [(16000, 8000), (48000, 16000)])
def test_steady_downsampling_reports_no_underflow(in_rate: int, out_rate: int) -> None:
    resampler = FrameResampler(in_rate, out_rate)
    for block in np.split(tone(in_rate, 100 * in_rate // 50), 100):
        resampler.process(block)
    assert resampler.underflows == 0


@pytest.mark.parametrize("resampler_class", [FrameResampler, ChunkResampler])
def test_digital_silence_stays_silent(
    resampler_class: type[FrameResampler] | type[ChunkResampler],
) -> None:
    resampler = resampler_class(8000, 16000)
    output = np.concatenate([resampler.process(np.zeros(160, np.int16)) for _ in range(50)])
    assert np.count_nonzero(output) == 0


def test_frame_resampler_at_equal_rates_passes_frames_through() -> None:
    resampler = FrameResampler(8000, 8000)
    frame = tone(8000, 160)
    np.testing.assert_array_equal(resampler.process(frame), frame)


def test_frame_resampler_handles_other_block_sizes() -> None:
    resampler = FrameResampler(8000, 16000)
    for size in (800, 160, 1600, 320):
        assert len(resampler.process(tone(8000, size))) == 2 * size


# --- ChunkResampler ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(16000, 8000), (8000, 16000), (16000, 48000), (44100, 8000), (22050, 16000), (16000, 16000)],
)
def test_chunk_resampler_total_length_after_flush(in_rate: int, out_rate: int) -> None:
    rng = random.Random(in_rate * 7 + out_rate)
    signal = tone(in_rate, 2 * in_rate)
    resampler = ChunkResampler(in_rate, out_rate)
    outputs = []
    position = 0
    sizes_seen = set()
    while position < len(signal):
        size = rng.choice([1, 1, 2, 3, 5, 7, 159, 161, 321, rng.randrange(1, 4001)])
        sizes_seen.add(size)
        outputs.append(resampler.process(signal[position : position + size]))
        position += size
    outputs.append(resampler.process(np.zeros(0, dtype=np.int16), last=True))
    assert {1, 3, 7} <= sizes_seen
    joined = np.concatenate(outputs)
    assert joined.dtype == np.int16
    assert abs(len(joined) - len(signal) * out_rate / in_rate) <= 4
    # Chunk borders leave no trace: the output is one clean sine.
    middle = joined[out_rate // 10 : -out_rate // 10]
    correlation, amplitude = sine_fit(middle, out_rate, TONE_HZ)
    assert correlation >= 0.999
    assert amplitude == pytest.approx(AMPLITUDE, rel=0.01)
    slope = AMPLITUDE * 2 * np.pi * TONE_HZ / out_rate
    assert np.abs(np.diff(middle.astype(np.float64))).max() <= slope * 1.02 + 4


def test_chunk_resampler_output_does_not_depend_on_chunking() -> None:
    signal = tone(16000, 16000)
    whole = ChunkResampler(16000, 8000)
    one_go = np.concatenate((whole.process(signal), whole.process(signal[:0], last=True)))
    pieces = ChunkResampler(16000, 8000)
    rng = random.Random(5)
    parts = []
    position = 0
    while position < len(signal):
        size = rng.randrange(1, 700)
        parts.append(pieces.process(signal[position : position + size]))
        position += size
    parts.append(pieces.process(signal[:0], last=True))
    chunked = np.concatenate(parts)
    assert len(chunked) == len(one_go)
    assert np.abs(chunked.astype(np.int32) - one_go).max() <= 2
