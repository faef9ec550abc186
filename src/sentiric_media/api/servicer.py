"""`sentiric.media.v1.MediaService`: translates each RPC into a session command.

Only what is built is defined here; every other RPC of the contract is answered
UNIMPLEMENTED by the generated base class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from sentiric_media.api.calls import streaming, unary
from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.api.v1 import media_pb2_grpc as pb_grpc
from sentiric_media.control.manager import SessionManager
from sentiric_media.errors import InvalidArgument
from sentiric_media.events.bus import MediaEvent
from sentiric_media.media.playout import TtsStream
from sentiric_media.media.transport import format_address, looks_like_host_port
from sentiric_media.observability.logging import call_id_var, trace_id_var

log = logging.getLogger("sentiric_media.api")


class MediaServicer(pb_grpc.MediaServiceServicer):
    def __init__(self, manager: SessionManager, count_request: Any) -> None:
        self.manager = manager
        self.count_request = count_request
        self._legacy_warned = False

    @unary
    async def AllocatePort(self, request: pb.AllocatePortRequest, context: Any) -> Any:
        trace_id = trace_id_var.get()
        port = await self.manager.allocate(request.call_id, trace_id)
        return pb.AllocatePortResponse(rtp_port=port)

    @unary
    async def ReleasePort(self, request: pb.ReleasePortRequest, context: Any) -> Any:
        await self.manager.release(request.rtp_port)
        return pb.ReleasePortResponse(success=True)

    @unary
    async def PlayAudio(self, request: pb.PlayAudioRequest, context: Any) -> Any:
        audio_uri, target = request.audio_uri, request.rtp_target_addr
        if looks_like_host_port(audio_uri) and _looks_like_uri(target):
            audio_uri, target = target, audio_uri
            if not self._legacy_warned:
                self._legacy_warned = True
                log.warning(
                    "PlayAudio with the old field order (rtp_target_addr = 1, audio_uri = 3): "
                    "accepted; update the caller's stubs (this warning is shown once)"
                )
        interruptible = request.interruptible if request.HasField("interruptible") else None
        message = await self.manager.play(request.server_rtp_port, audio_uri, target, interruptible)
        return pb.PlayAudioResponse(success=True, message=message)

    @unary
    async def SendDtmf(self, request: pb.SendDtmfRequest, context: Any) -> Any:
        self.manager.send_dtmf(request.server_rtp_port, request.digits, request.duration_ms)
        return pb.SendDtmfResponse(success=True)

    @unary
    async def StopAudio(self, request: pb.StopAudioRequest, context: Any) -> Any:
        stopped = self.manager.stop_audio(request.server_rtp_port)
        return pb.StopAudioResponse(success=True, stopped=stopped)

    @unary
    async def StartRecording(self, request: pb.StartRecordingRequest, context: Any) -> Any:
        await self.manager.start_recording(
            request.server_rtp_port,
            request.output_uri.strip(),
            request.sample_rate if request.HasField("sample_rate") else None,
            request.format if request.HasField("format") else None,
            request.channels if request.HasField("channels") else None,
            request.trace_id or trace_id_var.get(),
        )
        return pb.StartRecordingResponse(success=True)

    @unary
    async def StopRecording(self, request: pb.StopRecordingRequest, context: Any) -> Any:
        stored = await self.manager.stop_recording(request.server_rtp_port)
        return pb.StopRecordingResponse(
            success=True, recording_uri=stored.uri, duration_ms=stored.duration_ms
        )

    @unary
    async def NegotiateSdp(self, request: pb.NegotiateSdpRequest, context: Any) -> Any:
        negotiated = self.manager.negotiate(
            request.server_rtp_port,
            request.remote_sdp,
            request.type,
            list(request.codec_preferences),
            request.srtp,
            request.public_address,
        )
        agreement = negotiated.agreement
        if agreement is None:  # our offer: nothing agreed until the answer comes
            return pb.NegotiateSdpResponse(local_sdp=negotiated.local_sdp)
        send = agreement.send
        return pb.NegotiateSdpResponse(
            local_sdp=negotiated.local_sdp,
            codec=send.name,
            payload_type=send.payload_type,
            clock_rate=send.clock_rate,
            dtmf_payload_type=agreement.dtmf_payload_type or 0,
            srtp_suite="",
            remote_rtp_addr=format_address(agreement.remote),
        )

    @streaming
    async def RecordAudio(
        self, request: pb.RecordAudioRequest, context: Any
    ) -> AsyncIterator[pb.RecordAudioResponse]:
        port = request.server_rtp_port
        stream = self.manager.open_live(
            port,
            request.target_sample_rate if request.HasField("target_sample_rate") else None,
            request.frame_ms if request.HasField("frame_ms") else None,
        )
        media_type = stream.media_type
        try:
            while (audio := await stream.next_audio()) is not None:
                yield pb.RecordAudioResponse(audio_data=audio, media_type=media_type)
        finally:
            self.manager.close_live(port, stream)

    @streaming
    async def StreamEvents(
        self, request: pb.StreamEventsRequest, context: Any
    ) -> AsyncIterator[pb.MediaEvent]:
        subscription = await self.manager.open_events(
            request.server_rtp_port, list(request.keywords)
        )
        try:
            while (event := await subscription.next_event()) is not None:
                yield to_message(event)
        finally:
            self.manager.close_events(subscription)

    @streaming
    async def StreamAudioToCall(
        self, requests: AsyncIterator[pb.StreamAudioToCallRequest], context: Any
    ) -> AsyncIterator[pb.StreamAudioToCallResponse]:
        idle = self.manager.settings.stream_idle_timeout_seconds
        idle_message = f"idle_timeout: no message for {idle:g} s"
        first = await _next_message(requests, idle)
        if first == "idle":
            yield pb.StreamAudioToCallResponse(success=False, error_message=idle_message)
            return
        if first == "closed":
            yield pb.StreamAudioToCallResponse(
                success=False, error_message="the stream ended before its first message"
            )
            return
        if not first.call_id:
            raise InvalidArgument("the first StreamAudioToCall message must carry call_id")
        call_id_var.set(first.call_id)
        session, tts = self.manager.open_tts_stream(first.call_id)
        session.log.info("TTS stream opened")
        tts.push(first.audio_chunk)
        reader = asyncio.get_running_loop().create_task(_read_chunks(requests, tts, idle))
        try:
            while True:
                status = asyncio.ensure_future(tts.statuses.get())
                waiting = {status} if reader.done() else {status, reader}
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if status.done():
                    success, message = status.result()
                    yield pb.StreamAudioToCallResponse(success=success, error_message=message)
                    if message == "buffer_underrun":
                        continue
                    return
                status.cancel()
                if reader.result() == "idle":
                    session.playout.stop(tts)
                    yield pb.StreamAudioToCallResponse(success=False, error_message=idle_message)
                    return
                # The sender closed its side: the rest plays, then the final status comes.
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self.manager.close_tts_stream(session, tts)


async def _read_chunks(
    requests: AsyncIterator[pb.StreamAudioToCallRequest], tts: TtsStream, idle: float
) -> str:
    """Feed chunks into `tts` until the sender closes ("closed") or goes quiet ("idle")."""
    while True:
        message = await _next_message(requests, idle)
        if isinstance(message, str):
            if message == "closed":
                tts.close()
            return message
        if message.audio_chunk:
            tts.push(message.audio_chunk)
            await tts.wait_for_room()


async def _next_message(requests: AsyncIterator[Any], idle: float) -> Any:
    """The next request, or "closed" at the end of the stream, or "idle" after `idle` s."""
    try:
        return await asyncio.wait_for(anext(requests), idle)
    except StopAsyncIteration:
        return "closed"
    except TimeoutError:
        return "idle"


def to_message(event: MediaEvent) -> pb.MediaEvent:
    """A bus event as the contract's `MediaEvent` (`kind` names the oneof field)."""
    message = pb.MediaEvent(
        call_id=event.call_id,
        server_rtp_port=event.port,
        timestamp_ms=event.timestamp_ms,
        media_time_ms=max(0, event.media_time_ms),
    )
    getattr(message, event.kind).SetInParent()
    for name, value in event.data.items():
        # Every integer of the contract's events is unsigned: a negative one (a bug)
        # must not end the subscriber's stream.
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            log.warning("%s.%s was %d: sent as 0", event.kind, name, value)
            value = 0
        setattr(getattr(message, event.kind), name, value)
    return message


def _looks_like_uri(text: str) -> bool:
    return "://" in text or text.startswith("data:")
