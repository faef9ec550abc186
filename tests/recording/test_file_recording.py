"""StartRecording/StopRecording over real gRPC, real UDP RTP and a prompt playing: file targets.

Storage side only: where the file lands, that it is complete, its rate, channels,
format and length, the contract's statuses for bad requests, and ReleasePort.
"""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path

import av
import grpc
import numpy as np
import pytest

from sentiric_media.api.v1 import media_pb2 as pb
from sentiric_media.events.bus import MediaEvent
from tests.recording.conftest import PhoneCall, ServiceFactory, wait_until
from tests.support import UdpPeer

pytestmark = pytest.mark.integration

DURATION_TOLERANCE_MS = 60


def wav_info(path: Path) -> tuple[np.ndarray, int, int]:
    with wave.open(str(path), "rb") as handle:
        assert handle.getsampwidth() == 2
        channels = handle.getnchannels()
        data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
        return data.reshape(-1, channels), handle.getframerate(), channels


def pyav_info(path: Path) -> tuple[float, int, int, str]:
    """Decoded seconds, the stream's sample rate, channels and container format."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = 0
        for frame in container.decode(stream):
            samples += frame.samples
            decoded_rate = frame.sample_rate
        return (
            samples / decoded_rate,
            stream.codec_context.sample_rate,
            stream.codec_context.channels,
            container.format.name,
        )


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


@pytest.mark.parametrize(
    ("uri", "fields", "fmt", "rate", "channels"),
    [
        ("file://calls/mono8k.wav", {}, "wav", 8000, 1),
        ("file://stereo16k.wav", {"sample_rate": 16000, "channels": 2}, "wav", 16000, 2),
        ("file://deep/er/c.flac", {"sample_rate": 24000}, "flac", 24000, 1),
        ("file://c48.ogg", {"sample_rate": 48000, "channels": 2}, "ogg", 48000, 2),
        ("file://c16.mp3", {"sample_rate": 16000}, "mp3", 16000, 1),
        ("file://named.bin", {"format": "flac", "channels": 2}, "flac", 8000, 2),
        ("file://upper.WAV", {"format": "WAV", "sample_rate": 48000}, "wav", 48000, 1),
    ],
)
async def test_relative_file_target_is_complete_with_the_asked_shape(
    make_service: ServiceFactory,
    peer: UdpPeer,
    tmp_path: Path,
    spool_entries,
    uri: str,
    fields: dict,
    fmt: str,
    rate: int,
    channels: int,
) -> None:
    service = await make_service()
    call = await PhoneCall.begin(service.stub, peer)
    reply, wall_ms = await call.record(uri, 0.8, **fields)
    assert reply.success
    assert reply.recording_uri == uri
    assert abs(reply.duration_ms - wall_ms) <= DURATION_TOLERANCE_MS
    path = tmp_path / "recordings" / uri.removeprefix("file://")
    assert path.is_file()
    assert spool_entries() == []
    assert not list(path.parent.glob(".*partial"))  # the temporary name is gone
    if fmt == "wav":
        frames, got_rate, got_channels = wav_info(path)
        assert (got_rate, got_channels) == (rate, channels)
        assert abs(len(frames) * 1000 / rate - reply.duration_ms) <= 5
        assert rms(frames) > 100  # caller and prompt are in it
    else:
        seconds, got_rate, got_channels, container = pyav_info(path)
        assert (got_rate if fmt != "ogg" else rate, got_channels) == (rate, channels)
        assert container.split(",")[0] == fmt
        assert abs(seconds * 1000 - reply.duration_ms) <= 40
        if fmt == "ogg":
            header = path.read_bytes()
            at = header.find(b"OpusHead")
            assert int.from_bytes(header[at + 12 : at + 16], "little") == rate
    await call.hang_up_phone()


async def test_absolute_file_target_and_stereo_legs_hold_each_party(
    make_service: ServiceFactory, peer: UdpPeer, tmp_path: Path
) -> None:
    service = await make_service()
    outside = tmp_path / "elsewhere" / "abs.wav"
    uri = f"file://{outside}"
    assert uri.startswith("file:///")
    call = await PhoneCall.begin(service.stub, peer)
    reply, wall_ms = await call.record(uri, 1.5, channels=2, sample_rate=16000)
    assert reply.recording_uri == uri
    assert abs(reply.duration_ms - wall_ms) <= DURATION_TOLERANCE_MS
    frames, rate, channels = wav_info(outside)
    assert (rate, channels) == (16000, 2)
    # Both legs carry audio: the phone's speech left, the prompt right.
    assert rms(frames[:, 0]) > 100
    assert rms(frames[:, 1]) > 100
    await call.hang_up_phone()


async def test_silent_call_gives_a_silent_file_of_the_right_length(
    make_service: ServiceFactory, peer: UdpPeer, tmp_path: Path
) -> None:
    service = await make_service()
    call = await PhoneCall.begin(service.stub, peer, prompt=None, talk=False)
    reply, wall_ms = await call.record("file://silent.wav", 0.8)
    frames, rate, _ = wav_info(tmp_path / "recordings" / "silent.wav")
    assert rate == 8000
    assert abs(reply.duration_ms - wall_ms) <= DURATION_TOLERANCE_MS
    assert abs(len(frames) / 8 - reply.duration_ms) <= 2
    assert not frames.any()


async def test_empty_output_uri_gets_a_file_under_the_recordings_folder(
    make_service: ServiceFactory, peer: UdpPeer, tmp_path: Path
) -> None:
    service = await make_service()
    call = await PhoneCall.begin(service.stub, peer, call_id="call-noname", talk=False)
    reply, _ = await call.record("", 0.3, format="flac")
    assert reply.recording_uri.startswith("file://call-noname-")
    assert reply.recording_uri.endswith(".flac")
    path = tmp_path / "recordings" / reply.recording_uri.removeprefix("file://")
    assert pyav_info(path)[3] == "flac"


async def test_a_new_recording_may_follow_a_stop(
    make_service: ServiceFactory, peer: UdpPeer, tmp_path: Path
) -> None:
    service = await make_service()
    call = await PhoneCall.begin(service.stub, peer)
    first, _ = await call.record("file://first.wav", 0.5)
    second, wall_ms = await call.record("file://second.wav", 0.7, channels=2)
    assert first.recording_uri == "file://first.wav"
    assert second.recording_uri == "file://second.wav"
    assert abs(second.duration_ms - wall_ms) <= DURATION_TOLERANCE_MS
    assert wav_info(tmp_path / "recordings" / "first.wav")[2] == 1
    frames, _, channels = wav_info(tmp_path / "recordings" / "second.wav")
    assert channels == 2
    assert abs(len(frames) / 8 - second.duration_ms) <= 2
    await call.hang_up_phone()


async def test_the_same_uri_twice_replaces_the_file(
    make_service: ServiceFactory, peer: UdpPeer, tmp_path: Path
) -> None:
    service = await make_service()
    call = await PhoneCall.begin(service.stub, peer, talk=False)
    await call.record("file://same.wav", 0.3)
    second, _ = await call.record("file://same.wav", 0.9)
    frames, _, _ = wav_info(tmp_path / "recordings" / "same.wav")
    assert abs(len(frames) / 8 - second.duration_ms) <= 2


# ---- bad requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code", "shown"),
    [
        ({"output_uri": "file://a.wav", "sample_rate": 11025}, "INVALID_ARGUMENT", "11025"),
        ({"output_uri": "file://a.wav", "sample_rate": 0}, "INVALID_ARGUMENT", "sample_rate 0"),
        ({"output_uri": "file://a.wav", "format": "aiff"}, "INVALID_ARGUMENT", "aiff"),
        ({"output_uri": "file://a.wav", "channels": 3}, "INVALID_ARGUMENT", "channels 3"),
        ({"output_uri": "file://a.wav", "channels": 0}, "INVALID_ARGUMENT", "channels 0"),
        ({"output_uri": "ftp://x/y"}, "INVALID_ARGUMENT", "ftp"),
        ({"output_uri": "file://../x.wav"}, "INVALID_ARGUMENT", "file://../x.wav"),
        ({"output_uri": "file://a/../../x.wav"}, "INVALID_ARGUMENT", "file://a/../../x.wav"),
        ({"output_uri": "s3:///key.wav"}, "FAILED_PRECONDITION", "s3:///key.wav"),
        ({"output_uri": "s3://bucket/key.wav"}, "FAILED_PRECONDITION", "s3://bucket/key.wav"),
    ],
)
async def test_bad_start_recording_gets_the_contract_status_and_records_nothing(
    make_service: ServiceFactory,
    peer: UdpPeer,
    tmp_path: Path,
    spool_entries,
    fields: dict,
    code: str,
    shown: str,
) -> None:
    service = await make_service()  # no S3 configured, no BUCKET_NAME
    call = await PhoneCall.begin(service.stub, peer, prompt=None, talk=False)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.start(**fields)
    assert caught.value.code() == getattr(grpc.StatusCode, code)
    assert shown in caught.value.details()
    assert "Traceback" not in caught.value.details()
    assert spool_entries() == []
    assert not service.app.recordings.active
    with pytest.raises(grpc.aio.AioRpcError) as stopped:
        await call.stop()
    assert stopped.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert not (tmp_path / "x.wav").exists()
    # A good request still works afterwards.
    reply, _ = await call.record("file://after.wav", 0.2)
    assert reply.success


async def test_second_start_is_already_exists_and_the_first_keeps_recording(
    make_service: ServiceFactory, peer: UdpPeer, tmp_path: Path
) -> None:
    service = await make_service()
    call = await PhoneCall.begin(service.stub, peer, talk=False)
    await call.start("file://one.wav")
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.start("file://two.wav")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert str(call.port) in caught.value.details()
    await asyncio.sleep(0.5)
    wall_ms = (time.monotonic() - started) * 1000
    reply = await call.stop()
    assert reply.recording_uri == "file://one.wav"
    assert reply.duration_ms >= wall_ms - DURATION_TOLERANCE_MS
    assert (tmp_path / "recordings" / "one.wav").is_file()
    assert not (tmp_path / "recordings" / "two.wav").exists()


async def test_stop_without_a_recording_is_failed_precondition(
    make_service: ServiceFactory, peer: UdpPeer
) -> None:
    service = await make_service()
    call = await PhoneCall.begin(service.stub, peer, prompt=None, talk=False)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.stop()
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert str(call.port) in caught.value.details()
    await call.record("file://once.wav", 0.1)
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await call.stop()
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_unknown_port_is_not_found(make_service: ServiceFactory) -> None:
    service = await make_service()
    unknown = service.app.settings.even_ports()[-1]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.StartRecording(
            pb.StartRecordingRequest(server_rtp_port=unknown, output_uri="file://x.wav")
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert str(unknown) in caught.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as stopped:
        await service.stub.StopRecording(pb.StopRecordingRequest(server_rtp_port=unknown))
    assert stopped.value.code() == grpc.StatusCode.NOT_FOUND
    assert str(unknown) in stopped.value.details()


# ---- ReleasePort ------------------------------------------------------------------


async def test_release_port_stores_a_running_recording_before_answering(
    make_service: ServiceFactory, peer: UdpPeer, tmp_path: Path, spool_entries
) -> None:
    service = await make_service()
    events: list[MediaEvent] = []
    service.app.bus.subscribe(events.append)
    call = await PhoneCall.begin(service.stub, peer)
    await call.start("file://released.flac", channels=2)
    started = time.monotonic()
    await asyncio.sleep(1.0)
    wall_ms = (time.monotonic() - started) * 1000
    reply = await service.stub.ReleasePort(pb.ReleasePortRequest(rtp_port=call.port))
    assert reply.success
    path = tmp_path / "recordings" / "released.flac"
    assert path.is_file()  # already there when ReleasePort answered
    seconds, rate, channels, _ = pyav_info(path)
    assert (rate, channels) == (8000, 2)
    assert abs(seconds * 1000 - wall_ms) <= DURATION_TOLERANCE_MS + 20
    [available] = [e for e in events if e.kind == "recording_available"]
    assert available.call_id == call.call_id
    assert available.data["recording_uri"] == "file://released.flac"
    assert spool_entries() == []
    assert not service.app.recordings.active
    await call.hang_up_phone()


async def test_service_stop_stores_a_running_recording(
    make_service: ServiceFactory, peer: UdpPeer, tmp_path: Path
) -> None:
    service = await make_service()
    call = await PhoneCall.begin(service.stub, peer)
    await call.start("file://at-shutdown.wav")
    await asyncio.sleep(0.6)
    await call.hang_up_phone()
    await service.stop()
    frames, _, _ = wav_info(tmp_path / "recordings" / "at-shutdown.wav")
    assert len(frames) >= 0.5 * 8000


async def test_unwritable_file_target_is_reported_and_stays_spooled(
    make_service: ServiceFactory, peer: UdpPeer, tmp_path: Path, spool_entries
) -> None:
    blocker = tmp_path / "recordings" / "blocked"
    service = await make_service()
    blocker.write_text("a file where a folder is needed")
    call = await PhoneCall.begin(service.stub, peer, talk=False)
    await call.start("file://blocked/x.wav")
    await asyncio.sleep(0.3)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.stop()
    assert caught.value.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "blocked/x.wav" in caught.value.details()
    assert len(spool_entries()) == 1
    # The folder becomes writable: the background retry stores it without a request.
    blocker.unlink()
    path = blocker / "x.wav"
    assert await wait_until(path.is_file, within=15)
    assert await wait_until(lambda: not spool_entries(), within=5)
    frames, _, _ = wav_info(path)
    assert len(frames) >= 0.3 * 8000
