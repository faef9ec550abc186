"""The jitter buffer: decoded caller audio on a ring indexed by clock position.

Packets are written where `CallerPlacement` puts them, so out-of-order packets
land in order and duplicates overwrite themselves. The session reads one frame
per tick a fixed delay behind the clock; what is read is cleared, so a lost
packet reads as silence. A packet that lands wholly before the read cursor came
too late to play; one too far ahead does not fit the ring; `write` names the
reason so the session counts it.
"""

from __future__ import annotations

import numpy as np


class JitterBuffer:
    """A ring of int16 samples plus a mask of which samples hold audio."""

    __slots__ = ("_audio", "_mask", "cursor", "size")

    def __init__(self, size: int, cursor: int) -> None:
        self.size = size
        self._audio = np.zeros(size, dtype=np.int16)
        self._mask = np.zeros(size, dtype=np.bool_)
        self.cursor = cursor

    def write(self, position: int, samples: np.ndarray) -> str | None:
        """Store samples at `position`; returns the drop reason if they do not fit."""
        end = position + len(samples)
        if end <= self.cursor:
            return "late"
        if end > self.cursor + self.size:
            return "too_early"
        if position < self.cursor:
            samples = samples[self.cursor - position :]
            position = self.cursor
        start = position % self.size
        first = min(len(samples), self.size - start)
        self._audio[start : start + first] = samples[:first]
        self._mask[start : start + first] = True
        if first < len(samples):
            rest = len(samples) - first
            self._audio[:rest] = samples[first:]
            self._mask[:rest] = True
        return None

    def read(self, count: int) -> tuple[np.ndarray, bool]:
        """The next `count` samples from the cursor, and whether any of them is audio."""
        start = self.cursor % self.size
        self.cursor += count
        if start + count <= self.size:
            frame = self._audio[start : start + count].copy()
            heard = bool(self._mask[start : start + count].any())
            self._audio[start : start + count] = 0
            self._mask[start : start + count] = False
            return frame, heard
        head = self.size - start
        frame = np.concatenate((self._audio[start:], self._audio[: count - head]))
        heard = bool(self._mask[start:].any() or self._mask[: count - head].any())
        self._audio[start:] = 0
        self._audio[: count - head] = 0
        self._mask[start:] = False
        self._mask[: count - head] = False
        return frame, heard

    def skip_to(self, cursor: int) -> None:
        """Move the read cursor (after a clock jump), dropping what lies in between."""
        if cursor - self.cursor >= self.size:
            self._audio[:] = 0
            self._mask[:] = False
        else:
            while self.cursor < cursor:
                self.read(min(cursor - self.cursor, self.size))
        self.cursor = cursor
