"""Streaming resamplers that keep their state across frames (no clicks at edges).

`FrameResampler` turns each block of N input samples into exactly
N·out/in output samples: it primes itself once with the filter's delay, so a
live stream's frames are always rate/50 samples long and stay continuous.
`ChunkResampler` takes chunks of any length (TTS) and returns whatever the
filter has ready, with a final flush.
"""

from __future__ import annotations

import numpy as np
import soxr


def _stream(in_rate: int, out_rate: int) -> soxr.ResampleStream:
    # HQ with variable-rate mode yields output on every call; the default mode
    # holds it back for several frames and then bursts.
    return soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality="HQ", vr=True)


class FrameResampler:
    """Exact-length streaming resampling of int16 mono blocks."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = _stream(in_rate, out_rate) if in_rate != out_rate else None
        self._pending = np.zeros(0, dtype=np.int16)
        self._primed = False
        self.underflows = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        if self._stream is None:
            return block
        wanted = len(block) * self.out_rate // self.in_rate
        produced = self._stream.resample_chunk(block)
        pending = np.concatenate((self._pending, produced)) if len(self._pending) else produced
        if len(pending) < wanted:
            if self._primed:
                self.underflows += 1
            # The filter's delay, paid once as leading silence; later calls keep pace.
            pending = np.concatenate((np.zeros(wanted - len(pending), np.int16), pending))
        self._primed = True
        self._pending = pending[wanted:]
        return pending[:wanted]


class ChunkResampler:
    """Streaming resampling of int16 mono chunks of any length."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self._stream = _stream(in_rate, out_rate) if in_rate != out_rate else None

    def process(self, chunk: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:
            return chunk
        return self._stream.resample_chunk(chunk, last=last)
