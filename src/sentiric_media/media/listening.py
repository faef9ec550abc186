"""What listens to the caller: the analysis taps of a session, attached when they are wanted.

- in-band DTMF (`DtmfReceiving.tap`), by `MEDIA_SERVICE_INBAND_DTMF` and what
  was negotiated;
- barge-in (`BargeInTap`, both directions: the echo of our prompt is
  estimated from what we sent) while an interruptible prompt is queued;
- voice activity (`VadTap`), while a StreamEvents subscriber listens or
  barge-in is armed, whose
  speech starts and ends become `speech_started` / `speech_ended` events
  stamped at the speech itself;
- speech analysis (`SpeechTap`, in the analysis worker process): keyword
  spotting while a subscriber asked for keywords (the union of every
  subscriber's words; each subscriber is sent the hits of its own words,
  `EventStreams`), and the emotion estimate while anyone subscribes (unless
  `MEDIA_SERVICE_EMOTION` is off); both on the caller's speech only.

Both follow the session's rate: a tap at another rate is replaced.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sentiric_media.analysis.speech import Change, SpeechSettings, Transition
from sentiric_media.analysis.vad import VadBank, supported
from sentiric_media.analysis.worker import AnalysisWorker
from sentiric_media.analysis.worker_protocol import Wanted
from sentiric_media.media.barge_in import DEFAULT_MIN_SPEECH_MS, BargeInTap
from sentiric_media.media.dtmf_receive import DtmfReceiving
from sentiric_media.media.playout import Playout
from sentiric_media.media.speech_tap import Found, SpeechTap
from sentiric_media.media.taps import Tap
from sentiric_media.media.vad_tap import VadTap

if TYPE_CHECKING:
    from sentiric_media.analysis.echo_path import EchoPath
    from sentiric_media.analysis.prosody import Emotion

Emit = Callable[[str, dict[str, Any], int | None], None]


@dataclass(frozen=True)
class Analysers:
    """What every session's listening shares: the process-wide banks and their settings."""

    vad_bank: VadBank
    speech: SpeechSettings = SpeechSettings()  # noqa: RUF009 - frozen
    barge_in_min_speech_ms: int = DEFAULT_MIN_SPEECH_MS
    worker: AnalysisWorker | None = None  # None: no keywords, no emotion
    emotion: bool = False  # estimate the caller's emotion while anyone subscribes


class Listening:
    """The analysis taps of one session."""

    def __init__(
        self,
        dtmf_in: DtmfReceiving,
        analysers: Analysers,
        emit: Emit,
        media_ms: Callable[[int], int],
        log: logging.LoggerAdapter,
    ) -> None:
        self.dtmf_in = dtmf_in
        self._vad_bank = analysers.vad_bank
        self._speech = analysers.speech
        self._emit = emit
        self._media_ms = media_ms
        self.vad: VadTap | None = None
        self.listeners = 0  # StreamEvents subscribers
        self.armed = False  # barge-in: an interruptible item is queued
        self.barge_in: BargeInTap | None = None
        self._echo: EchoPath | None = None  # the call's echo path, kept between prompts
        self._barge_in_ms = analysers.barge_in_min_speech_ms
        self._worker = analysers.worker
        self._emotion = analysers.emotion
        self._keywords: Counter[str] = Counter()  # every subscriber's words, counted
        self.speech: SpeechTap | None = None
        self.arousal = Tally()
        self.rate = 8000
        self._log = log  # the session's: its lines name the call

    def subscriber(self, change: int, keywords: Iterable[str] = ()) -> None:
        """A StreamEvents subscriber came (+1) or left (-1), with its keywords."""
        self.listeners = max(0, self.listeners + change)
        for word in keywords:
            self._keywords[word] += change
        self._keywords = +self._keywords  # drop the words nobody asks for any more

    @property
    def taps(self) -> tuple[Tap | None, ...]:
        return (self.dtmf_in.tap, self.vad, self.barge_in, self.speech)

    def sync(self, rate: int, add: Callable[[Tap], None], remove: Callable[[Tap], None]) -> None:
        """Attach what is wanted at `rate`, detach the rest."""
        self.rate = rate
        dtmf_in, tap = self.dtmf_in, self.dtmf_in.tap
        if tap is not None and (not dtmf_in.inband_wanted or tap.rate != rate):
            remove(tap)
            dtmf_in.tap = None
        if dtmf_in.inband_wanted and dtmf_in.tap is None:
            add(dtmf_in.new_tap(rate))
        wanted = (self.listeners > 0 or self.armed) and supported(rate)
        if self.vad is not None and (not wanted or self.vad.rate != rate):
            remove(self.vad)
            self.vad = None
        if wanted and self.vad is None:
            self.vad = VadTap(self._vad_bank, rate, self._speech, self._speech_changed)
            add(self.vad)
        barge_in = self.barge_in
        if barge_in is not None and (not self.armed or barge_in.rate != rate):
            remove(barge_in)
            self.barge_in = None
        if self.armed and self.barge_in is None and supported(rate):
            self.barge_in = BargeInTap(rate, self._barge_in_ms, self._echo)
            self._echo = self.barge_in.echo
            add(self.barge_in)
        self._sync_speech(rate, add, remove)

    def _sync_speech(
        self, rate: int, add: Callable[[Tap], None], remove: Callable[[Tap], None]
    ) -> None:
        wanted = Wanted(tuple(sorted(self._keywords)), self._emotion and self.listeners > 0)
        worker = self._worker
        on = bool(wanted) and self.vad is not None and worker is not None
        tap = self.speech
        if tap is not None and (not on or tap.rate != rate):
            remove(tap)
            self.speech = tap = None
        if on and tap is None and worker is not None:
            found = Found(self._keyword_found, self._emotion_found, self._failed)
            self.speech = SpeechTap(worker, rate, wanted, found)
            add(self.speech)
        elif tap is not None:
            tap.change(wanted)

    def barge_in_tick(self, playout: Playout, position: int) -> bool:
        """While armed, each tick: barge in if the caller talks over an interruptible item.

        Returns whether barge-in stays armed (the caller re-syncs the taps if not).
        """
        vad, barge_in = self.vad, self.barge_in
        onset = vad.onset if vad else None
        decided = barge_in.check(playout, onset, position) if barge_in else None
        if decided is not None and barge_in is not None:
            self._log.info(
                "barge-in: %s stopped after %d ms, %d ms after the caller began (echo path: %s)",
                decided.audio_uri,
                decided.played_ms,
                decided.reaction_ms,
                barge_in.echo.describe(),
            )
            self._emit("barge_in", decided._asdict(), None)
            playout.stop_interruptible()  # each stopped item: playback_finished, interrupted
        self.armed = BargeInTap.armed(playout)
        return self.armed

    def _speech_changed(self, transition: Transition) -> None:
        speech = self.speech
        if transition.change is Change.STARTED:
            if speech is not None:
                speech.speech_started(transition.onset)
            data = {"probability": round(transition.probability, 3)}
            self._emit("speech_started", data, self._media_ms(transition.onset))
        else:
            if speech is not None:
                speech.speech_ended(transition.end)
            duration_ms = (transition.end - transition.onset) * 1000 // self.rate
            self._emit("speech_ended", {"duration_ms": duration_ms}, self._media_ms(transition.end))

    def _keyword_found(self, keyword: str, confidence: float, position: int) -> None:
        data = {"keyword": keyword, "confidence": round(confidence, 3)}
        self._emit("keyword", data, self._media_ms(position))

    def _emotion_found(self, emotion: Emotion, position: int) -> None:
        self.arousal.add(emotion.arousal)
        data = {
            "label": emotion.label,
            "arousal": round(emotion.arousal, 3),
            "valence": round(emotion.valence, 3),
            "confidence": round(emotion.confidence, 3),
        }
        self._emit("emotion", data, self._media_ms(position))

    def _failed(self, reason: str) -> None:
        self._log.warning("speech analysis failed: %s", reason)


@dataclass
class Tally:
    """A running mean (the call's arousal, for its last log line and the histogram)."""

    total: float = 0.0
    count: int = 0

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None
