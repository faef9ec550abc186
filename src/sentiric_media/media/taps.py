"""Taps: the consumers of a session's audio, fed from the media clock's tick.

A tap sees the caller's decoded audio as the receiver delivers it (in
sequence order, at its place on the session clock), the bot's audio as it
left, and the tick itself. The session holds a list of taps and feeds them
all alike: adding a consumer (a second live reader, analysis, another kind of
recorder) is adding a tap, not a field and an `if`.

Positions are samples at the session rate since the clock's epoch.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple, Protocol

import numpy as np

from sentiric_media.media.jitter import JitterBuffer
from sentiric_media.media.placement import Anchor


class CallerFrame(NamedTuple):
    """One decoded piece of the caller's audio (a packet, or the concealment of a loss)."""

    position: int  # where it plays on the session clock (placement at arrival)
    stamp: int  # its extended RTP timestamp in samples, for a later `stamp + anchor.offset`
    anchor: Anchor  # the stream's anchor, which may still settle after arrival
    arrival: int  # when it arrived, as a clock position
    pcm: np.ndarray  # int16 mono at the session rate


class Tap(Protocol):
    # What the tap consumes besides caller audio; the session calls only those that
    # want them (a no-op call per frame and session is not free).
    ticks: bool
    hears_bot: bool
    takes_g711: bool  # `on_g711` instead of `on_caller` for G.711 at the session rate

    def on_caller(self, frame: CallerFrame) -> None:
        """Caller audio, in sequence order, as soon as it is decoded."""
        ...

    def on_g711(self, position: int, payload: bytes, table: np.ndarray) -> None:
        """Caller audio as G.711 code bytes (`table` decodes them), if `takes_g711`."""
        ...

    def on_tick(self, position: int) -> None:
        """The clock reached `position` (called before the bot's frame of this tick)."""
        ...

    def on_bot(self, position: int, pcm: np.ndarray) -> None:
        """The bot's frame that left for the caller at `position`."""
        ...

    def close(self) -> None:
        """The tap was removed or the session ended."""
        ...


class DelayedTap:
    """Base of the taps that consume the caller's audio a jitter delay behind the clock.

    The caller's audio is written into a `JitterBuffer` at its position; the
    buffer starts at the first tick, `delay` samples behind the clock, so
    reordered and jittered packets are in place when their turn comes.
    """

    ticks = True
    hears_bot = False
    takes_g711 = False

    def __init__(self, rate: int, frame_samples: int, delay: int, drops: Counter[str]) -> None:
        self.rate = rate
        self.frame = frame_samples
        self.delay = delay
        self._drops = drops
        self._jitter: JitterBuffer | None = None

    def on_caller(self, frame: CallerFrame) -> None:
        if self._jitter is not None and (refused := self._jitter.write(frame.position, frame.pcm)):
            self._drops[refused] += 1

    def buffer(self, position: int) -> JitterBuffer:
        """The jitter buffer, created at the first tick."""
        if self._jitter is None:
            self._jitter = JitterBuffer(self.rate, position - self.delay)
        return self._jitter

    def on_bot(self, position: int, pcm: np.ndarray) -> None:
        """Only the caller's audio is consumed."""

    def on_g711(self, position: int, payload: bytes, table: np.ndarray) -> None:
        """Not called (`takes_g711` False)."""


class TapSet:
    """A session's taps, and the sub-lists each kind of call goes to."""

    def __init__(self) -> None:
        self.all: list[Tap] = []
        self.ticking: list[Tap] = []  # the taps that want `on_tick`
        self.hearing_bot: list[Tap] = []  # ... and `on_bot`
        self.g711_only = False  # every tap takes G.711 code bytes (nothing to decode)

    def __bool__(self) -> bool:
        return bool(self.all)

    def __contains__(self, tap: object) -> bool:
        return tap in self.all

    def add(self, tap: Tap) -> None:
        self.all.append(tap)
        self._sort()

    def remove(self, tap: Tap | None) -> None:
        """Remove and close `tap` (nothing if it is not here)."""
        if tap is not None and tap in self.all:
            self.all.remove(tap)
            self._sort()
            tap.close()

    def close(self) -> None:
        for tap in self.all:
            tap.close()
        self.all.clear()
        self._sort()

    def _sort(self) -> None:
        taps = self.all
        self.ticking = [tap for tap in taps if tap.ticks]
        self.hearing_bot = [tap for tap in taps if tap.hears_bot]
        self.g711_only = bool(taps) and all(tap.takes_g711 for tap in taps)
