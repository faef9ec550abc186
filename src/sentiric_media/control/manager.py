"""The session registry: ports ↔ call ids, and every command of the API on a session.

`SessionManager` is what the gRPC layer talks to. It allocates a port (trying
another when one fails to bind), creates the `MediaSession`, finds sessions by
port or call id (`NotFound` otherwise), turns `PlayAudio` URIs into playout
items or control commands, watches for inactivity, and ends sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass

from sentiric_media.analysis.dtmf_detect import DtmfBank
from sentiric_media.analysis.vad import VadBank
from sentiric_media.analysis.vad_worker import VadWorker
from sentiric_media.audio.prompts import PromptLibrary
from sentiric_media.audio.uri import ControlCommand, parse_audio_uri
from sentiric_media.config import Settings
from sentiric_media.control.analysis import SpeechAnalysis, normalise
from sentiric_media.control.negotiator import Negotiated, Negotiator
from sentiric_media.control.ports import PortPool
from sentiric_media.control.recordings import Recordings, StoredRecording
from sentiric_media.control.subscriptions import EventStreams, Subscription
from sentiric_media.errors import InvalidArgument, MediaError, NotFound
from sentiric_media.events.bus import EventBus
from sentiric_media.media.clock import MediaClock
from sentiric_media.media.dtmf_receive import InbandMode
from sentiric_media.media.dtmf_send import DIGITS as DTMF_DIGITS
from sentiric_media.media.encoded import PromptEncodings
from sentiric_media.media.listening import Analysers
from sentiric_media.media.live import LiveAudioStream
from sentiric_media.media.playout import Prompt, TtsStream
from sentiric_media.media.session import MediaSession
from sentiric_media.media.transport import bind_udp, format_address

log = logging.getLogger(__name__)

LIVE_RATES = (8000, 16000, 24000, 48000)
DTMF_DEFAULT_MS, DTMF_MIN_MS, DTMF_MAX_MS = 100, 40, 2000
TTS_RATE = 16000


@dataclass
class RetiredTotals:
    """Counters of sessions that ended, so exported totals never go down."""

    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    packets_lost: int = 0
    rtcp_received: int = 0
    reanchors: int = 0
    sessions: int = 0
    drops: Counter[str] | None = None


class SessionManager:
    """All sessions of the process and the commands on them."""

    def __init__(
        self,
        settings: Settings,
        clock: MediaClock,
        bus: EventBus,
        prompts: PromptLibrary,
        recordings: Recordings,
        pool: PortPool | None = None,
    ) -> None:
        self.settings = settings
        self.recordings = recordings
        self.clock = clock
        self.bus = bus
        self.prompts = prompts
        self.encodings = PromptEncodings()
        self.negotiator = Negotiator(settings)
        self.events = EventStreams()
        self.dtmf_bank = DtmfBank()  # in-band DTMF of all sessions, run once per frame
        clock.after_frame.append(self.dtmf_bank.run)
        # Voice activity of the sessions someone listens to; the model in a worker process.
        self.vad_worker = VadWorker() if settings.vad_worker else None
        self.vad_bank = VadBank(worker=self.vad_worker)
        clock.after_frame.append(self.vad_bank.run)
        self.analysis = SpeechAnalysis(settings)  # keywords and emotion, in a worker process
        if self.analysis.worker is not None:  # after the VAD: speech found this frame goes too
            clock.after_frame.append(self.analysis.worker.flush)
        self.analysers = Analysers(
            self.vad_bank,
            settings.speech(),
            settings.barge_in_min_speech_ms,
            self.analysis.worker,
            self.analysis.emotion,
        )
        bus.subscribe(self.events.deliver)
        self.pool = pool or PortPool(settings.even_ports(), settings.port_quarantine_seconds)
        self.by_port: dict[int, MediaSession] = {}
        self.by_call: dict[str, MediaSession] = {}
        self.retired = RetiredTotals(drops=Counter())
        self.bind_failures = 0
        self.inactivity_timeouts = 0
        self.live_messages_dropped = 0
        self.tts_underruns = 0
        self._watch_task: asyncio.Task[None] | None = None

    # ---- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        self.clock.start()
        self.recordings.start_background()
        self._watch_task = asyncio.get_running_loop().create_task(self._watch_inactivity())

    async def shutdown(self) -> None:
        for port in list(self.by_port):
            await self.release(port)
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        await self.recordings.stop_background()
        await self.clock.stop()
        self.analysis.stop()
        if self.vad_worker is not None:
            self.vad_worker.stop()

    async def allocate(self, call_id: str, trace_id: str = "") -> int:
        if not call_id.strip():
            raise InvalidArgument("call_id is empty")
        existing = self.by_call.get(call_id)
        if existing is not None:
            existing.log.info("AllocatePort again for the same call: same port")
            return existing.port
        loop = asyncio.get_running_loop()
        while True:
            port = self.pool.acquire()
            try:
                sock = bind_udp(self.settings.rtp_listen_address, port)
            except OSError as exc:
                self.bind_failures += 1
                log.warning(
                    "RTP port %d failed to bind (%s); quarantined, trying another", port, exc
                )
                self.pool.release(port)
                continue
            break
        session = MediaSession(
            call_id=call_id,
            trace_id=trace_id,
            port=port,
            clock=self.clock,
            bus=self.bus,
            jitter_ms=self.settings.jitter_buffer_ms,
            dtmf_bank=self.dtmf_bank,
            analysers=self.analysers,
            inband_dtmf=InbandMode(self.settings.inband_dtmf),
        )
        # Registered before the first await, so a concurrent AllocatePort of the
        # same call finds this session instead of creating a second one.
        self.by_port[port] = session
        self.by_call[call_id] = session
        transport, _ = await loop.create_datagram_endpoint(lambda: session, sock=sock)
        if session.closed:  # released while the socket was being set up
            transport.close()
        else:
            session.start(transport)
            session.log.info("session started")
        return port

    async def release(self, port: int) -> bool:
        """End the session on `port`; True if there was one (releasing twice is fine).

        A running recording is finished and stored first; if storing fails it stays
        spooled for the background retry, and the session ends anyway.
        """
        session = self.by_port.get(port)
        if session is None:
            return False
        if port in self.recordings.active:
            try:
                await self.recordings.stop(session)
            except MediaError as exc:
                session.log.warning("recording not stored at release (%s); retrying later", exc)
        if self.by_port.get(port) is not session:
            return False
        del self.by_port[port]
        if self.by_call.get(session.call_id) is session:
            del self.by_call[session.call_id]
        session.close()
        self.events.end_port(port)  # after close: its last events are delivered first
        self._retire(session)
        self.pool.release(port)
        arousal = session.listening.arousal.mean
        if arousal is not None and self.analysis.worker is not None:
            self.analysis.worker.counters.observe_arousal(arousal)
        session.log.info(
            "session ended: %d packets in, %d out, %d lost%s",
            session.stats.packets_in,
            session.stats.packets_out,
            session.stats.packets_lost,
            "" if arousal is None else f", arousal {arousal:.2f}",
        )
        return True

    def _retire(self, session: MediaSession) -> None:
        totals, stats = self.retired, session.stats
        totals.packets_in += stats.packets_in
        totals.bytes_in += stats.bytes_in
        totals.packets_out += stats.packets_out
        totals.bytes_out += stats.bytes_out
        totals.packets_lost += stats.packets_lost
        totals.rtcp_received += stats.rtcp_in
        totals.reanchors += stats.reanchors
        totals.sessions += 1
        assert totals.drops is not None
        totals.drops.update(stats.drops)

    # ---- lookup ----------------------------------------------------------------

    def session(self, port: int) -> MediaSession:
        session = self.by_port.get(port)
        if session is None:
            raise NotFound(f"no session on RTP port {port}")
        return session

    def session_for_call(self, call_id: str) -> MediaSession:
        session = self.by_call.get(call_id)
        if session is None:
            raise NotFound(f"no session for call_id {call_id!r}")
        return session

    # ---- commands ------------------------------------------------------------------

    async def play(
        self, port: int, audio_uri: str, target_text: str, interruptible: bool | None
    ) -> str:
        """Queue a prompt (or run a control command); returns a short human message."""
        session = self.session(port)
        target = session.target_address(target_text) if target_text.strip() else None
        source = parse_audio_uri(
            audio_uri, self.settings.assets_base_path, self.settings.max_data_uri_bytes
        )
        if isinstance(source, ControlCommand):
            return self._control(session, source.name, target)
        if target is not None:
            session.set_target(target)
        if session.target is None:
            raise InvalidArgument(
                f"rtp_target_addr is empty and no RTP has arrived on port {port} yet: "
                "nowhere to send the prompt"
            )
        if session.playout.full:
            raise InvalidArgument(
                f"{len(session.playout)} prompts already queued on port {port}; StopAudio first"
            )
        samples = await self.prompts.load(source, session.rate)
        fmt = session.send_format
        encoded = (
            await self.encodings.prepare(samples, fmt) if fmt.sample_rate == session.rate else None
        )
        if session.closed:
            raise NotFound(f"session on RTP port {port} ended while the prompt was loading")
        uri = audio_uri if len(audio_uri) <= 200 else audio_uri[:60] + "…"
        interrupt = self.settings.barge_in_default if interruptible is None else interruptible
        session.enqueue(Prompt(uri, samples, interrupt, encoded))
        ms = len(samples) * 1000 // session.rate
        return f"queued {ms} ms of audio ({len(session.playout)} in queue)"

    def _control(self, session: MediaSession, command: str, target: tuple | None) -> str:
        if command == "set_target":
            if target is None:
                raise InvalidArgument("control://set_target needs rtp_target_addr")
            session.set_target(target, lock=True)
            return f"target locked to {format_address(target)}"
        enabled = command == "enable_echo"
        if target is not None:
            session.set_target(target)
        session.set_echo(enabled)
        session.log.info("echo %s", "enabled" if enabled else "disabled")
        return f"echo {'enabled' if enabled else 'disabled'}"

    def negotiate(
        self,
        port: int,
        remote_sdp: str,
        sdp_type: int,
        preferences: list[str],
        srtp: int,
        public_address: str,
    ) -> Negotiated:
        return self.negotiator.negotiate(
            self.session(port), remote_sdp, sdp_type, preferences, srtp, public_address
        )

    async def open_events(self, port: int, keywords: list[str]) -> Subscription:
        self.session(port)
        words = normalise(keywords)
        await self.analysis.check(words)
        session = self.session(port)  # it may have ended while the words were checked
        subscription = self.events.open(port, words)
        session.listen(+1, words)
        return subscription

    def close_events(self, subscription: Subscription) -> None:
        """A StreamEvents subscriber left."""
        self.events.close(subscription)
        session = self.by_port.get(subscription.port)
        if session is not None:
            session.listen(-1, subscription.keywords)

    def send_dtmf(self, port: int, digits: str, duration_ms: int) -> None:
        session = self.session(port)
        bad = sorted({c for c in digits if c.upper() not in DTMF_DIGITS})
        if not digits or bad:
            raise InvalidArgument(
                f"digits {digits!r}: use 0-9 * # A-D and ',' (a 500 ms pause)"
                + (f"; not {''.join(bad)!r}" if bad else "")
            )
        duration_ms = duration_ms or DTMF_DEFAULT_MS
        if not DTMF_MIN_MS <= duration_ms <= DTMF_MAX_MS:
            raise InvalidArgument(
                f"duration_ms {duration_ms} must be {DTMF_MIN_MS}..{DTMF_MAX_MS} (default 100)"
            )
        if session.target is None:
            raise InvalidArgument(
                f"no RTP has arrived on port {port} and no target is known: nowhere to send"
            )
        session.send_dtmf(digits.upper(), duration_ms)

    def stop_audio(self, port: int) -> int:
        return self.session(port).playout.stop()

    def open_live(self, port: int, rate: int | None, frame_ms: int | None) -> LiveAudioStream:
        session = self.session(port)
        rate = 16000 if rate is None else rate
        if rate not in LIVE_RATES:
            raise InvalidArgument(
                f"target_sample_rate {rate} is not supported; use one of {LIVE_RATES}"
            )
        frame_ms = 20 if frame_ms is None else frame_ms
        if not (20 <= frame_ms <= 200 and frame_ms % 20 == 0):
            raise InvalidArgument(f"frame_ms {frame_ms} must be 20..200 in steps of 20")
        settings = self.settings
        return session.open_live(
            rate, frame_ms, settings.live_audio_stream_buffer, settings.live_audio_send_silence
        )

    def close_live(self, port: int, stream: LiveAudioStream) -> None:
        """The reader's RPC ended (each stream comes here exactly once)."""
        self.live_messages_dropped += stream.dropped_messages
        session = self.by_port.get(port)
        if session is not None:
            session.close_live(stream)
        else:
            stream.close()

    def open_tts_stream(self, call_id: str) -> tuple[MediaSession, TtsStream]:
        session = self.session_for_call(call_id)
        stream = TtsStream(TTS_RATE, session.rate, interruptible=self.settings.stream_interruptible)
        session.enqueue(stream)
        return session, stream

    def close_tts_stream(self, session: MediaSession, stream: TtsStream) -> None:
        """The stream's RPC ended: stop what it has not played, count its underruns."""
        if not stream.done:
            session.playout.stop(stream)
        self.tts_underruns += stream.underruns

    async def start_recording(
        self,
        port: int,
        output_uri: str,
        sample_rate: int | None,
        fmt: str | None,
        channels: int | None,
        trace_id: str,
    ) -> None:
        session = self.session(port)
        await self.recordings.start(session, output_uri, sample_rate, fmt, channels, trace_id)

    async def stop_recording(self, port: int) -> StoredRecording:
        return await self.recordings.stop(self.session(port))

    # ---- inactivity ----------------------------------------------------------------

    async def _watch_inactivity(self) -> None:
        timeout = self.settings.inactivity_timeout_seconds
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            now = time.monotonic()
            for session in list(self.by_port.values()):
                if session.check_inactivity(now, timeout):
                    self.inactivity_timeouts += 1
