"""Fixtures of the recording tests: services with custom settings, the phone, RabbitMQ, S3.

The broker fixtures use the real RabbitMQ at `RABBITMQ_URL` (default
amqp://guest:guest@127.0.0.1:5672/). In CI (env var `CI` set) an unreachable
broker fails the tests; elsewhere they are skipped with a reason that says how
to start it. The S3 fixtures run moto's real HTTP server on a loopback port.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import boto3
import grpc
import numpy as np
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.api.v1 import media_pb2_grpc
from sentiric_media.app import MediaApp
from sentiric_media.media.codecs import PCMU
from tests.conftest import SPEECH_WAV, make_settings
from tests.support import UdpPeer, read_wav, send_rtp

RABBITMQ_URL = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/"
RECORDING_KEY = "call.recording.available"
PLAYBACK_KEY = "call.media.playback.finished"
DTMF_KEY = "call.media.dtmf.received"
PROMPT_URI = "file://audio/demo/welcome.wav"  # 5.1 s at 16 kHz, in the `assets` fixture
REQUIRED_RECORDING_KEYS = {"eventType", "traceId", "callId", "recordingUri", "timestamp"}
ALLOWED_RECORDING_EXTRAS = {"durationMs", "sampleRate", "channels", "format", "sizeBytes"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes seconds (outages, restarts, subprocesses)")


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@functools.cache
def speech() -> np.ndarray:
    """The bundled 8 kHz speech sample repeated to 60 s (int16 mono), read-only."""
    samples, rate = read_wav(SPEECH_WAV)
    assert rate == 8000
    looped = np.tile(samples, int(np.ceil(60 * rate / len(samples))))
    looped.flags.writeable = False
    return looped


async def wait_until(predicate: Callable[[], Any], within: float, step: float = 0.05) -> Any:
    """Poll `predicate` for `within` s until it returns something truthy; that value or the last."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(step)


# ---- the service and the phone --------------------------------------------------------


@dataclass
class Service:
    app: MediaApp
    channel: grpc.aio.Channel
    stub: media_pb2_grpc.MediaServiceStub
    stopped: bool = False

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.channel.close()
            await self.app.stop(grace=0.5)


ServiceFactory = Callable[..., Awaitable[Service]]


@pytest.fixture
async def make_service(tmp_path: Path, assets: Path) -> AsyncIterator[ServiceFactory]:
    """Start services with `make_settings` overrides; all stopped at the end of the test."""
    started: list[Service] = []

    async def factory(**overrides: Any) -> Service:
        app = MediaApp(make_settings(tmp_path, assets, **overrides))
        await app.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}")
        service = Service(app, channel, media_pb2_grpc.MediaServiceStub(channel))
        started.append(service)
        return service

    try:
        yield factory
    finally:
        for service in reversed(started):
            await service.stop()


@pytest.fixture
async def peer() -> AsyncIterator[UdpPeer]:
    phone = await UdpPeer.open()
    try:
        yield phone
    finally:
        phone.close()


@dataclass
class PhoneCall:
    """An allocated call with the phone talking (RTP) and, optionally, a prompt playing."""

    stub: media_pb2_grpc.MediaServiceStub
    peer: UdpPeer
    call_id: str
    port: int
    talking: asyncio.Task[None] | None = None

    @classmethod
    async def begin(
        cls,
        stub: media_pb2_grpc.MediaServiceStub,
        peer: UdpPeer,
        *,
        call_id: str = "",
        prompt: str | None = PROMPT_URI,
        talk: bool = True,
    ) -> PhoneCall:
        call_id = call_id or f"call-{uuid.uuid4().hex[:10]}"
        reply = await stub.AllocatePort(pb.AllocatePortRequest(call_id=call_id))
        call = cls(stub, peer, call_id, reply.rtp_port)
        if talk:
            call.talking = asyncio.get_running_loop().create_task(
                send_rtp(peer, call.port, speech(), PCMU)
            )
        if prompt:
            await stub.PlayAudio(
                pb.PlayAudioRequest(
                    audio_uri=prompt, server_rtp_port=call.port, rtp_target_addr=peer.address_text
                )
            )
        return call

    async def hang_up_phone(self) -> None:
        if self.talking is not None:
            self.talking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.talking
            self.talking = None

    async def start(self, output_uri: str, **fields: Any) -> None:
        metadata = fields.pop("metadata", None)
        await self.stub.StartRecording(
            pb.StartRecordingRequest(server_rtp_port=self.port, output_uri=output_uri, **fields),
            metadata=metadata,
        )

    async def stop(self) -> pb.StopRecordingResponse:
        return await self.stub.StopRecording(pb.StopRecordingRequest(server_rtp_port=self.port))

    async def record(
        self, output_uri: str, seconds: float, **fields: Any
    ) -> tuple[pb.StopRecordingResponse, float]:
        """StartRecording, wait, StopRecording; the reply and the wall-clock ms in between."""
        await self.start(output_uri, **fields)
        started = time.monotonic()
        await asyncio.sleep(seconds)
        stopping = time.monotonic()
        reply = await self.stop()
        return reply, (stopping - started) * 1000


@pytest.fixture
def spool_entries(tmp_path: Path) -> Callable[[], list[Path]]:
    """The recording folders in the default spool (`recordings/.spool`), outbox excluded."""

    def entries() -> list[Path]:
        root = tmp_path / "recordings" / ".spool"
        if not root.is_dir():
            return []
        return sorted(p for p in root.iterdir() if (p / "meta.json").exists())

    return entries


# ---- RabbitMQ ----------------------------------------------------------------------


async def _probe_broker(url: str) -> str | None:
    try:
        connection = await aio_pika.connect(url, timeout=3)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The real broker's URL; fails in CI and skips elsewhere when it is unreachable."""
    problem = asyncio.run(_probe_broker(RABBITMQ_URL))
    if problem is not None:
        message = f"RabbitMQ is not reachable at {RABBITMQ_URL} ({problem})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run a broker", pytrace=False)
        pytest.skip(f"{message}; start one with `rabbitmq-server -detached` to run these tests")
    return RABBITMQ_URL


@dataclass
class BrokerMessage:
    routing_key: str
    delivery_mode: int
    content_type: str | None
    body: dict[str, Any]


@dataclass
class Tap:
    """An exclusive auto-delete queue bound to an exchange; collects what arrives."""

    exchange: str
    messages: list[BrokerMessage] = field(default_factory=list)

    def of(self, routing_key: str, **match: Any) -> list[BrokerMessage]:
        return [
            m
            for m in self.messages
            if m.routing_key == routing_key
            and all(m.body.get(key) == value for key, value in match.items())
        ]

    async def wait_for(
        self, routing_key: str, within: float, count: int = 1, **match: Any
    ) -> list[BrokerMessage]:
        await wait_until(lambda: len(self.of(routing_key, **match)) >= count, within)
        return self.of(routing_key, **match)


TapFactory = Callable[..., Awaitable[Tap]]


@pytest.fixture
async def broker(rabbitmq_url: str) -> AsyncIterator[TapFactory]:
    """`await broker(exchange=None)`: a Tap on that exchange (a new unique one by default)."""
    connection = await aio_pika.connect(rabbitmq_url, timeout=5)
    channel = await connection.channel()
    own: list[aio_pika.abc.AbstractExchange] = []

    async def tap(exchange: str | None = None) -> Tap:
        name = exchange or f"sentiric_test_{uuid.uuid4().hex[:12]}"
        declared = await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
        if exchange is None:
            own.append(declared)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        for key in (RECORDING_KEY, PLAYBACK_KEY, DTMF_KEY):
            await queue.bind(declared, routing_key=key)
        result = Tap(name)

        async def received(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            result.messages.append(
                BrokerMessage(
                    message.routing_key or "",
                    int(message.delivery_mode or 0),
                    message.content_type,
                    json.loads(message.body),
                )
            )

        await queue.consume(received, no_ack=True)
        return result

    try:
        yield tap
    finally:
        for exchange in own:
            with contextlib.suppress(Exception):
                await exchange.delete()
        await connection.close()


# ---- S3 (moto's real HTTP server) --------------------------------------------------------


class S3Endpoint:
    """moto's server on a loopback port that can be stopped for real and started again."""

    def __init__(self) -> None:
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: ThreadedMotoServer | None = None
        self.client = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket: new connections are refused."""
        if self.server is not None:
            self.server.stop()
            if self.server._server is not None:
                self.server._server.server_close()
            self.server = None

    def settings(self, bucket_name: str | None = None) -> dict[str, Any]:
        """`make_settings` overrides that point the service at this endpoint."""
        return {
            "bucket_endpoint_url": self.url,
            "bucket_access_key_id": "testing",
            "bucket_secret_access_key": "testing",
            "bucket_region": "us-east-1",
            "bucket_name": bucket_name,
        }

    def new_bucket(self) -> str:
        name = f"rec-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        return name

    def bucket_exists(self, name: str) -> bool:
        try:
            self.client.head_bucket(Bucket=name)
        except self.client.exceptions.ClientError:
            return False
        return True

    def keys(self, bucket: str) -> list[str]:
        listing = self.client.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def get(self, bucket: str, key: str) -> bytes:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture
def s3() -> Iterator[S3Endpoint]:
    endpoint = S3Endpoint()
    endpoint.start()
    try:
        yield endpoint
    finally:
        endpoint.stop()
