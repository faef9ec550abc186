"""Where barge-in decides: the caller talking over an interruptible prompt stops it.

Armed while an interruptible item is queued (a prompt with `interruptible`,
or a `StreamAudioToCall` stream when the setting makes those interruptible);
while armed, voice activity runs. Once the caller's current speech has lasted
`min_speech_ms` from its onset while an interruptible item plays, `check`
returns a `BargeIn` (which prompt, how much of it played, the reaction: speech
onset to the decision, which is the tick whose packet is not sent), and the
session flushes the playing item and every queued interruptible one
(`Playout.stop_interruptible`; the next non-interruptible item plays).

Not built yet: echo safety. A phone that returns our prompt loudly enough for
the VAD to call it speech would interrupt it; see the issue notes.
"""

from __future__ import annotations

from typing import NamedTuple

from sentiric_media.media.playout import Playout

DEFAULT_MIN_SPEECH_MS = 160


class BargeIn(NamedTuple):
    audio_uri: str
    played_ms: int
    reaction_ms: int


class BargeInDetector:
    """The barge-in decision of one session."""

    def __init__(self, rate: int, min_speech_ms: int = DEFAULT_MIN_SPEECH_MS) -> None:
        self.rate = rate
        self.min_speech_ms = min_speech_ms

    @staticmethod
    def armed(playout: Playout) -> bool:
        """Something interruptible is queued: voice activity must run."""
        return playout.has_interruptible

    def check(self, playout: Playout, onset: int | None, now: int) -> BargeIn | None:
        """Speech began at `onset` (None: not speaking); `now` is the clock position."""
        if onset is None:
            return None
        playing = playout.current
        if playing is None or not playing.interruptible or not playout.started:
            return None
        if (now - onset) * 1000 < self.min_speech_ms * self.rate:
            return None
        played_ms = playing.frames_played * playout.frame_ms
        reaction_ms = (now - onset) * 1000 // self.rate
        return BargeIn(playing.uri, played_ms, reaction_ms)
