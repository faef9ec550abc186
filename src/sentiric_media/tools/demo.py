"""`sentiric-media demo`: a phone call against a running service, from one command.

The demo allocates a port, offers its codec by SDP (`--codec`, NegotiateSdp),
starts a stereo recording, has the service play a prompt to it, talks over the
prompt's end (a bundled speech WAV sent as RTP in the negotiated codec, paced
at 20 ms), listens to its own voice through `RecordAudio`, stops the
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
from sentiric_media.audio.decode import to_rate
from sentiric_media.media.codecs import CODECS, MediaFormat
from sentiric_media.media.dtmf import EVENTS, build_event
from sentiric_media.media.rtp import build_rtp, parse_rtp

PROMPT_URI = "file://audio/demo/welcome.wav"
OVERLAP_AFTER = 2.0  # seconds into the prompt when the phone starts talking
_DYNAMIC_PT = 111  # the phone's payload type for codecs without a static one


def phone_offer(fmt: MediaFormat, host: str, port: int) -> str:
    """The demo phone's SDP offer: one codec and telephone-event, where it listens."""
    te_rate = 48000 if fmt.clock_rate == 48000 else 8000
    return "\r\n".join(
        [
            "v=0",
            f"o=demo-phone 1 1 IN IP4 {host}",
            "s=sentiric-media demo",
            f"c=IN IP4 {host}",
            "t=0 0",
            f"m=audio {port} RTP/AVP {fmt.payload_type} 101",
            f"a=rtpmap:{fmt.payload_type} {fmt.codec.rtpmap}",
            f"a=rtpmap:101 telephone-event/{te_rate}",
            "a=fmtp:101 0-16",
            "a=ptime:20",
            "a=sendrecv",
            "",
        ]
    )


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


async def _talk(
    line: PhoneLine, port: int, host: str, pcm: np.ndarray, fmt: MediaFormat, seconds: float
) -> int:
    """Send `pcm` (8 kHz) as 20 ms packets of `fmt`, paced against absolute deadlines."""
    assert line.transport is not None
    audio = to_rate(pcm.astype(np.float32) / 32768, 8000, fmt.sample_rate)
    size, step = fmt.packet_samples, fmt.clock_rate // 50
    encoder = fmt.new_encoder()
    frames = min(len(audio) // size, int(seconds * 50))
    start = time.monotonic()
    for index in range(frames):
        delay = start + index * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        payload = encoder.encode(audio[index * size : (index + 1) * size])
        packet = build_rtp(fmt.payload_type, index, index * step, 0xDE30, payload, index == 0)
        line.transport.sendto(packet, (host, port))
    return frames


async def _press(
    line: PhoneLine, port: int, host: str, digits: str, clock: int, first_sequence: int
) -> None:
    """The phone presses keys: RFC 4733 events of 100 ms, the end packet three times."""
    assert line.transport is not None
    sequence = first_sequence
    for index, digit in enumerate(digits):
        timestamp = (first_sequence + 20 * index) * clock // 50
        for step in range(1, 6):
            for _ in range(3 if step == 5 else 1):
                payload = build_event(EVENTS.index(digit), step == 5, 10, step * clock // 50)
                packet = build_rtp(101, sequence, timestamp, 0xDE30, payload, step == 1)
                line.transport.sendto(packet, (host, port))
                sequence += 1
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)


async def _watch(stub: media_pb2_grpc.MediaServiceStub, port: int, events: list[str]) -> None:
    async for event in stub.StreamEvents(pb.StreamEventsRequest(server_rtp_port=port)):
        kind = event.WhichOneof("event")
        detail = getattr(event, kind)
        fields = ", ".join(f"{f.name}={v}" for f, v in detail.ListFields())
        events.append(f"{event.media_time_ms:6d} ms  {kind}: {fields}")


async def _listen(stub: media_pb2_grpc.MediaServiceStub, port: int, totals: dict) -> None:
    async for message in stub.RecordAudio(pb.RecordAudioRequest(server_rtp_port=port)):
        totals["messages"] += 1
        totals["bytes"] += len(message.audio_data)
        totals["media_type"] = message.media_type


async def _play(stub: media_pb2_grpc.MediaServiceStub, port: int, wav: bytes) -> str:
    # No rtp_target_addr: the service sends where the phone's SDP said.
    request = pb.PlayAudioRequest(audio_uri=PROMPT_URI, server_rtp_port=port)
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


async def run_demo(address: str, seconds: float, codec: str = "pcmu") -> int:
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
        phone_host = "127.0.0.1" if local == "127.0.0.1" else host
        static = CODECS[codec].static_payload_type
        fmt = CODECS[codec].format(_DYNAMIC_PT if static is None else static)
        negotiated = await stub.NegotiateSdp(
            pb.NegotiateSdpRequest(
                server_rtp_port=port,
                remote_sdp=phone_offer(fmt, phone_host, my_port),
                type=pb.SDP_TYPE_OFFER,
                public_address=phone_host,
            ),
            metadata=metadata,
        )
        print(
            f"negotiated: {negotiated.codec}/{negotiated.clock_rate} payload type "
            f"{negotiated.payload_type}, telephone-event {negotiated.dtmf_payload_type or 'none'}, "
            f"service sends to {negotiated.remote_rtp_addr}"
        )
        totals = {"messages": 0, "bytes": 0, "media_type": ""}
        listener = asyncio.create_task(_listen(stub, port, totals))
        events: list[str] = []
        watcher = asyncio.create_task(_watch(stub, port, events))
        recording_uri = f"file://demo/{call_id}.wav"
        await stub.StartRecording(
            pb.StartRecordingRequest(
                server_rtp_port=port, output_uri=recording_uri, channels=2, call_id=call_id
            ),
            metadata=metadata,
        )
        print("prompt:", await _play(stub, port, wav))
        await asyncio.sleep(OVERLAP_AFTER)
        sent = await _talk(line, port, phone_host, pcm, fmt, seconds)
        await _press(line, port, phone_host, "42", fmt.clock_rate, first_sequence=sent)
        await _wait_quiet(line, quiet=0.5, limit=15)
        stored = await stub.StopRecording(
            pb.StopRecordingRequest(server_rtp_port=port), metadata=metadata
        )
        await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port), metadata=metadata)
        await asyncio.wait_for(listener, 5)
        await asyncio.wait_for(watcher, 5)
    line.transport.close()
    _report(sent, fmt.name, line, totals)
    print("events (StreamEvents):")
    for event in events:
        print("  " + event)
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


def _report(sent: int, codec: str, line: PhoneLine, totals: dict) -> None:
    print(f"phone → service: {sent} {codec} packets ({sent * 20 / 1000:.1f} s of speech)")
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
