"""What listens to the caller: the analysis taps of a session, attached when they are wanted.

- in-band DTMF (`DtmfReceiving.tap`), by `MEDIA_SERVICE_INBAND_DTMF` and what
  was negotiated;
- barge-in (`BargeInTap`, both directions: the echo of our prompt is
  estimated from what we sent) while an interruptible prompt is queued;
- voice activity (`VadTap`), while a StreamEvents subscriber listens or
  barge-in is armed, whose
  speech starts and ends become `speech_started` / `speech_ended` events
  stamped at the speech itself.

Both follow the session's rate: a tap at another rate is replaced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sentiric_media.analysis.speech import Change, SpeechSettings, Transition
from sentiric_media.analysis.vad import VadBank, supported
from sentiric_media.media.barge_in import DEFAULT_MIN_SPEECH_MS, BargeInTap
from sentiric_media.media.dtmf_receive import DtmfReceiving
from sentiric_media.media.playout import Playout
from sentiric_media.media.taps import Tap
from sentiric_media.media.vad_tap import VadTap

Emit = Callable[[str, dict[str, Any], int | None], None]


class Listening:
    """The analysis taps of one session."""

    def __init__(
        self,
        dtmf_in: DtmfReceiving,
        vad_bank: VadBank,
        speech: SpeechSettings,
        emit: Emit,
        media_ms: Callable[[int], int],
        barge_in_min_speech_ms: int = DEFAULT_MIN_SPEECH_MS,
    ) -> None:
        self.dtmf_in = dtmf_in
        self._vad_bank = vad_bank
        self._speech = speech
        self._emit = emit
        self._media_ms = media_ms
        self.vad: VadTap | None = None
        self.listeners = 0  # StreamEvents subscribers
        self.armed = False  # barge-in: an interruptible item is queued
        self.barge_in: BargeInTap | None = None
        self._barge_in_ms = barge_in_min_speech_ms
        self.rate = 8000

    @property
    def taps(self) -> tuple[Tap | None, ...]:
        return (self.dtmf_in.tap, self.vad, self.barge_in)

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
            self.barge_in = BargeInTap(rate, self._barge_in_ms)
            add(self.barge_in)

    def barge_in_tick(self, playout: Playout, position: int, log: logging.LoggerAdapter) -> bool:
        """While armed, each tick: barge in if the caller talks over an interruptible item.

        Returns whether barge-in stays armed (the caller re-syncs the taps if not).
        """
        vad, barge_in = self.vad, self.barge_in
        onset = vad.onset if vad else None
        decided = barge_in.check(playout, onset, position) if barge_in else None
        if decided is not None and barge_in is not None:
            log.info(
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
        if transition.change is Change.STARTED:
            data = {"probability": round(transition.probability, 3)}
            self._emit("speech_started", data, self._media_ms(transition.onset))
        else:
            duration_ms = (transition.end - transition.onset) * 1000 // self.rate
            self._emit("speech_ended", {"duration_ms": duration_ms}, self._media_ms(transition.end))
