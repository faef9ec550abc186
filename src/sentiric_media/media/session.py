"""One call's media: the RTP port, the inbound pipeline and the outbound playout.

A `MediaSession` is the asyncio datagram protocol of its port. Receiving does
almost nothing: check the source, parse the header, append to `pending`. All
real work happens on the media clock's tick for the session's slot:

    pending packets ─► stats ─► placement ─► decode ─► jitter buffer ─► live stream, echo
    playout.next_frame() ─► encode ─► RTP ─► caller

Counters are plain integers read by the metrics collector at scrape time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter, deque
from typing import Any

import numpy as np

from sentiric_media.audio.timeline import BOT, CALLER, Timeline
from sentiric_media.events.bus import EventBus, MediaEvent
from sentiric_media.media.clock import MediaClock
from sentiric_media.media.codecs import (
    COMFORT_NOISE_PAYLOAD_TYPE,
    PCMU,
    STATIC_PAYLOAD_TYPES,
    Codec,
)
from sentiric_media.media.jitter import JitterBuffer
from sentiric_media.media.live import LiveAudioStream
from sentiric_media.media.placement import Anchor, CallerPlacement
from sentiric_media.media.playout import Playout, PlayoutItem
from sentiric_media.media.rtp import MalformedPacket, build_rtp, is_rtcp, parse_rtp
from sentiric_media.media.rtpstats import DUPLICATE, ReceiveStats
from sentiric_media.media.transport import Address, format_address, parse_host_port, reachable

FRAME_MS = 20
# The recording places the caller's packets this long after they arrived (at most
# half its window), so the first packets of a talkspurt get the timing that the
# faster packets of the following second revealed.
RECORDING_HOLD_MS = 1000
# A flood beyond this many packets between two ticks (20 ms) is dropped, not queued.
MAX_PENDING = 256

_logger = logging.getLogger("sentiric_media.session")


class MediaSession(asyncio.DatagramProtocol):
    """Media state of one call, bound to one RTP port."""

    def __init__(
        self,
        *,
        call_id: str,
        trace_id: str,
        port: int,
        clock: MediaClock,
        bus: EventBus,
        jitter_ms: int,
    ) -> None:
        self.call_id = call_id
        self.trace_id = trace_id
        self.port = port
        self.log = logging.LoggerAdapter(
            _logger, {"call_id": call_id, "port": port, "trace_id": trace_id}
        )
        self._clock = clock
        self._bus = bus
        self.created_at = time.monotonic()
        self.codec: Codec = PCMU
        self.codec_fixed = False
        self.rate = self.codec.sample_rate
        self.frame_samples = self.rate * FRAME_MS // 1000
        self.jitter_delay = self.rate * jitter_ms // 1000
        self.transport: asyncio.DatagramTransport | None = None
        self.phase_offset = 0
        self.closed = False

        # Inbound.
        self.source: Address | None = None
        self.pending: list[tuple[int, int, int, int, bool, bytes, float]] = []
        self.stats: ReceiveStats | None = None
        self.placement = CallerPlacement(self.rate)
        self.jitter: JitterBuffer | None = None
        self.live: LiveAudioStream | None = None
        self.last_packet_at: float | None = None
        self.timed_out = False
        self.recorder: Timeline | None = None
        self._held: deque[tuple[int, int, Anchor, np.ndarray]] = deque()
        self._hold = 0

        # Outbound.
        self.target: Address | None = None
        self.target_locked = False
        self.playout = Playout(self.frame_samples, FRAME_MS, self.emit)
        self._ssrc = random.getrandbits(32)
        self._sequence = random.getrandbits(16)
        self._timestamp_base = random.getrandbits(32)
        self._talking = False

        # Counters (read by the metrics collector; never reset).
        self.packets_in = 0
        self.bytes_in = 0
        self.packets_out = 0
        self.bytes_out = 0
        self.rtcp_in = 0
        self.drops: Counter[str] = Counter()
        self.finished_streams_received = 0
        self.finished_streams_lost = 0

    # ---- lifecycle ---------------------------------------------------------------

    def start(self, transport: asyncio.DatagramTransport) -> None:
        self.transport = transport
        phase = self._clock.attach(self)
        self.phase_offset = self.frame_samples * phase // self._clock.phases

    def close(self) -> None:
        """End the session: cancel playout (with events), end live audio, free the socket."""
        if self.closed:
            return
        self.closed = True
        self._clock.detach(self)
        self.playout.stop()
        if self.live is not None:
            self.live.close()
        if self.transport is not None:
            self.transport.close()

    # ---- asyncio.DatagramProtocol: the receive path --------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The transport is handed over in `start`."""

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.packets_in += 1
        self.bytes_in += len(data)
        if self.source is not None and addr != self.source:
            self.drops["foreign_source"] += 1
            return
        if is_rtcp(data):
            self.rtcp_in += 1
            return
        try:
            packet = parse_rtp(data)
        except MalformedPacket as exc:
            self.drops[exc.reason] += 1
            return
        if self.source is None:
            self._latch(addr)
        if len(self.pending) >= MAX_PENDING:
            self.drops["overflow"] += 1
            return
        self.pending.append((*packet, time.monotonic()))

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable at the far end) must not end the session.
        self.drops["icmp_error"] += 1

    def _latch(self, addr: Address) -> None:
        self.source = addr
        if not self.target_locked:
            self.target = addr
        self.log.info(
            "caller RTP from %s%s",
            format_address(addr),
            "" if not self.target_locked else f" (sending to locked {format_address(self.target)})",
        )

    # ---- the tick --------------------------------------------------------------

    def on_tick(self, frame: int) -> None:
        position = frame * self.frame_samples + self.phase_offset
        if self.jitter is None and (self.live is not None or self.playout.echo is not None):
            self.jitter = JitterBuffer(self.rate, position - self.jitter_delay)
        if self.pending:
            self._receive()
        if self.jitter is not None:
            self._play_inbound(position)
        outgoing = self.playout.next_frame()
        if outgoing is None:
            self._talking = False
        elif self._send(outgoing, position) and self.recorder is not None:
            self.recorder.write(BOT, position, outgoing)
        if self.recorder is not None:
            if self._held:
                self._place_held(position - self._hold)
            self.recorder.advance(position)

    def _receive(self) -> None:
        packets, self.pending = self.pending, []
        jitter, recorder, placement = self.jitter, self.recorder, self.placement
        to_position = self._clock.seconds_to_samples
        for payload_type, sequence, timestamp, ssrc, marker, payload, arrival in packets:
            codec = STATIC_PAYLOAD_TYPES.get(payload_type)
            if codec is None:
                cn = payload_type == COMFORT_NOISE_PAYLOAD_TYPE
                self.drops["comfort_noise" if cn else "unsupported_payload_type"] += 1
                continue
            arrival_position = to_position(arrival, self.rate)
            stats = self.stats
            if stats is None or ssrc != self.placement.ssrc:
                stats = self._new_stream(sequence, codec)
            extended = stats.update(sequence, arrival_position - timestamp)
            if extended < 0:
                self.drops["duplicate" if extended == DUPLICATE else "sequence_jump"] += 1
                continue
            position = placement.place(ssrc, timestamp, marker, arrival_position)
            self.last_packet_at = arrival
            if jitter is None and recorder is None:
                continue
            pcm = codec.decode(payload)
            if recorder is not None:
                self._held.append((arrival_position, placement.stamp, placement.anchor, pcm))
            if jitter is not None:
                refused = jitter.write(position, pcm)
                if refused:
                    self.drops[refused] += 1
        if self.timed_out and self.last_packet_at is not None:
            self.timed_out = False
            self.log.info("caller RTP resumed")

    def _new_stream(self, sequence: int, codec: Codec) -> ReceiveStats:
        if self.stats is not None:
            self.finished_streams_received += self.stats.received
            self.finished_streams_lost += self.stats.lost
        self.stats = ReceiveStats(sequence)
        if not self.codec_fixed and codec is not self.codec and codec.sample_rate == self.rate:
            self.log.info("caller sends %s; answering in %s", codec.name, codec.name)
            self.codec = codec
        self.codec_fixed = True
        return self.stats

    def _place_held(self, arrived_before: int) -> None:
        held, recorder = self._held, self.recorder
        assert recorder is not None
        while held and held[0][0] <= arrived_before:
            _, stamp, anchor, pcm = held.popleft()
            recorder.write(CALLER, stamp + anchor.offset, pcm)

    def attach_recorder(self, timeline: Timeline) -> None:
        """Feed the recording `timeline` from now on."""
        self._hold = min(self.rate * RECORDING_HOLD_MS // 1000, timeline.window // 2)
        self.recorder = timeline

    def detach_recorder(self) -> None:
        """Place the caller audio still held back, then stop feeding the recording."""
        if self.recorder is not None and self._held:
            self._place_held(self._held[-1][0])
        self._held.clear()
        self.recorder = None

    def _play_inbound(self, position: int) -> None:
        """Read the caller's audio a jitter delay behind the clock, for echo and live."""
        jitter, live = self.jitter, self.live
        assert jitter is not None
        end = position - self.jitter_delay + self.frame_samples
        if self.playout.echo is None and live is not None:
            # Live audio alone: read a whole message at once when it is due, which
            # costs one read and one resampling per message instead of per tick.
            block = live.ticks_per_message * self.frame_samples
            if end - jitter.cursor < block:
                return
            if end - jitter.cursor > block:
                jitter.skip_to(end - block)
            live.push_block(jitter.read(block)[0])
            return
        if jitter.cursor != end - self.frame_samples:
            jitter.skip_to(end - self.frame_samples)
        audio, heard = jitter.read(self.frame_samples)
        if live is not None:
            live.push(audio)
        if heard:
            self.playout.feed_echo(audio)

    def _send(self, pcm: Any, position: int) -> bool:
        if self.target is None or self.transport is None:
            return False
        codec, source = self.codec, self.playout.prompt_slice
        if source is None:
            payload = codec.encode(pcm)
        else:
            payload = codec.encode_slice(source[0], source[1], self.frame_samples)
        packet = build_rtp(
            codec.payload_type,
            self._sequence,
            self._timestamp_base + position,
            self._ssrc,
            payload,
            marker=not self._talking,
        )
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._talking = True
        try:
            self.transport.sendto(packet, self.target)
        except (OSError, ValueError):
            self.drops["send_error"] += 1
            return False
        self.packets_out += 1
        self.bytes_out += len(packet)
        return True

    # ---- commands ------------------------------------------------------------

    def target_address(self, text: str) -> Address:
        """Parse `host:port` into an address this session's socket can send to."""
        address = parse_host_port(text)
        if self.transport is None:
            return address
        return reachable(self.transport.get_extra_info("socket").family, address, text)

    def position_now(self) -> int:
        """The clock's current position in samples at the session rate."""
        return self._clock.seconds_to_samples(time.monotonic(), self.rate)

    def set_target(self, target: Address, lock: bool = False) -> None:
        if lock:
            self.target_locked = True
            self.target = target
            self.log.info("send target locked to %s", format_address(target))
        elif not self.target_locked and self.source is None:
            self.target = target

    def enqueue(self, item: PlayoutItem) -> None:
        self.playout.enqueue(item)

    def set_echo(self, enabled: bool) -> None:
        self.playout.set_echo(enabled)
        self._drop_idle_jitter()

    def open_live(self, rate: int, frame_ms: int, max_backlog: int) -> LiveAudioStream:
        """Start live caller audio for a new reader; an earlier reader's stream ends."""
        if self.live is not None:
            self.live.close()
            self.log.info("RecordAudio replaced by a new reader")
        self.live = LiveAudioStream(self.rate, rate, frame_ms, max_backlog)
        return self.live

    def close_live(self, stream: LiveAudioStream) -> None:
        stream.close()
        if self.live is stream:
            self.live = None
            self._drop_idle_jitter()

    def _drop_idle_jitter(self) -> None:
        if self.live is None and self.playout.echo is None:
            self.jitter = None

    def check_inactivity(self, now: float, timeout: float) -> bool:
        """Report (once per silent spell) that no RTP came for `timeout` seconds."""
        since = self.last_packet_at if self.last_packet_at is not None else self.created_at
        if self.timed_out or now - since < timeout:
            return False
        self.timed_out = True
        silent_ms = int((now - since) * 1000)
        self.log.warning("no RTP for %d ms (session kept; signaling owns the call)", silent_ms)
        self.emit("rtp_timeout", {"silent_ms": silent_ms})
        return True

    # ---- events and stats ------------------------------------------------------------

    def emit(self, kind: str, data: dict[str, Any]) -> None:
        media_ms = int((time.monotonic() - self.created_at) * 1000)
        self._bus.publish(MediaEvent(kind, self.call_id, self.port, self.trace_id, media_ms, data))

    @property
    def packets_received(self) -> int:
        current = self.stats.received if self.stats else 0
        return self.finished_streams_received + current

    @property
    def packets_lost(self) -> int:
        current = self.stats.lost if self.stats else 0
        return self.finished_streams_lost + current
