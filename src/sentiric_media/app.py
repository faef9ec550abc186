"""Wiring: builds every part from the settings, starts and stops them in order.

`MediaApp` is used by the command line (`sentiric-media serve`) and by the tests,
which start it in-process on free ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import grpc

from sentiric_media.analysis.worker import AROUSAL_BUCKETS, AnalysisWorker
from sentiric_media.api.server import start_grpc_server
from sentiric_media.api.servicer import MediaServicer
from sentiric_media.audio.prompts import PromptLibrary
from sentiric_media.config import Settings
from sentiric_media.control.manager import SessionManager
from sentiric_media.control.recordings import Recordings
from sentiric_media.events.broker import (
    DTMF_RECEIVED,
    PLAYBACK_FINISHED,
    LogPublisher,
    Publisher,
    RabbitPublisher,
    dtmf_received,
    playback_finished,
)
from sentiric_media.events.bus import EventBus, MediaEvent, log_event
from sentiric_media.events.outbox import Outbox
from sentiric_media.media.clock import LATENESS_BUCKETS, MediaClock
from sentiric_media.observability.metrics import Metrics, MetricsSnapshot, serve_http
from sentiric_media.storage.spool import Spool
from sentiric_media.storage.store import RecordingStore

log = logging.getLogger("sentiric_media")


class MediaApp:
    """The whole service in one object."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = MediaClock()
        self.bus = EventBus()
        self.prompts = PromptLibrary(
            settings.prompt_cache_mb * 1024 * 1024, settings.max_prompt_seconds
        )
        self.publisher = _publisher(settings)
        self.store = RecordingStore(settings)
        self.recordings = Recordings(
            settings, Spool(settings.spool_dir), self.store, self.publisher, self.bus
        )
        self.manager = SessionManager(settings, self.clock, self.bus, self.prompts, self.recordings)
        self.metrics = Metrics(self.snapshot)
        self.servicer = MediaServicer(self.manager, self._count_request)
        self.grpc_server: grpc.aio.Server | None = None
        self.http_server: asyncio.Server | None = None
        self.grpc_port = 0
        self.metrics_port = 0
        self.bus.subscribe(log_event)
        self.bus.subscribe(self._to_broker)

    async def start(self) -> None:
        self.settings.recordings_path.mkdir(parents=True, exist_ok=True)
        if not self.settings.assets_base_path.is_dir():
            log.warning("assets folder %s does not exist", self.settings.assets_base_path)
        await self.publisher.start()
        self.manager.start()
        self.grpc_server, self.grpc_port = await start_grpc_server(self.settings, self.servicer)
        self.http_server = await serve_http(
            self.metrics, self.settings.listen_address, self.settings.metrics_port
        )
        self.metrics_port = self.http_server.sockets[0].getsockname()[1]
        ports = self.settings.even_ports()
        log.info(
            "sentiric-media ready: gRPC %d, metrics %d, RTP %s:%d-%d (%d ports)",
            self.grpc_port,
            self.metrics_port,
            self.settings.rtp_listen_address,
            ports.start,
            ports.stop - 2,
            len(ports),
        )

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking RPCs, end every session (storing recordings), then finish the rest.

        Sessions end while the gRPC server is in its grace period, because open
        streams (`RecordAudio`, `StreamAudioToCall`) only finish when their
        session does.
        """
        stopping = None
        if self.grpc_server is not None:
            stopping = asyncio.ensure_future(self.grpc_server.stop(grace))
        await self.manager.shutdown()
        if stopping is not None:
            await stopping
        await self.publisher.stop()
        await self.store.close()
        if self.http_server is not None:
            self.http_server.close()
            await self.http_server.wait_closed()
        log.info("sentiric-media stopped")

    def _to_broker(self, event: MediaEvent) -> None:
        if event.kind == "playback_finished":
            self.publisher.publish(PLAYBACK_FINISHED, playback_finished(event))
        elif event.kind == "dtmf":
            self.publisher.publish(DTMF_RECEIVED, dtmf_received(event))

    def _count_request(self, method: str, code: str) -> None:
        self.metrics.grpc_requests.labels(method, code).inc()

    def snapshot(self) -> MetricsSnapshot:
        manager, pool = self.manager, self.manager.pool
        sessions = list(manager.by_port.values())
        retired = manager.retired
        drops = dict(retired.drops or {})
        stats = [session.stats for session in sessions]
        for session_stats in stats:
            for reason, count in session_stats.drops.items():
                drops[reason] = drops.get(reason, 0) + count
        return MetricsSnapshot(
            sessions_active=len(sessions),
            ports_free=pool.free_count,
            ports_quarantined=pool.quarantined_count,
            ports_in_use=pool.in_use_count,
            packets_in=retired.packets_in + sum(s.packets_in for s in stats),
            bytes_in=retired.bytes_in + sum(s.bytes_in for s in stats),
            packets_out=retired.packets_out + sum(s.packets_out for s in stats),
            bytes_out=retired.bytes_out + sum(s.bytes_out for s in stats),
            packets_lost=retired.packets_lost + sum(s.packets_lost for s in stats),
            rtcp_received=retired.rtcp_received + sum(s.rtcp_in for s in stats),
            drops=drops,
            pacing_buckets=LATENESS_BUCKETS,
            pacing_counts=list(self.clock.lateness_counts),
            pacing_sum=self.clock.lateness_sum,
            frames_skipped=self.clock.frames_skipped,
            live_messages_dropped=manager.live_messages_dropped,
            tts_underruns=manager.tts_underruns,
            port_bind_failures=manager.bind_failures,
            inactivity_timeouts=manager.inactivity_timeouts,
            prompt_cache_bytes=self.prompts.cached_bytes,
            caller_reanchors=retired.reanchors + sum(s.reanchors for s in stats),
            recordings_active=len(self.recordings.active),
            recordings_spooled=self.recordings.spooled_waiting,
            recordings_stored=self.recordings.stored,
            recording_store_failures=self.recordings.failures,
            events_waiting=self.publisher.waiting,
            stream_events_dropped=manager.events.dropped,
            vad_inline_frames=manager.vad_bank.inline_frames,
            vad_lost_windows=manager.vad_bank.lost_windows,
            **_analysis_counters(manager.analysis.worker),
        )


def _analysis_counters(worker: AnalysisWorker | None) -> dict[str, Any]:
    if worker is None:
        return {}
    counters = worker.counters
    return {
        "keyword_speech_ms": counters.fed_ms,
        "keyword_hits": counters.hits,
        "keyword_feeds_dropped": counters.dropped_feeds,
        "analysis_worker_cpu_seconds": counters.busy_s,
        "analysis_worker_restarts": worker.link.restarts,
        "emotion_estimates": counters.emotions,
        "arousal_buckets": AROUSAL_BUCKETS,
        "arousal_counts": list(counters.arousal_counts),
        "arousal_sum": counters.arousal_sum,
    }


def _publisher(settings: Settings) -> Publisher:
    if not settings.rabbitmq_url:
        return LogPublisher()
    outbox = Outbox(settings.spool_dir / "outbox", settings.event_outbox_max)
    return RabbitPublisher(settings.rabbitmq_url, settings.rabbitmq_exchange, outbox)


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    app = MediaApp(settings)
    await app.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting down")
    await app.stop()
