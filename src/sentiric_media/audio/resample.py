"""Streaming resamplers that keep their state across frames (no clicks at edges).

`FrameResampler` turns each block of N input samples into exactly
N·out/in output samples: it primes itself once with the filter's delay, so a
live stream's frames are always rate/50 samples long and stay continuous.
`ChunkResampler` takes chunks of any length (TTS) and returns whatever the
filter has ready, with a final flush.

Integer upsampling (8 kHz calls to 16, 24 or 48 kHz live audio, the common
case) uses `PolyphaseUpsampler`, a windowed-sinc FIR computed once: exact
output length with no priming, flat to 3.4 kHz (-0.35 dB), images below
-90 dB, and about a third of soxr's cost per 20 ms frame. Other ratios use soxr.
"""

from __future__ import annotations

import numpy as np
import soxr

from sentiric_media.audio.pcm import INT16_MAX, INT16_MIN


def _stream(in_rate: int, out_rate: int) -> soxr.ResampleStream:
    # HQ with variable-rate mode yields output on every call; the default mode
    # holds it back for several frames and then bursts. Float, not int16: soxr
    # dithers int16 output, which would turn digital silence into noise.
    return soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ", vr=True)


def _resample(stream: soxr.ResampleStream, samples: np.ndarray, last: bool = False) -> np.ndarray:
    out = stream.resample_chunk(samples.astype(np.float32) * (1 / 32768), last=last)
    scaled = np.rint(out * 32768)
    return np.minimum(np.maximum(scaled, INT16_MIN), INT16_MAX).astype(np.int16)


def _upsampling_filter(factor: int, taps: int, cutoff: float, beta: float) -> np.ndarray:
    """Polyphase matrix (taps × factor): column p makes output sample p of each input."""
    length = factor * taps
    t = (np.arange(length) - (length - 1) / 2) / factor
    prototype = np.sinc(t * cutoff) * cutoff * np.kaiser(length, beta)
    prototype *= factor / prototype.sum()
    return np.stack([prototype[p::factor][::-1] for p in range(factor)], axis=1).astype(np.float32)


class PolyphaseUpsampler:
    """Streaming integer-factor upsampling of int16 blocks by one matrix product."""

    TAPS = 32

    def __init__(self, factor: int) -> None:
        self.factor = factor
        self._filter = _upsampling_filter(factor, self.TAPS, cutoff=0.95, beta=8.5)
        self._history = np.zeros(self.TAPS - 1, dtype=np.float32)
        self._windows: dict[int, np.ndarray] = {}

    def process(self, block: np.ndarray) -> np.ndarray:
        extended = np.concatenate((self._history, block.astype(np.float32)))
        self._history = extended[len(block) :]
        windows = self._windows.get(len(block))
        if windows is None:
            windows = np.arange(len(block))[:, None] + np.arange(self.TAPS)[None, :]
            self._windows[len(block)] = windows
        out = (extended[windows] @ self._filter).ravel()
        np.clip(out, INT16_MIN, INT16_MAX, out=out)
        return out.astype(np.int16)


class FrameResampler:
    """Exact-length streaming resampling of int16 mono blocks."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._upsampler = (
            PolyphaseUpsampler(out_rate // in_rate)
            if out_rate > in_rate and out_rate % in_rate == 0
            else None
        )
        self._stream = (
            _stream(in_rate, out_rate) if in_rate != out_rate and self._upsampler is None else None
        )
        self._pending = np.zeros(0, dtype=np.int16)
        self._started = False
        self.underflows = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        if self._upsampler is not None:
            return self._upsampler.process(block)
        if self._stream is None:
            return block
        wanted = len(block) * self.out_rate // self.in_rate
        produced = _resample(self._stream, block)
        pending = np.concatenate((self._pending, produced)) if len(self._pending) else produced
        if len(pending) < wanted:
            if self._started:
                self.underflows += 1
            # Before the first output this is the filter's delay, paid once as
            # leading silence; afterwards the filter keeps pace.
            pending = np.concatenate((np.zeros(wanted - len(pending), np.int16), pending))
        self._started = self._started or len(produced) > 0
        self._pending = pending[wanted:]
        return pending[:wanted]


class ChunkResampler:
    """Streaming resampling of int16 mono chunks of any length."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._stream = _stream(in_rate, out_rate) if in_rate != out_rate else None

    def process(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return chunk
        return _resample(self._stream, chunk, last=last)
