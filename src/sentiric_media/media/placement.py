"""Where the caller's audio sits on the session clock: RTP timestamp → position.

This is the one place that decides when a caller's sample was heard. A packet's
position is `extended_timestamp · rate / clock_rate + offset`, where the offset is the
smallest transit time (arrival position − timestamp) seen on the stream: the
fastest packets define when audio "arrived", so jitter only ever makes packets
late, never moves the speech. Positions therefore come from RTP timestamps, and
the clock is read only to anchor.

Re-anchoring (counted in `reanchors`):
- a new SSRC starts a new stream;
- a marker bit after a silence whose timestamps disagree with the pause by more
  than plausible jitter (`marker_jump_ms`);
- a jump of the transit time beyond `jump_samples` (a sender that reset its
  timestamps, or a long stall);
- drift: the sender's clock running slower than ours makes the smallest transit
  grow; when the minimum over the last few seconds exceeds the offset by
  `drift_samples`, the offset follows. A packet faster than the model by more
  than `settle_samples` (the first packet was slow, or the sender's clock is
  fast) moves the offset down at once. Smaller moves are ignored: every move
  cuts or stretches the audio a little, and sub-2 ms timing is not worth a click.

The offset lives in an `Anchor` shared by every packet placed since the last
re-anchor. A consumer that can wait (the recording) keeps the packet's
`stamp` (extended timestamp in samples) and its anchor, and computes
`stamp + anchor.offset` a little later: by then the first packets of a
talkspurt, which anchor it however late they arrived, have been corrected by
the faster packets that followed.
"""

from __future__ import annotations

from collections import deque

_TS_MOD = 1 << 32
_TS_HALF = 1 << 31


class Anchor:
    """The offset from a stream's timestamps to clock positions, until the next re-anchor."""

    __slots__ = ("offset",)

    def __init__(self, offset: int) -> None:
        self.offset = offset


class CallerPlacement:
    """Maps packets of the caller's stream to positions, in samples at the session rate."""

    __slots__ = (
        "_bucket_min",
        "_bucket_start",
        "_ext_ts",
        "_last_arrival",
        "_last_ts",
        "_recent_minima",
        "anchor",
        "bucket_samples",
        "clock_rate",
        "drift_samples",
        "jump_samples",
        "marker_gap_samples",
        "marker_jump_samples",
        "rate",
        "reanchors",
        "settle_samples",
        "ssrc",
        "stamp",
        "window_buckets",
    )

    def __init__(
        self,
        rate: int,
        clock_rate: int | None = None,
        drift_ms: int = 5,
        settle_ms: int = 2,
        jump_ms: int = 1000,
        marker_jump_ms: int = 100,
        window_seconds: int = 3,
    ) -> None:
        # RTP clock units → samples at `rate` (G.722: clock 8000, audio 16000).
        self.rate = rate
        self.clock_rate = clock_rate or rate
        self.drift_samples = rate * drift_ms // 1000
        self.settle_samples = rate * settle_ms // 1000
        self.jump_samples = rate * jump_ms // 1000
        self.marker_gap_samples = rate * 60 // 1000
        self.marker_jump_samples = rate * marker_jump_ms // 1000
        self.bucket_samples = rate
        self.window_buckets = window_seconds
        self.reanchors = 0
        self.ssrc: int | None = None
        self.anchor = Anchor(0)
        self.stamp = 0
        self._ext_ts = 0
        self._last_ts = 0
        self._last_arrival = 0
        self._bucket_start = 0
        self._bucket_min = 0
        self._recent_minima: deque[int] = deque(maxlen=window_seconds)

    @property
    def offset(self) -> int:
        return self.anchor.offset

    def place(self, ssrc: int, timestamp: int, marker: bool, arrival: int) -> int:
        """Position of the packet's first sample; `arrival` is its arrival position.

        Afterwards `stamp` and `anchor` describe the packet for a later placement.
        """
        if ssrc != self.ssrc:
            if self.ssrc is not None:
                self.reanchors += 1
            self.ssrc = ssrc
            self._ext_ts = timestamp
            self._last_ts = timestamp
            self.stamp = self.samples(timestamp)
            self._anchor(arrival - self.stamp, arrival)
        else:
            step = (timestamp - self._last_ts) % _TS_MOD
            self._ext_ts += step - _TS_MOD if step >= _TS_HALF else step
            self._last_ts = timestamp
            stamp = self._ext_ts if self.clock_rate == self.rate else self.samples(self._ext_ts)
            transit = arrival - stamp
            deviation = transit - self.anchor.offset
            silent_gap = arrival - self._last_arrival > self.marker_gap_samples
            if abs(deviation) > self.jump_samples or (
                marker and silent_gap and deviation > self.marker_jump_samples
            ):
                self.reanchors += 1
                self._anchor(transit, arrival)
            elif deviation < -self.settle_samples:
                self.anchor.offset = transit
            self._track_minimum(transit, arrival)
            self.stamp = stamp
        self._last_arrival = arrival
        return self.stamp + self.anchor.offset

    def samples(self, timestamp: int) -> int:
        """RTP clock units in samples at the session rate."""
        if self.clock_rate == self.rate:
            return timestamp
        return timestamp * self.rate // self.clock_rate

    def _anchor(self, transit: int, arrival: int) -> None:
        self.anchor = Anchor(transit)
        self._recent_minima.clear()
        self._bucket_start = arrival
        self._bucket_min = transit

    def _track_minimum(self, transit: int, arrival: int) -> None:
        if transit < self._bucket_min:
            self._bucket_min = transit
        if arrival - self._bucket_start < self.bucket_samples:
            return
        self._recent_minima.append(self._bucket_min)
        self._bucket_start = arrival
        self._bucket_min = transit
        if len(self._recent_minima) == self.window_buckets:
            floor = min(self._recent_minima)
            if floor - self.anchor.offset > self.drift_samples:
                self.reanchors += 1
                self.anchor.offset = floor
