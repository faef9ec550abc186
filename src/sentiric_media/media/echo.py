"""The echo tap (`control://enable_echo`): the caller's own audio looped back.

The caller's decoded audio goes into a jitter buffer; every tick, the frame a
jitter delay behind the clock is handed to the playout, which mixes it into
what the session sends.
"""

from __future__ import annotations

from collections import Counter

from sentiric_media.media.playout import Playout
from sentiric_media.media.taps import DelayedTap


class EchoTap(DelayedTap):
    def __init__(
        self, playout: Playout, rate: int, frame_samples: int, delay: int, drops: Counter[str]
    ) -> None:
        super().__init__(rate, frame_samples, delay, drops)
        self._playout = playout
        playout.set_echo(True)

    def on_tick(self, position: int) -> None:
        jitter = self.buffer(position)
        start = position - self.delay
        if jitter.cursor != start:
            jitter.skip_to(start)
        audio, heard = jitter.read(self.frame)
        if heard:
            self._playout.feed_echo(audio)

    def close(self) -> None:
        self._playout.set_echo(False)
