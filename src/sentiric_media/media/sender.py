"""The send path of one session: the bot's frames out as RTP, at the peer's packet time.

    playout frame (20 ms, session rate) ─► [resample to the codec's rate]
        ─► packetise at the agreed ptime ─► encode (or a prompt's cached packet)
        ─► RTP header (SSRC, sequence, timestamp, marker) ─► socket

One SSRC per session; sequence numbers and timestamps continue across prompts
and silence. Timestamps are in the codec's RTP clock (G.722: 8000 although the
audio is 16 kHz): the first packet of a talkspurt takes the clock position of
its tick, the following ones advance by one packet each, and the marker bit
says a talkspurt begins. Nothing is sent while no frame is due, or while the
negotiated direction says we must not send.
"""

from __future__ import annotations

import asyncio
import random

import numpy as np

from sentiric_media.audio.resample import ChunkResampler
from sentiric_media.media.codecs import PCMU, Encoder, MediaFormat
from sentiric_media.media.dtmf import build_event
from sentiric_media.media.dtmf_send import DtmfFrame
from sentiric_media.media.encoded import EncodedPrompt
from sentiric_media.media.rtp import build_rtp
from sentiric_media.media.stats import SessionStats
from sentiric_media.media.transport import Address

DTMF_VOLUME = 10  # -dBm0 written in our telephone-events (the in-band tones' level)


class RtpSender:
    """Packetises, encodes and sends one session's outbound audio."""

    def __init__(self, stats: SessionStats, rate: int) -> None:
        self.stats = stats
        self.rate = rate  # the session rate of the frames handed to `send`
        self.transport: asyncio.DatagramTransport | None = None
        self.target: Address | None = None
        self.target_locked = False
        self.sending = True  # False while the negotiated direction is recvonly/inactive
        self.format: MediaFormat = PCMU.format()
        self._encoder: Encoder = self.format.new_encoder()
        self._resampler: ChunkResampler | None = None
        self._clock_rate = self.format.clock_rate
        self._event_timestamp = 0
        self._ssrc = random.getrandbits(32)
        self._sequence = random.getrandbits(16)
        self._timestamp_base = random.getrandbits(32)
        self._talking = False
        self._marker = False
        # Packetiser state when a packet is not one 20 ms frame.
        self._buffer = np.zeros(0, dtype=np.int16)
        self._next_timestamp = 0
        self._cached: tuple[EncodedPrompt, int] | None = None

    def set_rate(self, rate: int) -> None:
        """Frames come at `rate` from now on."""
        self.rate = rate
        self._clock_rate = self.format.clock_rate  # read every packet: no property chain
        self._resampler = (
            ChunkResampler(rate, self.format.sample_rate)
            if self.format.sample_rate != rate
            else None
        )
        self.pause()

    def set_format(self, fmt: MediaFormat) -> None:
        """Send in `fmt` from the next frame on (a re-offer changes it in place)."""
        if fmt == self.format:
            return
        if fmt.encoder_key != self.format.encoder_key:
            self._encoder = fmt.new_encoder()
        self.format = fmt
        self.set_rate(self.rate)

    def pause(self) -> None:
        """No frame this tick: the next one starts a talkspurt."""
        if self._talking:
            self._talking = False
            self._buffer = self._buffer[:0]
            self._cached = None

    def send(
        self, pcm: np.ndarray, position: int, cached: tuple[EncodedPrompt, int] | None
    ) -> bool:
        """Send the frame that plays at `position`; True if it went out (or is packetised).

        `cached` is (a prompt's encoding, the frame's offset in the prompt) when
        the frame is an unaltered slice of a prompt.
        """
        if self.target is None or self.transport is None or not self.sending:
            self.pause()
            return False
        fmt = self.format
        if self._resampler is None and fmt.packet_samples == len(pcm):
            # The common case: one frame is one packet.
            payload = None if cached is None else cached[0].packet_for(fmt.encoder_key, cached[1])
            if payload is None:
                payload = self._encoder.encode(pcm)
            timestamp = self._timestamp_base + position * self._clock_rate // self.rate
            marker = not self._talking
            self._talking = True
            return self._send(payload, timestamp, marker)
        return self._packetise(pcm, position, cached)

    def _packetise(
        self, pcm: np.ndarray, position: int, cached: tuple[EncodedPrompt, int] | None
    ) -> bool:
        fmt = self.format
        if not self._talking:
            self._talking = self._marker = True
            self._next_timestamp = self._timestamp_base + position * fmt.clock_rate // self.rate
            self._buffer = self._buffer[:0]
            self._cached = cached if cached is not None and self._resampler is None else None
        elif self._cached is not None:
            encoded, start = self._cached
            if cached is None or cached[0] is not encoded or cached[1] != start + len(self._buffer):
                self._cached = None
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        self._buffer = np.concatenate((self._buffer, pcm)) if len(self._buffer) else pcm
        size = fmt.packet_samples
        sent = True
        while len(self._buffer) >= size:
            payload = None
            if self._cached is not None:
                encoded, start = self._cached
                payload = encoded.packet_for(fmt.encoder_key, start)
                self._cached = (encoded, start + size)
            if payload is None:
                payload = self._encoder.encode(self._buffer[:size])
            sent = self._send(payload, self._next_timestamp, self._marker) and sent
            self._marker = False
            self._next_timestamp += size * fmt.clock_rate // fmt.sample_rate
            self._buffer = self._buffer[size:]
        return sent

    def send_event(self, frame: DtmfFrame, position: int, payload_type: int) -> bool:
        """An RFC 4733 telephone-event packet for one DTMF frame (the end one three times).

        One timestamp for the whole digit (its first frame's position), the
        marker on its first packet, the duration growing with every packet; the
        sequence numbers are the audio stream's.
        """
        if self.target is None or self.transport is None or not self.sending:
            return False
        assert frame.pcm is not None  # pauses send nothing
        first = frame.elapsed == len(frame.pcm)
        if first:
            self._event_timestamp = self._timestamp_base + position * self._clock_rate // self.rate
        duration = frame.elapsed * self._clock_rate // self.rate
        payload = build_event(frame.event, frame.end, DTMF_VOLUME, duration)
        sent = self._send(payload, self._event_timestamp, first, payload_type)
        if frame.end:
            for _ in range(2):  # RFC 4733 §2.5.1.4: the end packet goes three times
                sent = self._send(payload, self._event_timestamp, False, payload_type) and sent
        # Audio after the digits starts a new talkspurt (marker, fresh timestamp).
        self.pause()
        return sent

    def _send(
        self, payload: bytes, timestamp: int, marker: bool, payload_type: int | None = None
    ) -> bool:
        pt = self.format.payload_type if payload_type is None else payload_type
        packet = build_rtp(pt, self._sequence, timestamp, self._ssrc, payload, marker)
        self._sequence = (self._sequence + 1) & 0xFFFF
        transport, target = self.transport, self.target
        assert transport is not None
        assert target is not None
        try:
            transport.sendto(packet, target)
        except (OSError, ValueError):
            self.stats.drops["send_error"] += 1
            return False
        self.stats.packets_out += 1
        self.stats.bytes_out += len(packet)
        return True
