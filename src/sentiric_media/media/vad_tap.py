"""The tap that feeds the caller's audio to the voice-activity bank.

Caller frames go, in sequence order as they are decoded, to this session's
stream in the process-wide `VadBank`, which the media clock runs once per
frame over all sessions; speech starts and ends come back as `Transition`s
in the session's positions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sentiric_media.analysis.speech import SpeechSettings, Transition
from sentiric_media.analysis.vad import VadBank
from sentiric_media.media.taps import CallerFrame


class VadTap:
    """Feeds one session's caller audio to the voice-activity bank."""

    ticks = False  # the bank runs once per frame for all sessions
    hears_bot = False
    takes_g711 = False

    def __init__(
        self,
        bank: VadBank,
        rate: int,
        settings: SpeechSettings,
        report: Callable[[Transition], None],
    ) -> None:
        self.rate = rate
        self._bank = bank
        self._stream = bank.stream(rate, settings, report)

    @property
    def onset(self) -> int | None:
        """Where the caller's current speech began, None while silent."""
        return self._stream.tracker.onset

    def on_caller(self, frame: CallerFrame) -> None:
        self._bank.add(self._stream, frame.position, frame.pcm)

    def on_g711(self, position: int, payload: bytes, table: np.ndarray) -> None:
        """Not called (`takes_g711` False)."""

    def on_tick(self, position: int) -> None:
        """Not called (`ticks` False)."""

    def on_bot(self, position: int, pcm: np.ndarray) -> None:
        """Not called (`hears_bot` False)."""

    def close(self) -> None:
        self._bank.release(self._stream)
