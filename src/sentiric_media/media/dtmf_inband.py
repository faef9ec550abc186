"""The tap that looks for DTMF tones in the caller's audio.

Each caller frame goes, in sequence order as it is decoded, to this
session's detector in the process-wide `DtmfBank`, which the media clock runs
once per frame over all sessions; the presses found come back as
`DtmfPress`es with their onset on the monotonic clock.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sentiric_media.analysis.dtmf_detect import DtmfBank, InbandPress
from sentiric_media.media.dtmf import DtmfPress, DtmfSource
from sentiric_media.media.taps import CallerFrame


class InbandDtmfTap:
    """Feeds one session's caller audio to the detection bank."""

    ticks = False  # detection runs in the bank, once per frame for all sessions
    hears_bot = False
    takes_g711 = True  # the bank decodes all sessions' G.711 at once

    def __init__(
        self,
        bank: DtmfBank,
        rate: int,
        epoch: float,
        report: Callable[[DtmfPress], None],
    ) -> None:
        self.rate = rate
        self._bank = bank
        self._epoch = epoch  # the media clock's position 0, as time.monotonic()
        self._report = report
        self._detector = bank.detector(rate, self._found)

    def on_caller(self, frame: CallerFrame) -> None:
        self._bank.add(self._detector, frame.position, frame.pcm)

    def on_g711(self, position: int, payload: bytes, table: np.ndarray) -> None:
        self._bank.add_g711(self._detector, position, payload, table)

    def on_tick(self, position: int) -> None:
        """Not called (`ticks` False)."""

    def on_bot(self, position: int, pcm: np.ndarray) -> None:
        """Not called (`hears_bot` False)."""

    def close(self) -> None:
        self._bank.release(self._detector)

    def _found(self, press: InbandPress) -> None:
        onset = self._epoch + press.position / self.rate
        self._report(DtmfPress(press.key, press.duration_ms, onset, DtmfSource.INBAND))
