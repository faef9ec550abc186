"""A session's received key presses: RFC 4733 and in-band tones, one report per press.

    telephone-event packets ─► Rfc4733Receiver ─┐
    caller audio ─► InbandDtmfTap (DtmfBank) ───┴─► DtmfMerge ─► report(DtmfPress)

By default (`InbandMode.AUTO`, Asterisk's `dtmf_mode=auto`) in-band
detection runs on the calls that did not negotiate telephone-events: it costs
the decoding of the caller's audio, which a call without listeners otherwise
skips (about 28 µs per packet for Opus, 13 µs for G.722/G.729, 1.5 µs for
G.711), and the detector's share of the batch. `ALWAYS` runs it on every call,
for phones that send tones in their audio although telephone-events were
negotiated; the merge keeps such a press from being reported twice. `OFF`
never runs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

from sentiric_media.analysis.dtmf_detect import DtmfBank
from sentiric_media.media.dtmf import DtmfPress, Rfc4733Receiver
from sentiric_media.media.dtmf_inband import InbandDtmfTap
from sentiric_media.media.dtmf_merge import DtmfMerge

TelephoneEvents = Callable[[int, bytes, float], None]
# Until NegotiateSdp, packets of this payload type are taken as telephone-event/8000:
# 101 is what most SIP stacks offer, and a call set up without us seeing its SDP
# would otherwise lose its RFC 4733 key presses.
ASSUMED_PAYLOAD_TYPE = 101
ASSUMED_CLOCK_RATE = 8000


class InbandMode(StrEnum):
    """MEDIA_SERVICE_INBAND_DTMF."""

    ALWAYS = "always"
    AUTO = "auto"
    OFF = "off"


class DtmfReceiving:
    """The DTMF receive side of one session."""

    def __init__(
        self,
        bank: DtmfBank,
        epoch: float,
        report: Callable[[DtmfPress], None],
        mode: InbandMode = InbandMode.AUTO,
    ) -> None:
        self._bank = bank
        self._epoch = epoch
        self.mode = mode
        self.merge = DtmfMerge(report)
        self.tap: InbandDtmfTap | None = None  # the session adds and removes it (`inband_wanted`)
        self.rfc4733: Rfc4733Receiver | None = None
        self.negotiated = False  # telephone-events agreed by SDP

    @property
    def inband_wanted(self) -> bool:
        """The caller's audio should go to the in-band detector."""
        return self.mode is InbandMode.ALWAYS or (
            self.mode is InbandMode.AUTO and not self.negotiated
        )

    def assumed(self) -> TelephoneEvents:
        """Before any SDP: telephone-events at 8000 on the usual payload type, assumed.

        In-band detection goes on (nothing was agreed); a press that comes both ways
        is still one event.
        """
        self.rfc4733 = Rfc4733Receiver(ASSUMED_CLOCK_RATE, self._pressed)
        return self.rfc4733.packet

    def negotiate(self, clock_rate: int | None) -> TelephoneEvents | None:
        """Telephone-events at `clock_rate` (None: not negotiated); returns the packet handler."""
        self.merge.prefer_rfc4733 = self.negotiated = clock_rate is not None
        if clock_rate is None:
            self.rfc4733 = None
            return None
        if self.rfc4733 is None or self.rfc4733.clock_rate != clock_rate:
            self.rfc4733 = Rfc4733Receiver(clock_rate, self._pressed)
        return self.rfc4733.packet

    def new_tap(self, rate: int) -> InbandDtmfTap:
        """A tap for the session's audio at `rate` (the caller closes any earlier one)."""
        self.tap = InbandDtmfTap(self._bank, rate, self._epoch, self._pressed)
        return self.tap

    @property
    def waiting(self) -> bool:
        """A press is in progress or held: `on_tick` has work."""
        return self.merge.holding or (self.rfc4733 is not None and self.rfc4733.pressing)

    def on_tick(self, now: float) -> None:
        rfc4733 = self.rfc4733
        if rfc4733 is not None and rfc4733.pressing:
            rfc4733.check(now)
        if self.merge.holding:
            self.merge.check(now)

    def close(self) -> None:
        """The session ends (its taps closed): the presses held are reported."""
        self.merge.flush()

    def _pressed(self, press: DtmfPress) -> None:
        self.merge.add(press, time.monotonic())
