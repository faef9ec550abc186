"""RFC 4733 telephone-events: the payload, and one press counted once.

A key press is sent as a run of packets with one RTP timestamp (the key-down
instant), a growing duration, and an end flag on the last three. Any of them
may be lost, repeated or reordered, so a press is identified by its RTP
timestamp alone: it is reported once — at its first end packet, or when the
next press starts, or when no packet of it came for `END_TIMEOUT_MS` (all
three end packets lost) — with the longest duration seen.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from sentiric_media.audio.dtmf import KEYS

EVENTS = KEYS  # event codes 0-15 (RFC 4733 §3.2) are the keys in this order
END_TIMEOUT_MS = 500
_PAYLOAD = struct.Struct("!BBH")


class TelephoneEvent(NamedTuple):
    """One RFC 4733 payload."""

    event: int
    end: bool
    volume: int  # -dBm0, 0..63
    duration: int  # RTP clock units since the key-down timestamp


class MalformedEvent(ValueError):
    """A telephone-event payload shorter than its 4 bytes."""


def parse_event(payload: bytes) -> TelephoneEvent:
    if len(payload) < 4:
        raise MalformedEvent(f"telephone-event payload of {len(payload)} bytes (needs 4)")
    event, flags, duration = _PAYLOAD.unpack_from(payload)
    return TelephoneEvent(event, bool(flags & 0x80), flags & 0x3F, duration)


def build_event(event: int, end: bool, volume: int, duration: int) -> bytes:
    return _PAYLOAD.pack(event, (0x80 if end else 0) | (volume & 0x3F), duration & 0xFFFF)


class DtmfSource(StrEnum):
    """How a key press reached us (the `source` of CONTRACT.md's `DtmfDigit`)."""

    RFC4733 = "rfc4733"
    INBAND = "inband"


@dataclass(frozen=True, slots=True)
class DtmfPress:
    """A key press, reported once."""

    digit: str
    duration_ms: int
    onset: float  # time.monotonic() of the key-down (arrival less the duration)
    source: DtmfSource = DtmfSource.RFC4733

    @property
    def end(self) -> float:
        return self.onset + self.duration_ms / 1000


class Rfc4733Receiver:
    """Turns the caller's telephone-event packets into `DtmfPress`es, each once."""

    def __init__(self, clock_rate: int, report: Callable[[DtmfPress], None]) -> None:
        self.clock_rate = clock_rate
        self._report = report
        self._timestamp: int | None = None  # the press in progress
        self._event = 0
        self._duration = 0
        self._onset = 0.0
        self._last_seen = 0.0
        self._reported: set[int] = set()  # timestamps of recent presses, already counted
        self.malformed = 0

    def packet(self, timestamp: int, payload: bytes, arrival: float) -> None:
        try:
            event = parse_event(payload)
        except MalformedEvent:
            self.malformed += 1
            return
        if event.event >= len(EVENTS):
            return  # not a DTMF key (flash, tones): ignored
        if timestamp in self._reported:
            return  # a repeated end packet of a press already counted
        if timestamp != self._timestamp:
            self._finish()  # a new press: the previous one ended (its end was lost)
            self._timestamp = timestamp
            self._event = event.event
            self._duration = 0
            self._onset = arrival - event.duration / self.clock_rate
        self._duration = max(self._duration, event.duration)
        self._last_seen = arrival
        if event.end:
            self._finish()

    @property
    def pressing(self) -> bool:
        """A press is in progress (not yet reported)."""
        return self._timestamp is not None

    def check(self, now: float) -> None:
        """Report a press whose end packets never came."""
        if self._timestamp is not None and now - self._last_seen > END_TIMEOUT_MS / 1000:
            self._finish()

    def _finish(self) -> None:
        if self._timestamp is None:
            return
        self._reported.add(self._timestamp)
        if len(self._reported) > 32:
            self._reported = {self._timestamp}
        duration_ms = self._duration * 1000 // self.clock_rate
        self._timestamp = None
        self._report(DtmfPress(EVENTS[self._event], duration_ms, self._onset))
