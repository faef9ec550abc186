"""`SendDtmf`: the digits we send, frame by frame.

`DtmfTones` turns digits into 20 ms frames: each digit is its two ITU-T Q.23
frequencies at -10 dBm0 each for its duration, followed by at least
`GAP_MS` of silence; `,` is a `PAUSE_MS` pause. Every tone frame also says
which RFC 4733 event it belongs to and how far into it it is, so the sender
can send telephone-events instead when the peer negotiated them, while the
recording still gets the tones.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np

from sentiric_media.audio.dtmf import key_tone
from sentiric_media.media.dtmf import EVENTS

GAP_MS = 60  # silence after each digit (RFC 4733 and Q.24 want at least 40-50 ms)
PAUSE_MS = 500  # a "," in the digits
DIGITS = EVENTS + ","
TONE_DBM0 = -10.0  # per tone (ITU-T Q.23 senders: -10 dBm0 nominal)


class DtmfFrame(NamedTuple):
    """One tick of outgoing DTMF: a tone frame, or a pause (`pcm` None)."""

    pcm: np.ndarray | None
    event: int  # RFC 4733 event code of the tone
    elapsed: int  # samples of this digit sent, this frame included
    end: bool  # the digit's last frame


class DtmfTones:
    """Queued digits, played one frame per tick."""

    def __init__(self, rate: int, frame_samples: int) -> None:
        self.rate = rate
        self.frame = frame_samples
        self._frames: deque[DtmfFrame] = deque()

    def __bool__(self) -> bool:
        return bool(self._frames)

    def add(self, digits: str, duration_ms: int) -> None:
        """Queue `digits` (validated by the caller), each `duration_ms` long."""
        frame_ms = self.frame * 1000 // self.rate
        for digit in digits:
            if digit == ",":
                self._silence(PAUSE_MS, frame_ms)
                continue
            count = -(-duration_ms // frame_ms)
            pcm = key_tone(digit, count * self.frame, self.rate, TONE_DBM0)
            code = EVENTS.index(digit)
            for k in range(count):
                chunk = pcm[k * self.frame : (k + 1) * self.frame]
                self._frames.append(DtmfFrame(chunk, code, (k + 1) * self.frame, k == count - 1))
            self._silence(GAP_MS, frame_ms)

    def _silence(self, ms: int, frame_ms: int) -> None:
        for _ in range(-(-ms // frame_ms)):
            self._frames.append(DtmfFrame(None, 0, 0, False))

    def next_frame(self) -> DtmfFrame | None:
        return self._frames.popleft() if self._frames else None
