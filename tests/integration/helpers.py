"""Helpers shared by the integration tests: requests, audio fixtures, waiting, scraping."""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import time
import wave
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.audio.decode import to_rate
from sentiric_media.media.codecs.g711 import ULAW
from sentiric_media.media.rtp import build_rtp
from tests.conftest import SPEECH_WAV
from tests.support import UdpPeer, read_wav

PROMPT_URI = "file://audio/demo/welcome.wav"


@functools.cache
def speech() -> np.ndarray:
    """The bundled 8 kHz speech sample (9.3 s), int16 mono, read-only."""
    samples, rate = read_wav(SPEECH_WAV)
    assert rate == 8000
    samples.flags.writeable = False
    return samples


def resample(samples: np.ndarray, source_rate: int, rate: int) -> np.ndarray:
    """Int16 mono at `source_rate` → int16 mono at `rate` (soxr, as the service does)."""
    return to_rate(samples.astype(np.float32) / 32768, source_rate, rate)


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A 16-bit WAV file; `samples` is (n,) mono or (n, channels)."""
    frames = samples if samples.ndim == 2 else samples.reshape(-1, 1)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(frames.shape[1])
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(frames.astype("<i2").tobytes())
    return buffer.getvalue()


def data_uri(mime: str, payload: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode()}"


def wav_uri(samples: np.ndarray, rate: int = 8000) -> str:
    return data_uri("audio/wav", wav_bytes(samples, rate))


def decoded(peer: UdpPeer) -> np.ndarray:
    """What `peer` received, μ-law decoded, in arrival order (no sorting across wraps)."""
    if not peer.packets:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate([ULAW.decode(p.payload) for p in peer.packets])


async def allocate(stub: Any, call_id: str, **kwargs: Any) -> int:
    reply = await stub.AllocatePort(pb.AllocatePortRequest(call_id=call_id), **kwargs)
    return reply.rtp_port


async def play(
    stub: Any, port: int, uri: str, target: str = "", **kwargs: Any
) -> pb.PlayAudioResponse:
    return await stub.PlayAudio(
        pb.PlayAudioRequest(audio_uri=uri, server_rtp_port=port, rtp_target_addr=target),
        **kwargs,
    )


async def rpc_error(awaitable: Any, code: grpc.StatusCode) -> str:
    """Await a unary call that must fail with `code`; returns its details."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await awaitable
    assert info.value.code() == code, info.value.details()
    details = info.value.details() or ""
    assert "Traceback" not in details
    return details


async def stream_error(call: Any, code: grpc.StatusCode) -> str:
    """Read a response stream that must fail with `code`; returns its details."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() == code, info.value.details()
    details = info.value.details() or ""
    assert "Traceback" not in details
    return details


async def wait_until(predicate: Callable[[], bool], within: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


async def read_messages(call: Any, count: int, within: float = 5.0) -> list[Any]:
    """The next `count` messages of a response stream (fewer if it ends)."""
    messages: list[Any] = []

    async def run() -> None:
        while len(messages) < count:
            message = await call.read()
            if message is grpc.aio.EOF:
                return
            messages.append(message)

    await asyncio.wait_for(run(), within)
    return messages


async def drain(call: Any, within: float = 5.0) -> list[Any]:
    """Everything left in a response stream, until it ends."""
    messages: list[Any] = []

    async def run() -> None:
        while (message := await call.read()) is not grpc.aio.EOF:
            messages.append(message)

    await asyncio.wait_for(run(), within)
    return messages


def rtp_packets(
    pcm: np.ndarray,
    *,
    ssrc: int = 0x1234ABCD,
    first_sequence: int = 1000,
    first_timestamp: int = 5000,
    payload_type: int = 0,
) -> list[bytes]:
    """`pcm` (8 kHz) as 20 ms PCMU packets."""
    frame = 160
    return [
        build_rtp(
            payload_type,
            first_sequence + index,
            first_timestamp + index * frame,
            ssrc,
            ULAW.encode(pcm[index * frame : (index + 1) * frame]),
            marker=index == 0,
        )
        for index in range(len(pcm) // frame)
    ]


async def send_paced(peer: UdpPeer, port: int, packets: list[bytes]) -> None:
    """Send one packet every 20 ms against absolute deadlines."""
    start = time.monotonic()
    for index, packet in enumerate(packets):
        delay = start + index * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        peer.send(packet, port)


async def send_slots(peer: UdpPeer, port: int, slots: list[tuple[int, bytes]]) -> None:
    """Send each packet at its 20 ms slot (slot k at start + k·20 ms): pauses are real."""
    start = time.monotonic()
    for slot, packet in slots:
        delay = start + slot * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        peer.send(packet, port)


class RequestFeed:
    """The request side of a bidi stream, fed by the test: `send`, then `close`."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    def send(self, call_id: str = "", chunk: bytes = b"") -> None:
        self._queue.put_nowait(pb.StreamAudioToCallRequest(call_id=call_id, audio_chunk=chunk))

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[pb.StreamAudioToCallRequest]:
        while (item := await self._queue.get()) is not None:
            yield item


async def http_get(port: int, path: str) -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode()


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition, keyed by (name, labels)."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def metric(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def encode_container(samples: np.ndarray, rate: int, fmt: str) -> bytes:
    """Mono int16 `samples` at `rate` encoded in memory: "flac", "ogg" (Opus) or "mp3"."""
    import av  # PyAV: only these tests need an encoder

    codec, out_rate = {
        "flac": ("flac", rate),
        "ogg": ("libopus", 48000),
        "mp3": ("libmp3lame", rate),
    }[fmt]
    audio = samples if rate == out_rate else resample(samples, rate, out_rate)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=out_rate, layout="mono")
        step = 960
        for start in range(0, len(audio), step):
            piece = audio[start : start + step]
            frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = out_rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()
