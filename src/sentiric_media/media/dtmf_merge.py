"""One `dtmf` event per key press, whichever way the press came.

A phone may send a press as RFC 4733 telephone-events, as tones in its audio,
or both at once (rtpengine #1123: digits reported twice). Presses of the same
key from the two sources whose times overlap (within `MARGIN_MS`) are one
press: the first reported wins and the other is counted as a duplicate. When
telephone-events were negotiated, an in-band press waits `HOLD_MS` before it
is reported, so the RFC 4733 report of the same press — whose duration is
exact — is the one that wins.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from sentiric_media.media.dtmf import DtmfPress, DtmfSource

HOLD_MS = 200
MARGIN_MS = 100


class _Held(NamedTuple):
    due: float  # time.monotonic() at which it is reported
    press: DtmfPress


def same_press(a: DtmfPress, b: DtmfPress) -> bool:
    """`a` and `b` are one press that came both ways."""
    margin = MARGIN_MS / 1000
    return (
        a.source is not b.source
        and a.digit == b.digit
        and a.onset - margin <= b.end
        and b.onset - margin <= a.end
    )


class DtmfMerge:
    """Merges the presses of both sources into one report per press."""

    def __init__(self, report: Callable[[DtmfPress], None]) -> None:
        self._report = report
        self.prefer_rfc4733 = False  # telephone-events were negotiated
        self.duplicates = 0
        self._held: list[_Held] = []
        self._recent: deque[DtmfPress] = deque(maxlen=8)

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def add(self, press: DtmfPress, now: float) -> None:
        if any(same_press(press, seen) for seen in self._recent):
            self.duplicates += 1
            return
        if press.source is DtmfSource.INBAND and self.prefer_rfc4733:
            self._held.append(_Held(now + HOLD_MS / 1000, press))
            return
        if self._held:
            kept = [held for held in self._held if not same_press(press, held.press)]
            self.duplicates += len(self._held) - len(kept)
            self._held = kept
        self._emit(press)

    def check(self, now: float) -> None:
        """Report the held in-band presses no RFC 4733 report claimed in time."""
        while self._held and self._held[0].due <= now:
            self._emit(self._held.pop(0).press)

    def flush(self) -> None:
        """The session ends: report what is held."""
        while self._held:
            self._emit(self._held.pop(0).press)

    def _emit(self, press: DtmfPress) -> None:
        self._recent.append(press)
        self._report(press)
