"""One call's media: the RTP port and the parts that own each path through it.

    socket ─► datagram_received: count, check source, demux RTCP, parse ─► RtpReceiver
    MediaClock tick (one slot per session, every 20 ms):
        RtpReceiver.drain ─► taps (live audio, recording, echo, ...) get caller frames
        taps.on_tick ─► Playout.next_frame ─► RtpSender.send ─► taps.on_bot

`datagram_received` is the one seam between the socket and RTP parsing on the
way in, and `RtpSender._send` on the way out (SRTP will sit there). The
session itself only wires the parts together, holds the taps, and carries the
commands of the API; counters live in `stats`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from sentiric_media.analysis.dtmf_detect import DtmfBank
from sentiric_media.audio.dtmf import key_tone
from sentiric_media.audio.timeline import Timeline
from sentiric_media.events.bus import EventBus, MediaEvent
from sentiric_media.media.clock import MediaClock
from sentiric_media.media.codecs import MediaFormat
from sentiric_media.media.dtmf import DtmfPress, DtmfSource
from sentiric_media.media.dtmf_receive import ASSUMED_PAYLOAD_TYPE, DtmfReceiving, InbandMode
from sentiric_media.media.dtmf_send import TONE_DBM0, DtmfTones
from sentiric_media.media.echo import EchoTap
from sentiric_media.media.listening import Analysers, Listening
from sentiric_media.media.live import LiveAudioStream, LiveTap
from sentiric_media.media.negotiation import OfferState
from sentiric_media.media.playout import Playout, PlayoutItem
from sentiric_media.media.receiver import RtpReceiver
from sentiric_media.media.recorder import RecorderTap
from sentiric_media.media.rtp import MalformedPacket, is_rtcp, parse_rtp
from sentiric_media.media.sender import RtpSender
from sentiric_media.media.stats import SessionStats
from sentiric_media.media.taps import Tap, TapSet
from sentiric_media.media.transport import Address, format_address, parse_host_port, reachable
from sentiric_media.media.vad_tap import VadTap

FRAME_MS = 20

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
        dtmf_bank: DtmfBank,
        analysers: Analysers,
        inband_dtmf: InbandMode = InbandMode.AUTO,
    ) -> None:
        self.call_id = call_id
        self.trace_id = trace_id
        self.port = port
        self.log = logging.LoggerAdapter(
            _logger, {"call_id": call_id, "port": port, "trace_id": trace_id}
        )
        self._clock = clock
        self._bus = bus
        self._jitter_ms = jitter_ms
        self.created_at = time.monotonic()
        self.transport: asyncio.DatagramTransport | None = None
        self.phase_offset = 0
        self._phase = 0
        self.closed = False
        self.source: Address | None = None
        self.stats = SessionStats()
        self.rate = 8000
        self.frame_samples = self.rate * FRAME_MS // 1000
        self.receiver = RtpReceiver(self.stats, self.rate, clock.seconds_to_samples, self.log)
        self.receiver.detected = self._caller_codec
        self.sender = RtpSender(self.stats, self.rate)
        self.playout = Playout(self.frame_samples, FRAME_MS, self.emit)
        self.taps = TapSet()
        self.live: LiveAudioStream | None = None
        self.recorder: RecorderTap | None = None
        self._live_tap: LiveTap | None = None
        self._echo_tap: EchoTap | None = None
        self._negotiated_remote: Address | None = None
        self.dtmf_in = DtmfReceiving(dtmf_bank, clock.epoch, self._dtmf_pressed, inband_dtmf)
        self.receiver.dtmf_payload_type = ASSUMED_PAYLOAD_TYPE
        self.receiver.telephone_events = self.dtmf_in.assumed()
        self.listening = Listening(self.dtmf_in, analysers, self.emit, self._media_ms, self.log)
        self._sync_listening()
        self._dtmf_send_pt: int | None = None  # the peer's telephone-event payload type
        self.dtmf_out = DtmfTones(self.rate, self.frame_samples)
        # SDP o= line: one session id for the session's life, a version per new SDP.
        self.sdp_session_id = random.getrandbits(31)
        self.sdp_version = 0
        self.pending_offer: OfferState | None = None  # our SDP offer awaiting its answer

    @property
    def jitter_delay(self) -> int:
        return self.rate * self._jitter_ms // 1000

    @property
    def target(self) -> Address | None:
        return self.sender.target

    @property
    def send_format(self) -> MediaFormat:
        return self.sender.format

    # ---- lifecycle ---------------------------------------------------------------

    def start(self, transport: asyncio.DatagramTransport) -> None:
        self.transport = transport
        self.sender.transport = transport
        self._phase = self._clock.attach(self)
        self.phase_offset = self.frame_samples * self._phase // self._clock.phases

    def close(self) -> None:
        """End the session: cancel playout (with events), end the taps, free the socket."""
        if self.closed:
            return
        self.closed = True
        self._clock.detach(self)
        self.playout.stop()
        self.taps.close()
        self.receiver.g711_taps = False
        self.dtmf_in.close()
        if self.transport is not None:
            self.transport.close()

    # ---- asyncio.DatagramProtocol: the socket seam of the receive path --------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The transport is handed over in `start`."""

    def datagram_received(self, data: bytes, addr: Address) -> None:
        stats = self.stats
        stats.packets_in += 1
        stats.bytes_in += len(data)
        if self.source is not None and addr != self.source:
            stats.drops["foreign_source"] += 1
            return
        if is_rtcp(data):
            stats.rtcp_in += 1
            return
        try:
            header = parse_rtp(data)
        except MalformedPacket as exc:
            stats.drops[exc.reason] += 1
            return
        if self.source is None:
            self._latch(addr)
        self.receiver.append(header)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable at the far end) must not end the session.
        self.stats.drops["icmp_error"] += 1

    def _latch(self, addr: Address) -> None:
        self.source = addr
        sender = self.sender
        if not sender.target_locked:
            sender.target = addr
        self.log.info(
            "caller RTP from %s%s",
            format_address(addr),
            ""
            if not sender.target_locked
            else f" (sending to locked {format_address(sender.target)})",
        )

    # ---- the tick --------------------------------------------------------------

    def on_tick(self, frame: int) -> None:
        position = frame * self.frame_samples + self.phase_offset
        receiver, sender = self.receiver, self.sender
        if receiver.pending or receiver.waiting:
            receiver.drain(self.taps.all, position)
        for tap in self.taps.ticking:
            tap.on_tick(position)
        if self.dtmf_in.waiting:
            self.dtmf_in.on_tick(time.monotonic())
        if self.listening.armed:
            self._check_barge_in(position)
        if self.dtmf_out:
            self._send_dtmf(position)
            return
        outgoing = self.playout.next_frame()
        if outgoing is None:
            sender.pause()
        elif sender.send(outgoing, position, self.playout.prompt_slice) and self.taps.hearing_bot:
            for tap in self.taps.hearing_bot:
                tap.on_bot(position, outgoing)

    def _send_dtmf(self, position: int) -> None:
        """Digits go out instead of the playout, which waits (prompts resume after)."""
        frame = self.dtmf_out.next_frame()
        sender = self.sender
        if frame is None or frame.pcm is None:
            sender.pause()
            return
        pt = self._dtmf_send_pt
        if pt is not None:
            sent = sender.send_event(frame, position, pt)
        else:
            sent = sender.send(frame.pcm, position, None)
        if sent:
            for tap in self.taps.hearing_bot:  # the recording hears the tones either way
                tap.on_bot(position, frame.pcm)

    def send_dtmf(self, digits: str, duration_ms: int) -> None:
        """Queue digits (validated by the caller) behind any still going out."""
        self.dtmf_out.add(digits, duration_ms)
        mode = "RFC 4733" if self._dtmf_send_pt is not None else "in-band tones"
        self.log.info("sending DTMF %r (%d ms each, %s)", digits, duration_ms, mode)

    # ---- formats -------------------------------------------------------------------

    def apply_media(
        self,
        send: MediaFormat,
        receive: dict[int, MediaFormat],
        dtmf_payload_type: int | None,
        remote: Address | None,
        sending: bool,
        dtmf_clock_rate: int | None = None,
    ) -> None:
        """Apply a negotiation (first or re-offer) to the live session, in place.

        The session moves to the codec's rate while nothing holds audio at the old
        one (the usual case: negotiation before any prompt, recording or live
        reader); otherwise it keeps its rate and the codec edges resample, so the
        recording, the live stream and queued prompts go on undisturbed.
        """
        rate = send.sample_rate
        holding = any(tap not in self.listening.taps for tap in self.taps.all)
        holding = holding or len(self.playout)
        if rate != self.rate and not holding:
            self.rate = rate
            self.frame_samples = rate * FRAME_MS // 1000
            self.phase_offset = self.frame_samples * self._phase // self._clock.phases
            self.playout.frame_samples = self.frame_samples
            self.receiver.set_rate(rate)
            self.sender.set_rate(rate)
            if not self.dtmf_out:
                self.dtmf_out = DtmfTones(rate, self.frame_samples)
        self.receiver.set_formats(receive, dtmf_payload_type)
        self._dtmf_send_pt = dtmf_payload_type
        dtmf_clock = None if dtmf_payload_type is None else dtmf_clock_rate or send.clock_rate
        self.receiver.telephone_events = self.dtmf_in.negotiate(dtmf_clock)
        self._sync_listening()
        self.sender.set_format(send)
        self.sender.sending = sending
        if remote is not None and remote != self._negotiated_remote:
            # The peer names a new address (first answer, or a re-INVITE after it
            # moved): send there, and latch again to its first packet.
            self._negotiated_remote = remote
            if self.source is not None and remote != self.source:
                self.source = None
            self.set_target(remote)
        self.log.info(
            "media: %s/%d pt %d, %d ms%s%s",
            send.name,
            send.clock_rate,
            send.payload_type,
            send.ptime,
            f", dtmf pt {dtmf_payload_type}" if dtmf_payload_type is not None else "",
            "" if sending else ", not sending (peer on hold or sendonly)",
        )

    def _caller_codec(self, fmt: MediaFormat) -> None:
        """Before any negotiation the caller's first packet picks the G.711 law we answer in."""
        if fmt.codec is not self.sender.format.codec:
            self.log.info("caller sends %s; answering in %s", fmt.name, fmt.name)
            self.sender.set_format(fmt)

    def _dtmf_pressed(self, press: DtmfPress) -> None:
        """One report per key press (see `dtmf_receive`)."""
        onset_ms = int((press.onset - self.created_at) * 1000)
        self.emit(
            "dtmf",
            {"digit": press.digit, "duration_ms": press.duration_ms, "source": press.source.value},
            media_ms=onset_ms,
        )
        if press.source is DtmfSource.RFC4733 and self.recorder is not None:
            # The recording's caller leg plays the press as the tones it stands for.
            position = self._clock.seconds_to_samples(press.onset, self.rate)
            pcm = key_tone(press.digit, self.rate * press.duration_ms // 1000, self.rate, TONE_DBM0)
            self.recorder.overlay_caller(position, pcm, self.position_now())

    # ---- taps ----------------------------------------------------------------------

    def _media_ms(self, position: int) -> int:
        """A clock position at the session rate as ms since the session began."""
        return int((self._clock.epoch + position / self.rate - self.created_at) * 1000)

    def _add_tap(self, tap: Tap) -> None:
        self.taps.add(tap)
        self.receiver.g711_taps = self.taps.g711_only

    def _remove_tap(self, tap: Tap | None) -> None:
        self.taps.remove(tap)
        self.receiver.g711_taps = self.taps.g711_only

    def _sync_listening(self) -> None:
        self.listening.sync(self.rate, self._add_tap, self._remove_tap)

    def listen(self, change: int, keywords: tuple[str, ...] = ()) -> None:
        """A StreamEvents subscriber came (+1) or left (-1), with the keywords it spots."""
        self.listening.subscriber(change, keywords)
        self._sync_listening()

    @property
    def vad(self) -> VadTap | None:
        return self.listening.vad

    def attach_recorder(self, timeline: Timeline) -> None:
        """Feed the recording `timeline` from now on."""
        self._remove_tap(self.recorder)
        self.recorder = RecorderTap(timeline, self.rate)
        self._add_tap(self.recorder)

    def detach_recorder(self) -> None:
        """Place the caller audio still held back, then stop feeding the recording."""
        self._remove_tap(self.recorder)
        self.recorder = None

    def set_echo(self, enabled: bool) -> None:
        self._remove_tap(self._echo_tap)
        self._echo_tap = None
        if enabled:
            self._echo_tap = EchoTap(
                self.playout, self.rate, self.frame_samples, self.jitter_delay, self.stats.drops
            )
            self._add_tap(self._echo_tap)

    def open_live(
        self, rate: int, frame_ms: int, max_backlog: int, send_silence: bool = True
    ) -> LiveAudioStream:
        """Start live caller audio for a new reader; an earlier reader's stream ends."""
        if self._live_tap is not None:
            self._remove_tap(self._live_tap)
            self.log.info("RecordAudio replaced by a new reader")
        self.live = LiveAudioStream(self.rate, rate, frame_ms, max_backlog)
        self._live_tap = LiveTap(
            self.live,
            self.rate,
            self.frame_samples,
            self.jitter_delay,
            self.stats.drops,
            send_silence,
        )
        self._add_tap(self._live_tap)
        return self.live

    def close_live(self, stream: LiveAudioStream) -> None:
        stream.close()
        if self.live is stream:
            self._remove_tap(self._live_tap)
            self._live_tap = None
            self.live = None

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
        sender = self.sender
        if lock:
            sender.target_locked = True
            sender.target = target
            self.log.info("send target locked to %s", format_address(target))
        elif not sender.target_locked and self.source is None:
            sender.target = target

    def enqueue(self, item: PlayoutItem) -> None:
        self.playout.enqueue(item)
        if item.interruptible and not self.listening.armed:
            self.listening.armed = True  # voice activity runs while barge-in is armed
            self._sync_listening()

    def _check_barge_in(self, position: int) -> None:
        if not self.listening.barge_in_tick(self.playout, position):
            self._sync_listening()  # nothing interruptible is left: disarmed

    def check_inactivity(self, now: float, timeout: float) -> bool:
        """Report (once per silent spell) that no RTP came for `timeout` seconds."""
        receiver = self.receiver
        last = receiver.last_packet_at
        since = last if last is not None else self.created_at
        if receiver.timed_out or now - since < timeout:
            return False
        receiver.timed_out = True
        silent_ms = int((now - since) * 1000)
        self.log.warning("no RTP for %d ms (session kept; signaling owns the call)", silent_ms)
        self.emit("rtp_timeout", {"silent_ms": silent_ms})
        return True

    # ---- events ------------------------------------------------------------------

    def emit(self, kind: str, data: dict[str, Any], media_ms: int | None = None) -> None:
        """Publish an event; `media_ms` (since the session began) defaults to now."""
        if media_ms is None:
            media_ms = int((time.monotonic() - self.created_at) * 1000)
        self._bus.publish(MediaEvent(kind, self.call_id, self.port, self.trace_id, media_ms, data))
