"""The tap that sends the caller's speech, and only speech, to the analysis worker.

Every caller frame goes into a short ring (`PREROLL_MS`) at the session rate;
nothing else happens while the caller is silent. When voice activity says
speech began (which it knows a few frames late), the ring from just before
the onset is sent (at the session rate: the worker resamples for the keyword
spotter itself, off the loop), then each new frame as it comes; `TAIL_MS`
after the speech ended the stretch is closed (`pause`), so a word cut by the
end decision still finishes. What the worker finds
(keywords, emotion estimates) comes back a frame or two later and is
reported at its place on the session clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from sentiric_media.analysis.worker import AnalysisWorker
from sentiric_media.analysis.worker_protocol import EmotionAt, Wanted
from sentiric_media.media.taps import CallerFrame

if TYPE_CHECKING:
    from sentiric_media.analysis.keywords import KeywordHit
    from sentiric_media.analysis.prosody import Emotion

PREROLL_MS = 600  # covers the VAD's decision delay (min speech 96 ms + a window) with room
LEAD_MS = 150  # sent before the onset the VAD found: the word's first consonant
TAIL_MS = 300  # after the VAD's end: the last syllable and the decoder's delay


class Found(NamedTuple):
    """Where a speech tap reports what was found, at positions at the session rate."""

    keyword: Callable[[str, float, int], None]  # (keyword, confidence, position)
    emotion: Callable[[Emotion, int], None]  # (estimate, where its piece began)
    failure: Callable[[str], None]


class SpeechTap:
    """Feeds one session's caller speech to the analysis worker."""

    ticks = False
    hears_bot = False
    takes_g711 = False

    def __init__(self, worker: AnalysisWorker, rate: int, wanted: Wanted, found: Found) -> None:
        self.rate = rate
        self.wanted = wanted
        self._worker = worker
        self._found = found
        self._ring: deque[CallerFrame] = deque(maxlen=PREROLL_MS * 50 // 1000)
        self._next: int | None = None  # the position the stream expects next (None: paused)
        self._until: int | None = None  # speech ended: keep sending up to this position
        self._stream = worker.open(wanted, rate, self)

    def change(self, wanted: Wanted) -> None:
        if wanted != self.wanted:
            self.wanted = wanted
            self._worker.change(self._stream, wanted)

    def speech_started(self, onset: int) -> None:
        """Voice activity found speech from `onset` (a position at the session rate)."""
        self._until = None
        if self._next is not None:
            return  # still within the last stretch's tail: it simply goes on
        lead = onset - self.rate * LEAD_MS // 1000
        for frame in self._ring:
            if frame.position + len(frame.pcm) > lead:
                self._send(frame)

    def speech_ended(self, end: int) -> None:
        self._until = end + self.rate * TAIL_MS // 1000

    def on_caller(self, frame: CallerFrame) -> None:
        self._ring.append(frame)
        if self._next is None:
            return
        if self._until is not None and frame.position >= self._until:
            self._worker.pause(self._stream)
            self._next = self._until = None
            return
        self._send(frame)

    def _send(self, frame: CallerFrame) -> None:
        self._next = frame.position + len(frame.pcm)
        self._worker.feed(self._stream, frame.position, frame.pcm)

    # ---- what the worker found (`analysis.worker.Listener`) -------------------------

    def on_keyword(self, hit: KeywordHit) -> None:
        self._found.keyword(hit.keyword, hit.confidence, hit.start)

    def on_emotion(self, found: EmotionAt) -> None:
        self._found.emotion(found.emotion, found.start)

    def on_failure(self, reason: str) -> None:
        self._found.failure(reason)

    # ---- the rest of the tap protocol -----------------------------------------------

    def on_g711(self, position: int, payload: bytes, table: np.ndarray) -> None:
        """Not called (`takes_g711` False)."""

    def on_tick(self, position: int) -> None:
        """Not called (`ticks` False)."""

    def on_bot(self, position: int, pcm: np.ndarray) -> None:
        """Not called (`hears_bot` False)."""

    def close(self) -> None:
        self._worker.close(self._stream)
