"""The gRPC side of the load: call set-up, RecordAudio readers and tear-down.

Runs in its own process (asyncio on uvloop, one gRPC channel), so the readers'
per-message cost never delays the RTP loop's sends. It first plays the prompt
once on a throw-away session (the service decodes and caches it, so the idle
baseline measured afterwards already holds the prompt), then ramps the calls
up on schedule: AllocatePort, with a `--codec` NegotiateSdp (the caller's
offer, see `bench.codecs`), then publishes the port to the RTP process,
PlayAudio (file://, target = the generator's socket for that call), optionally
RecordAudio. At the end of the window it releases every port; the service then
ends each RecordAudio stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import grpc
import uvloop

from bench.plan import Plan, SharedInt, SharedInts
from bench.rtp_load import pin_to
from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.api.v1 import media_pb2_grpc as pb_grpc

RELEASE_CONCURRENCY = 64
BARGE_IN_REPLAY_S = 1.0
# What the keyword-spotting subscribers ask for (not said in the bundled speech: every
# hit is a false alarm, and the cost is the same).
KEYWORDS = ("operator", "cancel", "agent", "supervisor")


class NegotiationMismatch(Exception):
    """The service's answer agreed on another codec, payload type or clock than offered."""


@dataclass
class ControlStats:
    """What the control process saw; sent to the orchestrator as a dict."""

    calls_set_up: int = 0
    ramp_started_at: float = 0.0
    ramp_done_at: float = 0.0
    setup_ms: list[float] = field(default_factory=list)
    released: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)
    record_streams: int = 0
    record_streams_ended_ok: int = 0
    record_messages: int = 0
    record_bytes: int = 0
    record_window_messages: int = 0
    record_window_bytes: int = 0
    record_bad_media_type: int = 0
    recordings_started: int = 0
    recordings_stored: int = 0
    recorded_ms: int = 0
    stop_recording_ms: list[float] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)  # StreamEvents events by kind
    reaction_ms: list[int] = field(default_factory=list)  # of every barge-in
    keyword_hits: Counter[str] = field(default_factory=Counter)

    def error(self, where: str, exc: BaseException) -> None:
        code = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else type(exc).__name__
        self.errors[f"{where}:{code}"] += 1
        if len(self.first_errors) < 5:
            detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
            self.first_errors.append(f"{where}: {code}: {detail}")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        setup = sorted(self.setup_ms)
        data["setup_ms"] = {
            "p50": setup[len(setup) // 2] if setup else None,
            "max": setup[-1] if setup else None,
        }
        data["errors"] = dict(self.errors)
        data["events"] = dict(self.events)
        data["keyword_hits"] = dict(self.keyword_hits)
        reactions = sorted(self.reaction_ms)
        data["reaction_ms"] = {
            "count": len(reactions),
            "p50": reactions[len(reactions) // 2] if reactions else None,
            "p95": reactions[int(len(reactions) * 0.95)] if reactions else None,
            "max": reactions[-1] if reactions else None,
        }
        stops = sorted(self.stop_recording_ms)
        data["stop_recording_ms"] = {
            "p50": stops[len(stops) // 2] if stops else None,
            "p99": stops[int(len(stops) * 0.99)] if stops else None,
            "max": stops[-1] if stops else None,
        }
        return data


async def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


class Control:
    def __init__(self, plan: Plan, stub: pb_grpc.MediaServiceStub) -> None:
        self.plan = plan
        self.stub = stub
        self.stats = ControlStats()
        self.media_type = f"audio/L16;rate={plan.record_rate}"

    async def warm_up(self) -> None:
        """Load the prompt into the service's cache with one short-lived session."""
        plan, stub = self.plan, self.stub
        reply = await stub.AllocatePort(pb.AllocatePortRequest(call_id=f"{plan.run_id}-warmup"))
        try:
            if plan.codec.negotiate:  # the prompt is cached at the codec's rate, and encoded
                await self.negotiate(reply.rtp_port, 0)
            await stub.PlayAudio(
                pb.PlayAudioRequest(
                    audio_uri=plan.prompt_uri,
                    server_rtp_port=reply.rtp_port,
                    rtp_target_addr=plan.targets[0],
                )
            )
        finally:
            await stub.ReleasePort(pb.ReleasePortRequest(rtp_port=reply.rtp_port))

    async def play(self, index: int, port: int) -> None:
        request = pb.PlayAudioRequest(
            audio_uri=self.plan.prompt_uri,
            server_rtp_port=port,
            rtp_target_addr=self.plan.target_of(index),
        )
        if self.plan.barge_in:
            request.interruptible = True
        try:
            await self.stub.PlayAudio(request)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:  # a replay after the release
                self.stats.error("PlayAudio", exc)

    async def negotiate(self, port: int, index: int) -> None:
        """Offer call `index`'s codec; NegotiationMismatch unless the answer agrees on it."""
        codec = self.plan.codec
        reply = await self.stub.NegotiateSdp(
            pb.NegotiateSdpRequest(
                server_rtp_port=port, remote_sdp=self.plan.offer_of(index), type=pb.SDP_TYPE_OFFER
            )
        )
        agreed = (reply.codec.lower(), reply.payload_type, reply.clock_rate)
        offered = (codec.key, codec.payload_type, codec.codec.clock_rate)
        if agreed != offered:
            raise NegotiationMismatch(f"agreed {agreed}, offered {offered}")

    async def set_up(self, index: int, ports: SharedInts, ready: SharedInt) -> int:
        """One call: allocate, negotiate, publish the port, play; its port, or 0 on error.

        The RTP process learns the port before PlayAudio, so the first prompt packet
        already finds its call (and the caller's RTP starts at the same moment), and
        after NegotiateSdp, so the caller's first packet is in the agreed codec.
        """
        plan, stub = self.plan, self.stub
        began = time.monotonic()
        try:
            reply = await stub.AllocatePort(
                pb.AllocatePortRequest(call_id=f"{plan.run_id}-{index}"),
                metadata=(("x-trace-id", f"{plan.run_id}-{index}"),),
            )
        except grpc.aio.AioRpcError as exc:
            self.stats.error("AllocatePort", exc)
            ready.value = index + 1  # port 0: the RTP process skips this call
            return 0
        port = reply.rtp_port
        if plan.codec.negotiate:
            try:
                await self.negotiate(port, index)
            except (grpc.aio.AioRpcError, NegotiationMismatch) as exc:
                self.stats.error("NegotiateSdp", exc)
        ports[index] = port
        ready.value = index + 1
        await self.play(index, port)
        if plan.recording:
            await self.start_recording(index, port)
        self.stats.setup_ms.append((time.monotonic() - began) * 1000)
        self.stats.calls_set_up += 1
        return port

    async def read_live(self, port: int) -> None:
        """Consume one RecordAudio stream, counting messages and audio bytes."""
        plan, stats = self.plan, self.stats
        start, end = plan.t_window_start, plan.t_window_end
        request = pb.RecordAudioRequest(
            server_rtp_port=port, target_sample_rate=plan.record_rate, frame_ms=plan.frame_ms
        )
        stats.record_streams += 1
        monotonic = time.monotonic
        try:
            async for message in self.stub.RecordAudio(request):
                size = len(message.audio_data)
                stats.record_messages += 1
                stats.record_bytes += size
                if start <= monotonic() < end:
                    stats.record_window_messages += 1
                    stats.record_window_bytes += size
                if message.media_type != self.media_type:
                    stats.record_bad_media_type += 1
            stats.record_streams_ended_ok += 1
        except grpc.aio.AioRpcError as exc:
            stats.error("RecordAudio", exc)

    async def read_events(self, index: int, port: int) -> None:
        """Consume one StreamEvents stream (its subscriber turns voice activity on)."""
        keywords = KEYWORDS if index < self.plan.keywords else ()
        request = pb.StreamEventsRequest(server_rtp_port=port, keywords=keywords)
        try:
            async for event in self.stub.StreamEvents(request):
                kind = event.WhichOneof("event") or "?"
                self.stats.events[kind] += 1
                if kind == "keyword":
                    self.stats.keyword_hits[event.keyword.keyword] += 1
                elif kind == "barge_in":
                    self.stats.reaction_ms.append(event.barge_in.reaction_ms)
                elif kind == "playback_finished" and event.playback_finished.interrupted:
                    # The caller talked over it: play it again, a little later.
                    asyncio.get_running_loop().call_later(
                        BARGE_IN_REPLAY_S, lambda: asyncio.ensure_future(self.play(index, port))
                    )
        except grpc.aio.AioRpcError as exc:
            self.stats.error("StreamEvents", exc)

    async def start_recording(self, index: int, port: int) -> None:
        request = pb.StartRecordingRequest(
            server_rtp_port=port,
            output_uri=f"file://bench/{self.plan.run_id}-{index}.wav",
            channels=1 + index % 2,
            call_id=f"{self.plan.run_id}-{index}",
        )
        try:
            await self.stub.StartRecording(request)
            self.stats.recordings_started += 1
        except grpc.aio.AioRpcError as exc:
            self.stats.error("StartRecording", exc)

    async def stop_recording(self, port: int) -> None:
        began = time.monotonic()
        try:
            reply = await self.stub.StopRecording(pb.StopRecordingRequest(server_rtp_port=port))
        except grpc.aio.AioRpcError as exc:
            self.stats.error("StopRecording", exc)
            return
        self.stats.stop_recording_ms.append((time.monotonic() - began) * 1000)
        self.stats.recordings_stored += 1
        self.stats.recorded_ms += reply.duration_ms

    async def release(self, port: int, limit: asyncio.Semaphore) -> None:
        async with limit:
            if self.plan.recording:
                await self.stop_recording(port)
            try:
                await self.stub.ReleasePort(pb.ReleasePortRequest(rtp_port=port))
                self.stats.released += 1
            except grpc.aio.AioRpcError as exc:
                self.stats.error("ReleasePort", exc)

    async def run(self, ports: SharedInts, ready: SharedInt, events: Connection) -> None:
        plan = self.plan
        await self.warm_up()
        events.send(("warm", time.monotonic()))
        readers: list[asyncio.Task[None]] = []
        allocated: list[int] = []
        await _sleep_until(plan.t_ramp)
        self.stats.ramp_started_at = time.monotonic()
        for index in range(plan.calls):
            await _sleep_until(plan.call_start(index))
            port = await self.set_up(index, ports, ready)
            if port and plan.record_audio:
                readers.append(asyncio.create_task(self.read_live(port)))
            if port and plan.events:
                readers.append(asyncio.create_task(self.read_events(index, port)))
            if port:
                allocated.append(port)
        self.stats.ramp_done_at = time.monotonic()
        await _sleep_until(plan.t_release)
        limit = asyncio.Semaphore(RELEASE_CONCURRENCY)
        await asyncio.gather(*(self.release(port, limit) for port in allocated))
        if readers:
            _done, pending = await asyncio.wait(readers, timeout=15)
            for task in pending:
                task.cancel()
                self.stats.errors["RecordAudio:not_ended_after_release"] += 1
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)


async def _main(plan: Plan, ports: SharedInts, ready: SharedInt, events: Connection) -> None:
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    async with grpc.aio.insecure_channel(plan.grpc_address, options=options) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=15)
        control = Control(plan, pb_grpc.MediaServiceStub(channel))
        try:
            await control.run(ports, ready, events)
        except Exception as exc:
            control.stats.error("control", exc)
            ready.value = plan.calls  # let the RTP loop go on with what exists
        events.send(("done", control.stats.as_dict()))


def run_control_process(
    plan: Plan, ports: SharedInts, ready: SharedInt, events: Connection
) -> None:
    """Entry point of the control process (niced: the RTP loop's deadlines come first)."""
    pin_to(plan.generator_cpu)
    os.nice(5)
    uvloop.run(_main(plan, ports, ready, events))
