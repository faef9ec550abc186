"""`SessionStats`: every counter of one session, in one object.

The receiver, the sender and the session write plain integers here (no
Prometheus call per packet); the metrics collector, the end-of-call log line
and later `GetSessionStats` read them. Drops are counted by reason, and the
reason is the metric label.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sentiric_media.media.rtpstats import ReceiveStats


@dataclass(slots=True)
class SessionStats:
    """Counters of one session; never reset while the session lives."""

    packets_in: int = 0  # every datagram, RTCP and garbage included
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    rtcp_in: int = 0
    drops: Counter[str] = field(default_factory=Counter)
    reanchors: int = 0  # caller timing re-anchored (set by the receiver)
    concealed_samples: int = 0  # lost caller audio filled in by the codec's PLC or FEC
    # RFC 3550 counts of the caller's current stream, and of the streams before it.
    stream: ReceiveStats | None = None
    finished_received: int = 0
    finished_lost: int = 0

    def new_stream(self, first_sequence: int) -> ReceiveStats:
        """A new SSRC started: fold the old stream's counts into the totals."""
        if self.stream is not None:
            self.finished_received += self.stream.received
            self.finished_lost += self.stream.lost
        self.stream = ReceiveStats(first_sequence)
        return self.stream

    @property
    def packets_received(self) -> int:
        """RTP packets of the caller accepted by the receive statistics."""
        return self.finished_received + (self.stream.received if self.stream else 0)

    @property
    def packets_lost(self) -> int:
        return self.finished_lost + (self.stream.lost if self.stream else 0)
