"""Events on the real RabbitMQ broker: `call.recording.available` and playback finished.

A test queue (exclusive, auto-delete) bound to the service's topic exchange
receives the messages. Each test uses its own exchange (RABBITMQ_EXCHANGE)
except the one that checks the default name `sentiric_events`. Without a broker
these tests are skipped (failed in CI); see the `rabbitmq_url` fixture.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
import wave
from datetime import UTC, datetime
from pathlib import Path

import grpc
import numpy as np
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.events.outbox import Outbox
from tests.recording.conftest import (
    ALLOWED_RECORDING_EXTRAS,
    PLAYBACK_KEY,
    PROMPT_URI,
    RECORDING_KEY,
    REQUIRED_RECORDING_KEYS,
    BrokerMessage,
    PhoneCall,
    ServiceFactory,
    TapFactory,
    free_tcp_port,
    wait_until,
)
from tests.support import UdpPeer

pytestmark = pytest.mark.integration

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]00:00)$")
PLAYBACK_KEYS = {"eventType", "traceId", "callId", "uri", "interrupted", "playedMs", "timestamp"}


def parse_timestamp(text: str) -> datetime:
    assert RFC3339.match(text), f"not an RFC 3339 UTC timestamp: {text!r}"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert moment.utcoffset().total_seconds() == 0
    return moment


def check_recording_message(
    message: BrokerMessage, *, call_id: str, trace_id: str, uri: str
) -> dict:
    assert message.routing_key == RECORDING_KEY
    assert message.delivery_mode == 2  # persistent
    assert message.content_type == "application/json"
    body = message.body
    assert body.keys() >= REQUIRED_RECORDING_KEYS
    assert body.keys() - REQUIRED_RECORDING_KEYS <= ALLOWED_RECORDING_EXTRAS
    assert body["eventType"] == RECORDING_KEY
    assert body["callId"] == call_id
    assert body["traceId"] == trace_id
    assert body["recordingUri"] == uri
    return body


async def exactly_one(tap, routing_key: str, within: float = 10, **match) -> BrokerMessage:
    found = await tap.wait_for(routing_key, within, **match)
    assert found, f"no {routing_key} message within {within} s"
    await asyncio.sleep(0.5)  # a duplicate would arrive right behind
    found = tap.of(routing_key, **match)
    assert len(found) == 1, found
    return found[0]


def service_settings(rabbitmq_url: str, exchange: str) -> dict:
    return {"rabbitmq_url": rabbitmq_url, "rabbitmq_exchange": exchange}


async def test_recording_available_message_is_exact(
    make_service: ServiceFactory,
    peer: UdpPeer,
    broker: TapFactory,
    rabbitmq_url: str,
    tmp_path: Path,
) -> None:
    tap = await broker()
    service = await make_service(**service_settings(rabbitmq_url, tap.exchange))
    call = await PhoneCall.begin(service.stub, peer)
    uri = "file://events/exact.flac"
    before = datetime.now(UTC)
    reply, _ = await call.record(
        uri, 0.8, trace_id="trace-exact-1", sample_rate=16000, channels=2, format="flac"
    )
    after = datetime.now(UTC)
    message = await exactly_one(tap, RECORDING_KEY, callId=call.call_id)
    body = check_recording_message(message, call_id=call.call_id, trace_id="trace-exact-1", uri=uri)
    moment = parse_timestamp(body["timestamp"])
    assert before.replace(microsecond=0) <= moment.replace(microsecond=0)
    assert moment <= after
    # The extras, when present, tell the truth.
    assert body.get("durationMs", reply.duration_ms) == reply.duration_ms
    assert body.get("sampleRate", 16000) == 16000
    assert body.get("channels", 2) == 2
    assert body.get("format", "flac") == "flac"
    stored = tmp_path / "recordings" / "events" / "exact.flac"
    assert body.get("sizeBytes", stored.stat().st_size) == stored.stat().st_size
    await call.hang_up_phone()


async def test_trace_id_comes_from_x_trace_id_metadata_when_the_field_is_empty(
    make_service: ServiceFactory, peer: UdpPeer, broker: TapFactory, rabbitmq_url: str
) -> None:
    tap = await broker()
    service = await make_service(**service_settings(rabbitmq_url, tap.exchange))
    call = await PhoneCall.begin(service.stub, peer, prompt=None, talk=False)
    await call.start("file://meta.wav", metadata=(("x-trace-id", "trace-from-metadata"),))
    await asyncio.sleep(0.2)
    await call.stop()
    message = await exactly_one(tap, RECORDING_KEY, callId=call.call_id)
    check_recording_message(
        message, call_id=call.call_id, trace_id="trace-from-metadata", uri="file://meta.wav"
    )


async def test_trace_id_falls_back_to_the_one_the_call_was_allocated_with(
    make_service: ServiceFactory, broker: TapFactory, rabbitmq_url: str
) -> None:
    tap = await broker()
    service = await make_service(**service_settings(rabbitmq_url, tap.exchange))
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    port = (
        await service.stub.AllocatePort(
            pb.AllocatePortRequest(call_id=call_id), metadata=(("x-trace-id", "trace-alloc"),)
        )
    ).rtp_port
    await service.stub.StartRecording(
        pb.StartRecordingRequest(server_rtp_port=port, output_uri="file://alloc.wav")
    )
    await service.stub.StopRecording(pb.StopRecordingRequest(server_rtp_port=port))
    message = await exactly_one(tap, RECORDING_KEY, callId=call_id)
    check_recording_message(
        message, call_id=call_id, trace_id="trace-alloc", uri="file://alloc.wav"
    )


async def test_default_exchange_is_sentiric_events(
    make_service: ServiceFactory, peer: UdpPeer, broker: TapFactory, rabbitmq_url: str
) -> None:
    tap = await broker("sentiric_events")
    service = await make_service(rabbitmq_url=rabbitmq_url)
    assert service.app.settings.rabbitmq_exchange == "sentiric_events"
    call = await PhoneCall.begin(service.stub, peer, prompt=None, talk=False)
    uri = f"file://default-{call.call_id}.wav"
    await call.record(uri, 0.2, trace_id="trace-default")
    message = await exactly_one(tap, RECORDING_KEY, callId=call.call_id)
    check_recording_message(message, call_id=call.call_id, trace_id="trace-default", uri=uri)


async def test_release_port_announces_the_running_recording(
    make_service: ServiceFactory,
    peer: UdpPeer,
    broker: TapFactory,
    rabbitmq_url: str,
    tmp_path: Path,
) -> None:
    tap = await broker()
    service = await make_service(**service_settings(rabbitmq_url, tap.exchange))
    call = await PhoneCall.begin(service.stub, peer, prompt=None)
    await call.start("file://released.wav", trace_id="trace-release")
    await asyncio.sleep(0.4)
    await service.stub.ReleasePort(pb.ReleasePortRequest(rtp_port=call.port))
    assert (tmp_path / "recordings" / "released.wav").is_file()
    message = await exactly_one(tap, RECORDING_KEY, callId=call.call_id)
    check_recording_message(
        message, call_id=call.call_id, trace_id="trace-release", uri="file://released.wav"
    )
    await call.hang_up_phone()


async def test_no_message_before_the_recording_is_stored(
    make_service: ServiceFactory,
    peer: UdpPeer,
    broker: TapFactory,
    rabbitmq_url: str,
    tmp_path: Path,
) -> None:
    tap = await broker()
    service = await make_service(**service_settings(rabbitmq_url, tap.exchange))
    blocker = tmp_path / "recordings" / "blocked"
    blocker.write_text("not a folder")
    call = await PhoneCall.begin(service.stub, peer, prompt=None, talk=False)
    await call.start("file://blocked/late.wav")
    await asyncio.sleep(0.2)
    with pytest.raises(grpc.aio.AioRpcError):
        await call.stop()
    await asyncio.sleep(1.0)
    assert tap.of(RECORDING_KEY) == []
    blocker.unlink()
    message = await exactly_one(tap, RECORDING_KEY, within=15, callId=call.call_id)
    assert (blocker / "late.wav").is_file()
    assert message.body["recordingUri"] == "file://blocked/late.wav"


# ---- playback finished ---------------------------------------------------------------------


def write_short_prompt(assets: Path, seconds: float) -> str:
    path = assets / "audio" / "short.wav"
    t = np.arange(int(seconds * 8000)) / 8000
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(8000)
        handle.writeframes((6000 * np.sin(2 * np.pi * 500 * t)).astype("<i2").tobytes())
    return "file://audio/short.wav"


async def test_playback_finished_when_a_prompt_ends(
    make_service: ServiceFactory,
    peer: UdpPeer,
    broker: TapFactory,
    rabbitmq_url: str,
    assets: Path,
) -> None:
    tap = await broker()
    short = write_short_prompt(assets, 0.4)
    service = await make_service(**service_settings(rabbitmq_url, tap.exchange))
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    port = (
        await service.stub.AllocatePort(
            pb.AllocatePortRequest(call_id=call_id), metadata=(("x-trace-id", "trace-play"),)
        )
    ).rtp_port
    await service.stub.PlayAudio(
        pb.PlayAudioRequest(
            audio_uri=short, server_rtp_port=port, rtp_target_addr=peer.address_text
        )
    )
    message = await exactly_one(tap, PLAYBACK_KEY, callId=call_id)
    assert message.delivery_mode == 2
    assert message.body.keys() == PLAYBACK_KEYS
    assert message.body["eventType"] == PLAYBACK_KEY
    assert message.body["traceId"] == "trace-play"
    assert message.body["uri"] == short
    assert message.body["interrupted"] is False
    assert abs(message.body["playedMs"] - 400) <= 20
    parse_timestamp(message.body["timestamp"])


async def test_playback_finished_interrupted_when_stop_audio_cancels(
    make_service: ServiceFactory,
    peer: UdpPeer,
    broker: TapFactory,
    rabbitmq_url: str,
    assets: Path,
) -> None:
    tap = await broker()
    short = write_short_prompt(assets, 0.4)
    service = await make_service(**service_settings(rabbitmq_url, tap.exchange))
    call = await PhoneCall.begin(service.stub, peer, talk=False)  # the 5.1 s prompt plays
    await service.stub.PlayAudio(
        pb.PlayAudioRequest(
            audio_uri=short, server_rtp_port=call.port, rtp_target_addr=peer.address_text
        )
    )  # queued behind it
    started = time.monotonic()
    await asyncio.sleep(0.6)
    stopped = await service.stub.StopAudio(pb.StopAudioRequest(server_rtp_port=call.port))
    elapsed_ms = (time.monotonic() - started) * 1000
    assert stopped.stopped == 2
    messages = await tap.wait_for(PLAYBACK_KEY, 10, count=2, callId=call.call_id)
    await asyncio.sleep(0.5)
    messages = tap.of(PLAYBACK_KEY, callId=call.call_id)
    assert [m.body["uri"] for m in messages] == [PROMPT_URI, short]
    playing, queued = (m.body for m in messages)
    assert playing.keys() == PLAYBACK_KEYS
    assert playing["interrupted"] is True
    assert abs(playing["playedMs"] - elapsed_ms) <= 120
    assert queued["interrupted"] is True
    assert queued["playedMs"] == 0


# ---- broker down: the outbox ------------------------------------------------------------


def outbox_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "recordings" / ".spool" / "outbox").glob("*.json"))


@pytest.mark.slow
async def test_broker_down_keeps_the_message_in_the_outbox_until_a_restart_delivers_it(
    make_service: ServiceFactory,
    peer: UdpPeer,
    broker: TapFactory,
    rabbitmq_url: str,
    tmp_path: Path,
) -> None:
    tap = await broker()
    closed = f"amqp://guest:guest@127.0.0.1:{free_tcp_port()}/"
    down = await make_service(**service_settings(closed, tap.exchange))
    call = await PhoneCall.begin(down.stub, peer, prompt=None)
    uri = "file://while-down.wav"
    reply, _ = await call.record(uri, 0.5, trace_id="trace-down")
    assert reply.success
    assert (tmp_path / "recordings" / "while-down.wav").is_file()
    [waiting] = outbox_files(tmp_path)
    saved = json.loads(waiting.read_text())
    assert saved["routing_key"] == RECORDING_KEY
    assert saved["body"]["recordingUri"] == uri
    await asyncio.sleep(1.0)
    assert tap.messages == []
    await call.hang_up_phone()
    await down.stop()

    # A new process with the right broker and the same spool delivers it.
    await make_service(**service_settings(rabbitmq_url, tap.exchange))
    message = await exactly_one(tap, RECORDING_KEY, within=15, callId=call.call_id)
    body = check_recording_message(message, call_id=call.call_id, trace_id="trace-down", uri=uri)
    assert body == saved["body"]
    assert await wait_until(lambda: not outbox_files(tmp_path), within=5)


def fill_outbox(tmp_path: Path, count: int) -> None:
    outbox = Outbox(tmp_path / "recordings" / ".spool" / "outbox", max_messages=count)
    for n in range(count):
        assert outbox.put("test.filler", {"n": n})


async def test_full_outbox_while_the_broker_is_down_is_unavailable(
    make_service: ServiceFactory, peer: UdpPeer, tmp_path: Path
) -> None:
    fill_outbox(tmp_path, 10)
    closed = f"amqp://guest:guest@127.0.0.1:{free_tcp_port()}/"
    service = await make_service(rabbitmq_url=closed, event_outbox_max=10)
    call = await PhoneCall.begin(service.stub, peer, prompt=None, talk=False)
    await call.start("file://full.wav")
    await asyncio.sleep(0.2)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.stop()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.slow
async def test_full_outbox_loses_nothing_and_a_restart_delivers_everything(
    make_service: ServiceFactory,
    peer: UdpPeer,
    broker: TapFactory,
    rabbitmq_url: str,
    tmp_path: Path,
    spool_entries,
) -> None:
    tap = await broker()
    fill_outbox(tmp_path, 10)
    closed = f"amqp://guest:guest@127.0.0.1:{free_tcp_port()}/"
    down = await make_service(**service_settings(closed, tap.exchange), event_outbox_max=10)
    call = await PhoneCall.begin(down.stub, peer, prompt=None, talk=False)
    await call.start("file://full.wav", trace_id="trace-full")
    await asyncio.sleep(0.2)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.stop()  # the announcement cannot be queued: the caller must hear of it
    assert "outbox" in caught.value.details()
    assert len(spool_entries()) == 1  # kept for the retry
    assert len(outbox_files(tmp_path)) == 10  # nothing dropped to make room
    await down.stop()

    await make_service(**service_settings(rabbitmq_url, tap.exchange), event_outbox_max=10)
    message = await exactly_one(tap, RECORDING_KEY, within=20, callId=call.call_id)
    check_recording_message(
        message, call_id=call.call_id, trace_id="trace-full", uri="file://full.wav"
    )
    assert await wait_until(lambda: not spool_entries(), within=5)
    assert await wait_until(lambda: not outbox_files(tmp_path), within=5)
