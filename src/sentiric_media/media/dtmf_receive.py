"""A session's received key presses: RFC 4733 and in-band tones, one report per press.

    telephone-event packets ─► Rfc4733Receiver ─┐
    caller audio ─► InbandDtmfTap (DtmfBank) ───┴─► DtmfMerge ─► report(DtmfPress)

In-band detection always runs: a phone may send tones in its audio although
telephone-events were negotiated; the merge keeps such a press from being
reported twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sentiric_media.analysis.dtmf_detect import DtmfBank
from sentiric_media.media.dtmf import DtmfPress, Rfc4733Receiver
from sentiric_media.media.dtmf_inband import InbandDtmfTap
from sentiric_media.media.dtmf_merge import DtmfMerge

TelephoneEvents = Callable[[int, bytes, float], None]


class DtmfReceiving:
    """The DTMF receive side of one session."""

    def __init__(
        self, bank: DtmfBank, epoch: float, rate: int, report: Callable[[DtmfPress], None]
    ) -> None:
        self._bank = bank
        self._epoch = epoch
        self.merge = DtmfMerge(report)
        self.tap = InbandDtmfTap(bank, rate, epoch, self._pressed)
        self.rfc4733: Rfc4733Receiver | None = None

    def negotiate(self, clock_rate: int | None) -> TelephoneEvents | None:
        """Telephone-events at `clock_rate` (None: not negotiated); returns the packet handler."""
        self.merge.prefer_rfc4733 = clock_rate is not None
        if clock_rate is None:
            self.rfc4733 = None
            return None
        if self.rfc4733 is None or self.rfc4733.clock_rate != clock_rate:
            self.rfc4733 = Rfc4733Receiver(clock_rate, self._pressed)
        return self.rfc4733.packet

    def set_rate(self, rate: int) -> InbandDtmfTap:
        """The session moved to `rate`: a new tap replaces the old (which the caller closes)."""
        self.tap = InbandDtmfTap(self._bank, rate, self._epoch, self._pressed)
        return self.tap

    def on_tick(self, now: float) -> None:
        rfc4733 = self.rfc4733
        if rfc4733 is not None and rfc4733.pressing:
            rfc4733.check(now)
        if self.merge.holding:
            self.merge.check(now)

    def close(self) -> None:
        """The session ends: presses in progress and held are reported."""
        self.tap.close()
        self.merge.flush()

    def _pressed(self, press: DtmfPress) -> None:
        self.merge.add(press, time.monotonic())
