"""Speech start and end from a stream of voice probabilities, with hysteresis.

A window at or above `start_threshold` may begin speech; speech is declared
once such windows have lasted `min_speech_ms` (windows in between that stay
above `end_threshold` count, so a dip does not restart the count), and it is
stamped at the first of them: the real onset, not the moment of the
decision. Speech ends after `min_silence_ms` below `end_threshold`, and its
duration runs from the onset to the end of its last voiced window.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class SpeechSettings:
    start_threshold: float = 0.5
    end_threshold: float = 0.35
    min_speech_ms: int = 96
    min_silence_ms: int = 320


class Change(StrEnum):
    STARTED = "speech_started"
    ENDED = "speech_ended"


class Transition(NamedTuple):
    """Speech began or ended; positions in samples of the stream."""

    change: Change
    onset: int  # where the speech began
    end: int  # where it ended (STARTED: where it was decided)
    probability: float  # the highest window probability before the decision


class SpeechTracker:
    """The speech state of one stream, one window probability at a time."""

    def __init__(self, settings: SpeechSettings, rate: int) -> None:
        self.settings = settings
        self._min_speech = settings.min_speech_ms * rate // 1000
        self._min_silence = settings.min_silence_ms * rate // 1000
        self.speaking = False
        self._onset: int | None = None  # first voiced window of the candidate or speech
        self._voiced_end = 0  # end of the last window above the end threshold
        self._peak = 0.0

    @property
    def onset(self) -> int | None:
        """Where the current speech began (None while silent)."""
        return self._onset if self.speaking else None

    def update(self, position: int, length: int, probability: float) -> Transition | None:
        settings = self.settings
        end = position + length
        if not self.speaking:
            if probability >= settings.start_threshold:
                if self._onset is None:
                    self._onset, self._peak = position, 0.0
                self._peak = max(self._peak, probability)
            elif probability < settings.end_threshold or self._onset is None:
                self._onset = None
                return None
            self._voiced_end = end  # above the end threshold: voice
            if self._onset is not None and end - self._onset >= self._min_speech:
                self.speaking = True
                return Transition(Change.STARTED, self._onset, end, self._peak)
            return None
        if probability >= settings.end_threshold:
            self._voiced_end = end
            return None
        if end - self._voiced_end >= self._min_silence:
            return self._end()
        return None

    def finish(self) -> Transition | None:
        """The stream ended: speech in progress ends where its voice did."""
        return self._end() if self.speaking else None

    def _end(self) -> Transition:
        assert self._onset is not None
        onset, self._onset, self.speaking = self._onset, None, False
        return Transition(Change.ENDED, onset, self._voiced_end, self._peak)
