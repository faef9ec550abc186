"""Health, Prometheus metrics, /healthz and the trace id in log lines."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.observability.logging import CallContextFilter
from tests.integration.helpers import (
    allocate,
    http_get,
    metric,
    parse_metrics,
    play,
    rpc_error,
    rtp_packets,
    send_paced,
    speech,
    wait_until,
    wav_uri,
)

TRACE = (("x-trace-id", "trace-123"),)


@pytest.mark.parametrize("name", ["", "sentiric.media.v1.MediaService"])
async def test_health_check_is_serving(service, name):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=name)
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_check_of_unknown_service_is_not_found(service):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel:
        await rpc_error(
            health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="no.such.Service")
            ),
            grpc.StatusCode.NOT_FOUND,
        )


async def test_healthz(service):
    status, body = await http_get(service.metrics_port, "/healthz")
    assert status == 200
    assert body.strip() == "ok"
    status, _ = await http_get(service.metrics_port, "/nope")
    assert status == 404


async def test_metrics_follow_the_traffic(service, stub, peer):
    status, text = await http_get(service.metrics_port, "/metrics")
    assert status == 200
    before = parse_metrics(text)
    size = len(service.settings.even_ports())
    assert metric(before, "sentiric_media_sessions_active") == 0
    assert metric(before, "sentiric_media_rtp_ports", state="free") == size
    assert metric(before, "sentiric_media_rtp_packets_sent_total") == 0
    assert metric(before, "sentiric_media_rtp_packets_received_total") == 0

    port = await allocate(stub, "metrics-call")
    assert (await play(stub, port, wav_uri(speech()[:2400]), peer.address_text)).success
    await send_paced(peer, port, rtp_packets(speech()[:1600]))
    await peer.wait_for_packets(15, timeout=3)
    await peer.wait_quiet(0.1, timeout=3)
    await rpc_error(play(stub, port + 2, "http://x", peer.address_text), grpc.StatusCode.NOT_FOUND)
    await rpc_error(
        play(stub, port, "http://x", peer.address_text), grpc.StatusCode.INVALID_ARGUMENT
    )

    requests = "sentiric_media_grpc_requests_total"
    # A request is counted when its handler returns, which may be just after the
    # caller saw the status: scrape until the last one is in.
    deadline = time.monotonic() + 2
    while True:
        _, text = await http_get(service.metrics_port, "/metrics")
        after = parse_metrics(text)
        counted = metric(after, requests, method="PlayAudio", code="INVALID_ARGUMENT")
        if counted is not None or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert metric(after, "sentiric_media_sessions_active") == 1
    assert metric(after, "sentiric_media_rtp_ports", state="free") == size - 1
    assert metric(after, "sentiric_media_rtp_ports", state="in_use") == 1
    assert metric(after, "sentiric_media_rtp_packets_sent_total") == 15
    assert metric(after, "sentiric_media_rtp_packets_received_total") == 10
    assert metric(after, "sentiric_media_rtp_bytes_sent_total") == 15 * 172
    assert metric(after, "sentiric_media_pacing_lateness_seconds_bucket", le="+Inf") > 0
    assert metric(after, "sentiric_media_pacing_lateness_seconds_count") > 0
    assert metric(after, requests, method="AllocatePort", code="OK") == 1
    assert metric(after, requests, method="PlayAudio", code="OK") == 1
    assert metric(after, requests, method="PlayAudio", code="NOT_FOUND") == 1
    assert metric(after, requests, method="PlayAudio", code="INVALID_ARGUMENT") == 1

    # Totals of ended sessions are kept (counters never go down).
    await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
    _, text = await http_get(service.metrics_port, "/metrics")
    released = parse_metrics(text)
    assert metric(released, "sentiric_media_sessions_active") == 0
    assert metric(released, "sentiric_media_rtp_ports", state="quarantined") == 1
    assert metric(released, "sentiric_media_rtp_packets_sent_total") == 15
    assert metric(released, "sentiric_media_rtp_packets_received_total") == 10


async def _traced_call(stub, peer, caplog) -> int:
    """A call under trace-123 that logs from the session, the events and the API."""
    caplog.set_level(logging.INFO, logger="sentiric_media")
    caplog.handler.addFilter(CallContextFilter())  # as configure_logging installs it
    port = await allocate(stub, "trace-call", metadata=TRACE)
    assert (await play(stub, port, wav_uri(speech()[:800]), peer.address_text)).success
    await send_paced(peer, port, rtp_packets(speech()[:800]))
    await peer.wait_for_packets(5, timeout=2)
    await rpc_error(
        play(stub, port, "control://nope", peer.address_text, metadata=TRACE),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert await wait_until(
        lambda: any("playback.finished" in r.getMessage() for r in caplog.records), 2.0
    )
    return port


async def test_trace_id_goes_into_the_log_lines_of_the_call(service, stub, peer, caplog):
    port = await _traced_call(stub, peer, caplog)
    call_records = [
        r
        for r in caplog.records
        if getattr(r, "call_id", "") == "trace-call" or getattr(r, "port", 0) == port
    ]
    messages = {r.getMessage().split(":")[0] for r in call_records}
    assert "session started" in messages
    assert any(m.startswith("caller RTP from") for m in messages)
    assert any(m.startswith("event playback_finished") for m in messages)
    assert "PlayAudio -> INVALID_ARGUMENT" in messages
    untraced = [r.getMessage() for r in call_records if getattr(r, "trace_id", "") != "trace-123"]
    assert not untraced


async def test_broker_log_line_carries_the_trace_id(service, stub, peer, caplog):
    await _traced_call(stub, peer, caplog)
    broker = [r for r in caplog.records if r.getMessage().startswith("broker message")]
    assert broker
    assert '"traceId": "trace-123"' in broker[0].getMessage()
    assert [getattr(r, "trace_id", "") for r in broker] == ["trace-123"] * len(broker)


async def test_trace_id_is_carried_by_events(service, stub, peer, events):
    port = await allocate(stub, "trace-events", metadata=TRACE)
    assert (await play(stub, port, wav_uri(speech()[:800]), peer.address_text)).success
    assert await wait_until(lambda: any(e.kind == "playback_finished" for e in events), 2.0)
    assert {e.trace_id for e in events if e.port == port} == {"trace-123"}
