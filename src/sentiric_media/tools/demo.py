"""`sentiric-media demo`: a phone call against a running service, from one command.

The demo allocates a port, starts a stereo recording, has the service play a
prompt to it, talks over the prompt's end (a bundled speech WAV sent as PCMU
RTP, paced at 20 ms), listens to its own voice through `RecordAudio`, stops the
recording, releases the port and prints what happened. The recording lands
under the service's recordings folder (`./recordings/demo/` by default), ready
for `sentiric-media inspect`.
"""

from __future__ import annotations

import asyncio
import base64
import io
import statistics
import time
import uuid
import wave
from dataclasses import dataclass, field
from importlib import resources

import grpc
import numpy as np

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.api.v1 import media_pb2_grpc
from sentiric_media.media.codecs.g711 import ULAW
from sentiric_media.media.rtp import build_rtp, parse_rtp

PROMPT_URI = "file://audio/demo/welcome.wav"
OVERLAP_AFTER = 2.0  # seconds into the prompt when the phone starts talking


@dataclass
class PhoneLine(asyncio.DatagramProtocol):
    """The demo phone's RTP socket: remembers arrival times of the service's packets."""

    arrivals: list[float] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            _, sequence, *_ = parse_rtp(data)
        except ValueError:
            return
        self.arrivals.append(time.monotonic())
        self.sequences.append(sequence)


def _speech() -> tuple[np.ndarray, bytes]:
    """The bundled 8 kHz speech: samples, and the WAV file's bytes."""
    data = resources.files("sentiric_media").joinpath("data/speech8k.wav").read_bytes()
    with wave.open(io.BytesIO(data)) as handle:
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    return pcm, data


async def _talk(line: PhoneLine, port: int, host: str, pcm: np.ndarray, seconds: float) -> int:
    assert line.transport is not None
    frames = min(len(pcm) // 160, int(seconds * 50))
    start = time.monotonic()
    for index in range(frames):
        delay = start + index * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        payload = ULAW.encode(pcm[index * 160 : (index + 1) * 160])
        packet = build_rtp(0, index, index * 160, 0xDE30, payload, marker=index == 0)
        line.transport.sendto(packet, (host, port))
    return frames


async def _listen(stub: media_pb2_grpc.MediaServiceStub, port: int, totals: dict) -> None:
    async for message in stub.RecordAudio(pb.RecordAudioRequest(server_rtp_port=port)):
        totals["messages"] += 1
        totals["bytes"] += len(message.audio_data)
        totals["media_type"] = message.media_type


async def _play(stub: media_pb2_grpc.MediaServiceStub, port: int, target: str, wav: bytes) -> str:
    request = pb.PlayAudioRequest(
        audio_uri=PROMPT_URI, server_rtp_port=port, rtp_target_addr=target
    )
    try:
        reply = await stub.PlayAudio(request)
        return f"{PROMPT_URI}: {reply.message}"
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
    # The service runs elsewhere than the repository: send the bundled speech inline.
    request.audio_uri = "data:audio/wav;base64," + base64.b64encode(wav).decode()
    reply = await stub.PlayAudio(request)
    return f"bundled WAV as data: URI (no {PROMPT_URI} on the service): {reply.message}"


async def run_demo(address: str, seconds: float) -> int:
    host = address.rsplit(":", 1)[0].strip("[]")
    loop = asyncio.get_running_loop()
    line = PhoneLine()
    local = "127.0.0.1" if host in ("127.0.0.1", "localhost") else "0.0.0.0"
    await loop.create_datagram_endpoint(lambda: line, local_addr=(local, 0))
    assert line.transport is not None
    my_port = line.transport.get_extra_info("sockname")[1]
    pcm, wav = _speech()
    call_id = f"demo-{uuid.uuid4().hex[:8]}"
    async with grpc.aio.insecure_channel(address) as channel:
        stub = media_pb2_grpc.MediaServiceStub(channel)
        metadata = (("x-trace-id", call_id),)
        try:
            port = (
                await stub.AllocatePort(
                    pb.AllocatePortRequest(call_id=call_id), metadata=metadata, timeout=5
                )
            ).rtp_port
        except grpc.aio.AioRpcError as exc:
            print(f"cannot reach the service at {address}: {exc.code().name} {exc.details()}")
            return 1
        print(f"call {call_id}: service RTP port {port}, phone on {local}:{my_port}")
        totals = {"messages": 0, "bytes": 0, "media_type": ""}
        listener = asyncio.create_task(_listen(stub, port, totals))
        recording_uri = f"file://demo/{call_id}.wav"
        await stub.StartRecording(
            pb.StartRecordingRequest(
                server_rtp_port=port, output_uri=recording_uri, channels=2, call_id=call_id
            ),
            metadata=metadata,
        )
        print("prompt:", await _play(stub, port, f"127.0.0.1:{my_port}", wav))
        await asyncio.sleep(OVERLAP_AFTER)
        sent = await _talk(line, port, "127.0.0.1" if local == "127.0.0.1" else host, pcm, seconds)
        await _wait_quiet(line, quiet=0.5, limit=15)
        stored = await stub.StopRecording(
            pb.StopRecordingRequest(server_rtp_port=port), metadata=metadata
        )
        await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port), metadata=metadata)
        await asyncio.wait_for(listener, 5)
    line.transport.close()
    _report(sent, line, totals)
    print(
        f"recording: {stored.recording_uri} ({stored.duration_ms} ms, stereo: caller left, "
        f"bot right); see it with: sentiric-media inspect recordings/demo/{call_id}.wav --png "
        f"{call_id}.png"
    )
    return 0 if line.arrivals and totals["bytes"] else 1


async def _wait_quiet(line: PhoneLine, quiet: float, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if line.arrivals and time.monotonic() - line.arrivals[-1] > quiet:
            return


def _report(sent: int, line: PhoneLine, totals: dict) -> None:
    print(f"phone → service: {sent} PCMU packets ({sent * 20 / 1000:.1f} s of speech)")
    received = len(line.arrivals)
    gaps = [b - a for a, b in zip(line.arrivals, line.arrivals[1:], strict=False)]
    missing = (max(line.sequences) - min(line.sequences) + 1 - received) if received else 0
    print(f"service → phone: {received} packets of prompt audio, {missing} missing")
    if len(gaps) > 10:
        ms = sorted(g * 1000 for g in gaps)
        p99 = ms[int(len(ms) * 0.99)]
        print(
            f"  pacing: inter-arrival mean {statistics.fmean(ms):.2f} ms, "
            f"p50 {ms[len(ms) // 2]:.2f} ms, p99 {p99:.2f} ms, max {ms[-1]:.2f} ms"
        )
    seconds = totals["bytes"] / 2 / 16000
    print(
        f"live audio (RecordAudio): {totals['messages']} messages, {totals['bytes']} bytes "
        f"({seconds:.1f} s, {totals['media_type']})"
    )
