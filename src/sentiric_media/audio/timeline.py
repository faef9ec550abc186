"""The recording timeline: where every sample of the dialog is placed in the recording.

Both parties share one clock (samples at the session rate). Each leg is written
at the position its audio was heard or spoken — the caller's by RTP timestamp,
the bot's by the tick it was sent at — so pauses stay pauses and overlaps
overlap. Only an open window (a couple of seconds, to take late packets) stays
in memory: audio older than the window is final and goes to `sink` as
interleaved 16-bit (caller, bot) frames. Memory is constant however long the
call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CALLER = 0
BOT = 1


class Timeline:
    """A two-leg ring of int16 samples over absolute clock positions."""

    def __init__(
        self,
        start: int,
        window: int,
        sink: Callable[[bytes], None],
        flush_block: int | None = None,
    ) -> None:
        self.start = start
        self.window = window
        self.flush_block = flush_block or max(1, window // 2)
        self.flushed = start
        self.size = window + self.flush_block * 2
        self._ring = np.zeros((self.size, 2), dtype=np.int16)
        self._sink = sink
        self.end: int | None = None
        self.late_writes = 0

    def write(self, leg: int, position: int, samples: np.ndarray) -> None:
        """Place `samples` of one leg at `position` (overwriting what was there)."""
        end = position + len(samples)
        if self.end is not None:
            end = min(end, self.end)
        if end <= self.flushed:
            if end > self.start:
                self.late_writes += 1
            return
        if position < self.flushed:
            samples = samples[self.flushed - position :]
            position = self.flushed
        samples = samples[: end - position]
        if end > self.flushed + self.size:
            self._flush_until(end - self.size)
        first = position % self.size
        head = min(len(samples), self.size - first)
        self._ring[first : first + head, leg] = samples[:head]
        if head < len(samples):
            self._ring[: len(samples) - head, leg] = samples[head:]

    def advance(self, now: int) -> None:
        """The clock reached `now`: audio older than the window becomes final."""
        if now - self.window - self.flushed >= self.flush_block:
            self._flush_until(now - self.window)

    def finish(self, end: int) -> int:
        """Close the timeline at `end`, flush the rest; returns the length in samples."""
        self.end = max(end, self.flushed)
        self._flush_until(self.end)
        return self.end - self.start

    @property
    def length(self) -> int:
        """Samples from the start to what is final (to the end once finished)."""
        return (self.end if self.end is not None else self.flushed) - self.start

    def _flush_until(self, position: int) -> None:
        while self.flushed < position:
            count = min(position - self.flushed, self.size)
            first = self.flushed % self.size
            head = min(count, self.size - first)
            block = self._ring[first : first + head]
            self._sink(block.tobytes())
            block[:] = 0
            if head < count:
                rest = self._ring[: count - head]
                self._sink(rest.tobytes())
                rest[:] = 0
            self.flushed += count
