"""Receive statistics of one RTP stream, as RFC 3550 appendix A defines them.

Extended sequence numbers (cycles × 65536 + seq, A.1) keep loss counts right
across wrap-around; a jump beyond `MAX_DROPOUT` restarts the count when the
next packet confirms the new sequence (a sender restart, not 60 000 losses).
Interarrival jitter follows A.8. Duplicates are recognised by a small window of
recently seen extended sequence numbers.
"""

from __future__ import annotations

MAX_DROPOUT = 3000
MAX_MISORDER = 100
_SEQ_MOD = 1 << 16
_SEEN_WINDOW = 512
DUPLICATE = -1
UNCONFIRMED_JUMP = -2


class ReceiveStats:
    """Counters of one SSRC; `update` is called once per packet that parsed."""

    __slots__ = (
        "_bad_seq",
        "_last_transit",
        "_seen",
        "base_seq",
        "cycles",
        "duplicates",
        "jitter",
        "max_seq",
        "received",
        "restarts",
    )

    def __init__(self, first_seq: int) -> None:
        self._restart(first_seq)
        self.received = 0
        self.duplicates = 0
        self.restarts = 0
        self.jitter = 0.0
        self._last_transit: int | None = None

    def _restart(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.cycles = 0
        self._bad_seq = -1
        self._seen = [-1] * _SEEN_WINDOW

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    def update(self, seq: int, transit: int | None) -> int:
        """Count one packet; return its extended sequence number.

        Returns `DUPLICATE` for a packet seen before and `UNCONFIRMED_JUMP` for the
        first packet after a large sequence jump; the caller drops both.

        `transit` is arrival time minus RTP timestamp, both in RTP clock units;
        None for packets whose timestamp is not a sampling instant (an RFC 4733
        event keeps its start timestamp for its whole duration), which
        therefore do not enter the jitter estimate.
        """
        delta = (seq - self.max_seq) % _SEQ_MOD
        if delta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += _SEQ_MOD
            self.max_seq = seq
            extended = self.cycles + seq
        elif delta <= _SEQ_MOD - MAX_MISORDER:
            # A big jump: believe it once the next packet follows it.
            if seq == self._bad_seq:
                self.restarts += 1
                self._restart(seq)
                self.received = 0
                extended = seq
            else:
                self._bad_seq = (seq + 1) % _SEQ_MOD
                return UNCONFIRMED_JUMP
        else:
            # Reordered or duplicate packet from shortly before max_seq.
            back = _SEQ_MOD - delta
            extended = self.cycles + self.max_seq - back
        slot = extended % _SEEN_WINDOW
        if self._seen[slot] == extended:
            self.duplicates += 1
            return DUPLICATE
        self._seen[slot] = extended
        self.received += 1
        if transit is None:
            return extended
        if self._last_transit is not None:
            difference = abs(transit - self._last_transit)
            self.jitter += (difference - self.jitter) / 16
        self._last_transit = transit
        return extended
