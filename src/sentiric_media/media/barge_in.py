"""Where barge-in decides: the caller talking over an interruptible prompt stops it.

Armed while an interruptible item is queued (a prompt with `interruptible`,
or a `StreamAudioToCall` stream when the setting makes those interruptible);
while armed, voice activity runs and this tap sees both directions. Once the
caller's current speech holds `min_speech_ms` of audio that our own echo
does not explain (`analysis/echo_path.py`: the echo path's delay and gain
estimated from what we sent, the caller's audio left after subtracting it)
while an interruptible item plays, `check` returns a `BargeIn` — which
prompt, how much of it played, and the reaction (speech onset to the
decision: the tick whose packet is then not sent) — and the session flushes
the playing item and every queued interruptible one
(`Playout.stop_interruptible`; the next non-interruptible item plays).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np

from sentiric_media.analysis.echo_path import EchoPath
from sentiric_media.media.playout import Playout
from sentiric_media.media.taps import CallerFrame

DEFAULT_MIN_SPEECH_MS = 160
_KEEP_MS = 3000  # caller frames remembered for the decision


class BargeIn(NamedTuple):
    audio_uri: str
    played_ms: int
    reaction_ms: int


class BargeInTap:
    """The barge-in decision of one session, fed both directions while armed."""

    ticks = False
    hears_bot = True
    takes_g711 = False

    def __init__(
        self, rate: int, min_speech_ms: int = DEFAULT_MIN_SPEECH_MS, echo: EchoPath | None = None
    ) -> None:
        self.rate = rate
        self.min_speech_ms = min_speech_ms
        # The call's echo path outlives one armed stretch: what earlier prompts taught
        # (a path, or that there is none) holds for the next prompt from its first frame.
        self.echo = echo if echo is not None and echo.rate == rate else EchoPath(rate)
        # (position, samples, arrival) of what the caller spoke
        self._present: deque[tuple[int, int, int]] = deque()

    @staticmethod
    def armed(playout: Playout) -> bool:
        """Something interruptible is queued: voice activity must run."""
        return playout.has_interruptible

    def on_caller(self, frame: CallerFrame) -> None:
        self.echo.heard(frame.position, frame.pcm)
        if self.echo.caller_present(frame.position, frame.pcm):
            present = self._present
            present.append((frame.position, len(frame.pcm), frame.arrival))
            while present and present[0][0] < frame.position - self.rate * _KEEP_MS // 1000:
                present.popleft()

    def on_g711(self, position: int, payload: bytes, table: np.ndarray) -> None:
        """Not called (`takes_g711` False)."""

    def on_tick(self, position: int) -> None:
        """Not called (`ticks` False)."""

    def on_bot(self, position: int, pcm: np.ndarray) -> None:
        self.echo.sent(position, pcm)

    def close(self) -> None:
        self._present.clear()

    def check(self, playout: Playout, onset: int | None, now: int) -> BargeIn | None:
        """Speech began at `onset` (None: not speaking); `now` is the clock position."""
        if onset is None:
            return None
        playing = playout.current
        if playing is None or not playing.interruptible or not playout.started:
            return None
        # The caller's own voice for min_speech_ms within the last min_speech_ms + 100 ms
        # (since the onset): a long echo "speech" with a glitch here and there adds up
        # to nothing.
        recent = max(onset, now - (self.min_speech_ms + 100) * self.rate // 1000)
        spoken = sum(count for position, count, _ in self._present if position >= recent)
        if spoken * 1000 < self.min_speech_ms * self.rate:
            return None  # not yet, or the "speech" is our own echo
        played_ms = playing.frames_played * playout.frame_ms
        # Reaction from when the caller's own voice reached us: its first packet's
        # arrival less the packet's length (the VAD's onset may be our echo's; a
        # frame's position is later than its arrival, by the jitter delay).
        began = next(
            arrival - count for position, count, arrival in self._present if position >= onset
        )
        # A caller already talking when the prompt began: its reaction counts from there.
        began = max(began, now - playing.frames_played * playout.frame_samples)
        reaction_ms = max(0, now - began) * 1000 // self.rate
        return BargeIn(playing.uri, played_ms, reaction_ms)
