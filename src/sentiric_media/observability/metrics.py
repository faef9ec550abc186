"""Prometheus metrics, and the small HTTP server for `/metrics` and `/healthz`.

The media path never touches the client library: sessions keep plain integer
counters, and `MediaCollector` reads a snapshot of them (a callable returning a
`MetricsSnapshot`) only when Prometheus scrapes. gRPC request counts are the one
metric updated as it happens (once per RPC, not per packet).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


@dataclass
class MetricsSnapshot:
    """Everything the collector exports, read from the live objects at scrape time."""

    sessions_active: int = 0
    ports_free: int = 0
    ports_quarantined: int = 0
    ports_in_use: int = 0
    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    packets_lost: int = 0
    rtcp_received: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    pacing_buckets: tuple[float, ...] = ()
    pacing_counts: list[int] = field(default_factory=list)
    pacing_sum: float = 0.0
    frames_skipped: int = 0
    live_messages_dropped: int = 0
    tts_underruns: int = 0
    port_bind_failures: int = 0
    inactivity_timeouts: int = 0
    prompt_cache_bytes: int = 0
    caller_reanchors: int = 0
    recordings_active: int = 0
    recordings_spooled: int = 0
    recordings_stored: int = 0
    recording_store_failures: int = 0
    events_waiting: int = 0
    stream_events_dropped: int = 0
    keyword_speech_ms: int = 0
    keyword_hits: int = 0
    keyword_feeds_dropped: int = 0
    analysis_worker_cpu_seconds: float = 0.0
    analysis_worker_restarts: int = 0
    emotion_estimates: int = 0
    vad_inline_frames: int = 0
    vad_lost_windows: int = 0
    arousal_buckets: tuple[float, ...] = ()
    arousal_counts: list[int] = field(default_factory=list)
    arousal_sum: float = 0.0


class MediaCollector(Collector):
    def __init__(self, snapshot: Callable[[], MetricsSnapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self._snapshot()
        yield _gauge(
            "sentiric_media_sessions_active", "Sessions with an allocated port.", s.sessions_active
        )
        ports = GaugeMetricFamily(
            "sentiric_media_rtp_ports", "RTP ports by state.", labels=["state"]
        )
        ports.add_metric(["free"], s.ports_free)
        ports.add_metric(["quarantined"], s.ports_quarantined)
        ports.add_metric(["in_use"], s.ports_in_use)
        yield ports
        for name, value, text in (
            ("rtp_packets_received", s.packets_in, "RTP/RTCP datagrams received."),
            ("rtp_bytes_received", s.bytes_in, "Bytes of datagrams received."),
            ("rtp_packets_sent", s.packets_out, "RTP packets sent."),
            ("rtp_bytes_sent", s.bytes_out, "Bytes of RTP packets sent."),
            ("rtp_packets_lost", s.packets_lost, "Caller packets never received (RFC 3550)."),
            ("rtcp_packets_received", s.rtcp_received, "RTCP packets received (not yet used)."),
            ("pacing_frames_skipped", s.frames_skipped, "Frames skipped after a loop stall."),
            (
                "live_audio_messages_dropped",
                s.live_messages_dropped,
                "RecordAudio messages dropped for slow readers.",
            ),
            ("tts_stream_underruns", s.tts_underruns, "StreamAudioToCall buffer underruns."),
            (
                "stream_events_dropped",
                s.stream_events_dropped,
                "StreamEvents events dropped for slow subscribers (oldest first).",
            ),
            ("rtp_port_bind_failures", s.port_bind_failures, "Ports that failed to bind."),
            ("rtp_inactivity_timeouts", s.inactivity_timeouts, "Sessions silent too long."),
            (
                "caller_reanchors",
                s.caller_reanchors,
                "Caller timing re-anchored (SSRC, jump, drift).",
            ),
            (
                "keyword_speech_seconds",
                s.keyword_speech_ms / 1000,
                "Caller speech sent to the keyword worker.",
            ),
            ("keyword_hits", s.keyword_hits, "Keywords spotted."),
            (
                "keyword_feeds_dropped",
                s.keyword_feeds_dropped,
                "20 ms pieces of speech not spotted (worker behind or starting).",
            ),
            (
                "analysis_worker_cpu_seconds",
                s.analysis_worker_cpu_seconds,
                "CPU the analysis worker process spent on keywords and emotion.",
            ),
            ("analysis_worker_restarts", s.analysis_worker_restarts, "Analysis workers restarted."),
            ("emotion_estimates", s.emotion_estimates, "Emotion estimates of caller speech."),
            (
                "vad_inline_frames",
                s.vad_inline_frames,
                "Frames whose VAD model ran on the media loop (worker starting or behind).",
            ),
            (
                "vad_lost_windows",
                s.vad_lost_windows,
                "VAD windows sent to a worker that died before answering (taken as silence).",
            ),
            ("recordings_stored", s.recordings_stored, "Recordings stored at their target."),
            (
                "recording_store_failures",
                s.recording_store_failures,
                "Attempts to store a recording that failed (it stays spooled).",
            ),
        ):
            yield CounterMetricFamily(f"sentiric_media_{name}", text, value=value)
        drops = CounterMetricFamily(
            "sentiric_media_rtp_packets_dropped",
            "Received packets dropped, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(s.drops.items()):
            drops.add_metric([reason], count)
        yield drops
        yield _gauge(
            "sentiric_media_prompt_cache_bytes", "Decoded prompt cache size.", s.prompt_cache_bytes
        )
        if s.arousal_buckets:
            yield _histogram(
                "sentiric_media_call_arousal",
                "Calls' mean vocal arousal (0 calm .. 1 agitated), at their end.",
                s.arousal_buckets,
                s.arousal_counts,
                s.arousal_sum,
            )
        if s.pacing_buckets:
            yield _histogram(
                "sentiric_media_pacing_lateness_seconds",
                "Media clock tick start behind its absolute deadline.",
                s.pacing_buckets,
                s.pacing_counts,
                s.pacing_sum,
            )


def _histogram(
    name: str, text: str, bounds: tuple[float, ...], counts: list[int], total: float
) -> HistogramMetricFamily:
    """Per-bucket counts (the last bound +Inf) as Prometheus' cumulative buckets."""
    cumulative, buckets = 0, []
    for bound, count in zip(bounds, counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    return HistogramMetricFamily(name, text, buckets=buckets, sum_value=total)


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


class Metrics:
    """The registry of the process: the collector plus the gRPC request counter."""

    def __init__(self, snapshot: Callable[[], MetricsSnapshot]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(MediaCollector(snapshot))
        self.grpc_requests = Counter(
            "sentiric_media_grpc_requests",
            "gRPC requests by method and final status.",
            ["method", "code"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def serve_http(metrics: Metrics, host: str, port: int) -> asyncio.Server:
    """Serve `/metrics` and `/healthz` on (host, port)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            path = request.split(b" ", 2)[1].split(b"?")[0] if b" " in request else b""
            if path == b"/metrics":
                status, body, kind = b"200 OK", metrics.render(), b"text/plain; version=0.0.4"
            elif path == b"/healthz":
                status, body, kind = b"200 OK", b"ok\n", b"text/plain"
            else:
                status, body, kind = b"404 Not Found", b"not found\n", b"text/plain"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: "
                + kind
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ConnectionError,
            IndexError,
        ):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
