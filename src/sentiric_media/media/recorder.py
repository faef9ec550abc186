"""The recording tap: where the session's audio is handed to the recording `Timeline`.

Bot frames go in at the tick they left. Caller audio is held back
`RECORDING_HOLD_MS` after arrival (at most half the timeline's window) and
only then placed at `stamp + anchor.offset`: by then the first packets of a
talkspurt, which anchored it however late they arrived, have been corrected
by the faster packets that followed (see `placement`).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from sentiric_media.audio.timeline import BOT, CALLER, Timeline
from sentiric_media.media.placement import Anchor
from sentiric_media.media.taps import CallerFrame

RECORDING_HOLD_MS = 1000


class RecorderTap:
    """Feeds one recording's timeline from the session's tick."""

    ticks = True
    hears_bot = True
    takes_g711 = False

    def __init__(self, timeline: Timeline, rate: int) -> None:
        self.timeline = timeline
        self._hold = min(rate * RECORDING_HOLD_MS // 1000, timeline.window // 2)
        self._held: deque[CallerFrame] = deque()

    def on_caller(self, frame: CallerFrame) -> None:
        self._held.append(frame)

    def on_tick(self, position: int) -> None:
        if self._held:
            self._place_held(position - self._hold)
        self.timeline.advance(position)

    def on_bot(self, position: int, pcm: np.ndarray) -> None:
        self.timeline.write(BOT, position, pcm)

    def on_g711(self, position: int, payload: bytes, table: np.ndarray) -> None:
        """Not called (`takes_g711` False)."""

    def overlay_caller(self, position: int, pcm: np.ndarray, now: int) -> None:
        """Caller audio made here (DTMF tones): at `position`, over what arrived before `now`."""
        self._held.append(CallerFrame(position, position, Anchor(0), now, pcm))

    def close(self) -> None:
        """Place the caller audio still held back; the timeline is finished by its owner."""
        if self._held:
            self._place_held(self._held[-1].arrival)
        self._held.clear()

    def _place_held(self, arrived_before: int) -> None:
        held, timeline = self._held, self.timeline
        while held and held[0].arrival <= arrived_before:
            frame = held.popleft()
            timeline.write(CALLER, frame.stamp + frame.anchor.offset, frame.pcm)
