"""The receive path of one session: parsed RTP in, the caller's decoded audio out.

    datagram ─► parse (on arrival: nothing else) ─► pending
    tick: pending ─► payload type split (audio / comfort noise / telephone-event)
                 ─► RFC 3550 stats ─► placement (RTP timestamp → clock position)
                 ─► sequence order ─► decoder (PLC / FEC for losses) ─► taps

Every packet of the caller's SSRC counts as received, comfort noise (RFC 3389)
and telephone-events included; only audio is decoded. Stateful decoders
(G.722, Opus, G.729) must see their packets in sequence order, once each, so
a packet after a gap waits up to `reorder_ms` for the missing one; after
that the gap is concealed by the codec (Opus recovers a single lost packet
from the next one's in-band FEC). A stateless codec (G.711) has nothing to
conceal and no state to corrupt: its late packets are still decoded, so the
recording keeps them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from time import monotonic
from typing import NamedTuple

import numpy as np

from sentiric_media.audio.resample import FrameResampler
from sentiric_media.media.codecs import (
    COMFORT_NOISE_PAYLOAD_TYPE,
    PCMA,
    PCMU,
    Decoder,
    MediaFormat,
)
from sentiric_media.media.placement import Anchor, CallerPlacement
from sentiric_media.media.rtp import RtpHeader
from sentiric_media.media.rtpstats import DUPLICATE, MAX_DROPOUT
from sentiric_media.media.stats import SessionStats
from sentiric_media.media.taps import CallerFrame, Tap

# A flood beyond this many packets between two ticks (20 ms) is dropped, not queued.
MAX_PENDING = 256
# Packets waiting for a missing one, at most; beyond this the gap is given up.
MAX_HELD = 16
# NamedTuples built without their Python-level __new__ (once per packet).
_new_frame = tuple.__new__
# Longest loss that is concealed by the codec; longer gaps stay silent.
MAX_CONCEAL_MS = 120


class _Packet(NamedTuple):
    """A packet accepted by the statistics, waiting for its turn to be decoded."""

    extended: int  # extended sequence number
    payload_type: int
    payload: bytes
    position: int
    stamp: int
    anchor: Anchor
    arrival: int
    audio: bool  # False for comfort noise and telephone-events: counted, not decoded


class _End(NamedTuple):
    """Where the last decoded audio ended: a concealment starts there."""

    position: int
    stamp: int
    anchor: Anchor


class _Decoding:
    """A decoder for one payload type, resampled to the session rate where they differ."""

    __slots__ = ("codec_rate", "decode", "decoder", "g711_table", "rate", "resampler", "stateful")

    def __init__(self, fmt: MediaFormat, rate: int) -> None:
        self.decoder: Decoder = fmt.new_decoder()
        self.stateful = fmt.codec.stateful
        self.rate, self.codec_rate = rate, fmt.sample_rate
        self.resampler = FrameResampler(fmt.sample_rate, rate) if fmt.sample_rate != rate else None
        # Called per packet: the decoder's own method unless the rates differ.
        self.decode: Callable[[bytes], np.ndarray] = (
            self.decoder.decode if self.resampler is None else self._resampled
        )
        # G.711 at the session rate: taps that take code bytes decode them themselves.
        table = getattr(self.decoder, "decode_table", None)
        self.g711_table: np.ndarray | None = table if self.resampler is None else None

    def _out(self, pcm: np.ndarray) -> np.ndarray:
        return pcm if self.resampler is None else self.resampler.process(pcm)

    def _resampled(self, payload: bytes) -> np.ndarray:
        return self._out(self.decoder.decode(payload))

    def conceal(self, samples: int, next_payload: bytes, single: bool) -> np.ndarray:
        """`samples` (at the session rate) lost before `next_payload`."""
        count = samples * self.codec_rate // self.rate
        pcm = self.decoder.decode_fec(next_payload, count) if single else None
        return self._out(self.decoder.conceal(count) if pcm is None else pcm)


class RtpReceiver:
    """Parsed packets of the caller → decoded `CallerFrame`s for the session's taps."""

    def __init__(
        self,
        stats: SessionStats,
        rate: int,
        to_position: Callable[[float, int], int],
        log: logging.LoggerAdapter[logging.Logger],
        reorder_ms: int = 30,
    ) -> None:
        self.stats = stats
        self.rate = rate
        self._to_position = to_position
        self.log = log
        self.pending: list[tuple[RtpHeader, float]] = []
        self.last_packet_at: float | None = None
        self.timed_out = False
        self._reorder_ms = reorder_ms
        self._reorder_wait = rate * reorder_ms // 1000
        self.placement = CallerPlacement(rate)
        # The payload types accepted. Until NegotiateSdp, both G.711 laws, and
        # `detected` is told the format of the caller's first audio packet.
        self.formats: dict[int, MediaFormat] = {0: PCMU.format(), 8: PCMA.format()}
        self.dtmf_payload_type: int | None = None
        self.detected: Callable[[MediaFormat], None] | None = None
        # Told of every telephone-event packet: (RTP timestamp, payload, arrival).
        self.telephone_events: Callable[[int, bytes, float], None] | None = None
        # Every tap takes G.711 code bytes (`Tap.takes_g711`): G.711 is not decoded here.
        self.g711_taps = False
        self._decoding: dict[int, _Decoding] = {}
        self._ssrc: int | None = None
        self._next: int | None = None  # next extended sequence number to decode
        self._held: dict[int, _Packet] = {}
        self._last_end: _End | None = None  # where the last decoded audio ended

    # ---- arrival --------------------------------------------------------------------

    def append(self, header: RtpHeader) -> None:
        """Queue a parsed packet for the next tick (the only work done on arrival)."""
        pending = self.pending
        if len(pending) < MAX_PENDING:
            pending.append((header, monotonic()))
        else:
            self.stats.drops["overflow"] += 1

    # ---- negotiation ------------------------------------------------------------------

    def set_rate(self, rate: int) -> None:
        """Work at `rate` from now on (only while no consumer holds audio at the old one)."""
        if rate == self.rate:
            return
        self._end_stream(())
        self.rate = rate
        self._reorder_wait = rate * self._reorder_ms // 1000
        reanchors = self.placement.reanchors
        self.placement = CallerPlacement(rate, self.placement.clock_rate)
        self.placement.reanchors = reanchors
        self._decoding.clear()

    def set_formats(self, formats: dict[int, MediaFormat], dtmf_payload_type: int | None) -> None:
        """Accept these payload types from now on (a re-offer changes them in place)."""
        for payload_type, fmt in formats.items():
            old = self.formats.get(payload_type)
            if old is None or old.encoder_key != fmt.encoder_key:
                self._decoding.pop(payload_type, None)
        self.formats = dict(formats)
        self.dtmf_payload_type = dtmf_payload_type
        self.detected = None
        if formats:
            # One RTP clock per stream (RFC 3550); G.722's is 8000 for 16 kHz audio.
            self.placement.clock_rate = next(iter(formats.values())).clock_rate

    # ---- the tick ----------------------------------------------------------------------

    @property
    def waiting(self) -> bool:
        """Packets wait for a missing one before them."""
        return bool(self._held)

    def drain(self, taps: Sequence[Tap], position: int) -> None:
        """Process what arrived since the last tick and hand decoded audio to `taps`."""
        if self.pending:
            self._receive(taps)
        if self._held:
            self._release(taps, position - self._reorder_wait)

    def _receive(self, taps: Sequence[Tap]) -> None:
        packets, self.pending = self.pending, []
        stats, placement, rate = self.stats, self.placement, self.rate
        to_position, formats, dtmf = self._to_position, self.formats, self.dtmf_payload_type
        same_clock = placement.clock_rate == rate
        for header, arrival in packets:
            payload_type, sequence, timestamp, ssrc, marker, payload = header
            fmt = formats.get(payload_type)
            audio = fmt is not None
            if fmt is None:
                if payload_type not in (COMFORT_NOISE_PAYLOAD_TYPE, dtmf):
                    stats.drops["unsupported_payload_type"] += 1
                    continue
                # Comfort noise and telephone-events: counted and kept in sequence
                # order, never decoded as audio.
            elif self.detected is not None:
                self.detected(fmt)
                self.detected = None
                formats = self.formats
            arrival_position = to_position(arrival, rate)
            stream = stats.stream
            if stream is None or ssrc != self._ssrc:
                self._ssrc = ssrc
                self._end_stream(taps)
                stream = stats.new_stream(sequence)
            event = payload_type == dtmf
            if event:
                transit = None
            else:
                transit = arrival_position - (
                    timestamp if same_clock else placement.samples(timestamp)
                )
            extended = stream.update(sequence, transit)
            if extended < 0:
                stats.drops["duplicate" if extended == DUPLICATE else "sequence_jump"] += 1
                continue
            self.last_packet_at = arrival
            if event:
                # Telephone-events hold one timestamp for a whole key press: they
                # must not move the caller's timing.
                if self.telephone_events is not None:
                    self.telephone_events(timestamp, payload, arrival)
                packet = _Packet(extended, payload_type, payload, 0, 0, placement.anchor, 0, False)
            else:
                position = placement.place(ssrc, timestamp, marker, arrival_position)
                if not self._held and (self._next is None or extended == self._next):
                    # In order and nothing waits: decode for whoever listens, at once.
                    self._next = extended + 1
                    if not audio:
                        pass  # comfort noise: its place in the sequence is all it takes
                    elif taps:
                        self._emit(
                            self._decoding_for(payload_type),
                            payload,
                            position,
                            placement.stamp,
                            placement.anchor,
                            arrival_position,
                            taps,
                        )
                    elif self._decoding:
                        self._idle_decoders()
                    continue
                packet = _Packet(
                    extended,
                    payload_type,
                    payload,
                    position,
                    placement.stamp,
                    placement.anchor,
                    arrival_position,
                    audio,
                )
            self._order(packet, taps)
        stats.reanchors = placement.reanchors
        if self.timed_out and self.last_packet_at is not None:
            self.timed_out = False
            self.log.info("caller RTP resumed")

    def _end_stream(self, taps: Sequence[Tap]) -> None:
        """A new SSRC (or a restart): decode what the old stream left, then start over."""
        for extended in sorted(self._held):
            self._deliver(self._held[extended], taps)
        self._held.clear()
        self._next = None
        self._last_end = None

    # ---- sequence order -----------------------------------------------------------------

    def _order(self, packet: _Packet, taps: Sequence[Tap]) -> None:
        expected = self._next
        extended = packet.extended
        if expected is None or extended == expected:
            self._deliver(packet, taps)
            if self._held:
                self._deliver_consecutive(taps)
            return
        if extended < expected:
            if extended + MAX_DROPOUT < expected:  # the sender restarted its sequence
                self._end_stream(taps)
                self._deliver(packet, taps)
            elif packet.audio and taps:
                if self.formats[packet.payload_type].codec.stateful:
                    self.stats.drops["late"] += 1
                else:
                    self._emit_packet(packet, taps)
            return
        self._held[extended] = packet
        if len(self._held) > MAX_HELD:
            self._give_up_gap(taps)

    def _release(self, taps: Sequence[Tap], arrived_before: int) -> None:
        """Give up gaps whose next packet has waited long enough."""
        while self._held and self._held[min(self._held)].arrival <= arrived_before:
            self._give_up_gap(taps)

    def _give_up_gap(self, taps: Sequence[Tap]) -> None:
        first = min(self._held)
        packet = self._held.pop(first)
        assert self._next is not None
        if packet.audio:
            self._conceal(packet, single=first - self._next == 1, taps=taps)
        self._deliver(packet, taps)
        self._deliver_consecutive(taps)

    def _deliver_consecutive(self, taps: Sequence[Tap]) -> None:
        while (packet := self._held.pop(self._next, None)) is not None:  # type: ignore[arg-type]
            self._deliver(packet, taps)

    def _deliver(self, packet: _Packet, taps: Sequence[Tap]) -> None:
        self._next = packet.extended + 1
        if not packet.audio:
            return
        if taps:
            self._emit_packet(packet, taps)
        elif self._decoding:
            self._idle_decoders()

    def _idle_decoders(self) -> None:
        """Nobody listens: decode nothing, and let the stateful decoders go.

        An Opus frame costs ~15 µs to decode; a later listener starts with fresh
        decoders.
        """
        self._decoding.clear()
        self._last_end = None

    # ---- decoding -----------------------------------------------------------------

    def _decoding_for(self, payload_type: int) -> _Decoding:
        decoding = self._decoding.get(payload_type)
        if decoding is None:
            decoding = self._decoding[payload_type] = _Decoding(
                self.formats[payload_type], self.rate
            )
        return decoding

    def _emit_packet(self, packet: _Packet, taps: Sequence[Tap]) -> None:
        self._emit(
            self._decoding_for(packet.payload_type),
            packet.payload,
            packet.position,
            packet.stamp,
            packet.anchor,
            packet.arrival,
            taps,
        )

    def _emit(
        self,
        decoding: _Decoding,
        payload: bytes,
        position: int,
        stamp: int,
        anchor: Anchor,
        arrival: int,
        taps: Sequence[Tap],
    ) -> None:
        if self.g711_taps and decoding.g711_table is not None:
            for tap in taps:
                tap.on_g711(position, payload, decoding.g711_table)
            return
        pcm = decoding.decode(payload)
        count = len(pcm)
        self._last_end = _End(position + count, stamp + count, anchor)
        frame = _new_frame(CallerFrame, (position, stamp, anchor, arrival, pcm))
        for tap in taps:
            tap.on_caller(frame)

    def _conceal(self, packet: _Packet, single: bool, taps: Sequence[Tap]) -> None:
        """The audio lost before `packet`, by the codec's PLC or FEC (stateful codecs only)."""
        if not taps or self._last_end is None:
            return
        decoding = self._decoding_for(packet.payload_type)
        if not decoding.stateful:
            return
        position, stamp, anchor = self._last_end
        missing = packet.stamp - stamp
        if not 0 < missing <= self.rate * MAX_CONCEAL_MS // 1000:
            return
        pcm = decoding.conceal(missing, packet.payload, single)
        self.stats.concealed_samples += len(pcm)
        frame = CallerFrame(position, stamp, anchor, packet.arrival, pcm)
        for tap in taps:
            tap.on_caller(frame)
