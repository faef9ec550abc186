"""Recordings to S3: moto's real HTTP server on a loopback port, the service's real client.

Targets land exactly at their key, a missing bucket is FAILED_PRECONDITION,
refused credentials PERMISSION_DENIED, an endpoint that is down UNAVAILABLE with
the recording kept in the spool and stored by the background retry once the
endpoint is back (no second request), and large files go up in parts.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import time
import wave
from pathlib import Path

import grpc
import numpy as np
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from moto.core.authorization import enable_iam_authentication

from sentiric_media.config import load_settings
from sentiric_media.errors import FailedPrecondition, PermissionDenied, Unavailable
from sentiric_media.events.bus import MediaEvent
from sentiric_media.storage import store as store_module
from sentiric_media.storage.store import RecordingStore, _map_s3_error
from sentiric_media.storage.targets import S3Target
from tests.recording.conftest import (
    PhoneCall,
    S3Endpoint,
    ServiceFactory,
    wait_until,
)
from tests.support import UdpPeer

pytestmark = pytest.mark.integration


def wav_of(data: bytes) -> tuple[np.ndarray, int, int]:
    with wave.open(io.BytesIO(data), "rb") as handle:
        channels = handle.getnchannels()
        frames = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
        return frames.reshape(-1, channels), handle.getframerate(), channels


def available_events(events: list[MediaEvent]) -> list[MediaEvent]:
    return [e for e in events if e.kind == "recording_available"]


@pytest.mark.parametrize(
    "uri_form",
    [
        "s3://{bucket}/calls/2024/{call}.wav",
        "s3:///in/{call}.wav",
        "s3://{bucket}/odd key/ç+%20{call}.wav",
    ],
)
async def test_s3_target_lands_exactly_at_its_key_as_a_valid_wav(
    make_service: ServiceFactory,
    peer: UdpPeer,
    s3: S3Endpoint,
    spool_entries,
    uri_form: str,
) -> None:
    bucket = s3.new_bucket()
    service = await make_service(**s3.settings(bucket_name=bucket))
    call = await PhoneCall.begin(service.stub, peer)
    uri = uri_form.format(bucket=bucket, call=call.call_id)
    reply, wall_ms = await call.record(uri, 1.0, sample_rate=16000, channels=2)
    assert reply.recording_uri == uri
    assert abs(reply.duration_ms - wall_ms) <= 60
    key = uri.split("/", 3)[3]
    assert s3.keys(bucket) == [key]
    frames, rate, channels = wav_of(s3.get(bucket, key))
    assert (rate, channels) == (16000, 2)
    assert abs(len(frames) / 16 - reply.duration_ms) <= 5
    assert np.abs(frames).max() > 1000
    assert spool_entries() == []
    await call.hang_up_phone()


async def test_bucket_in_the_uri_wins_over_bucket_name(
    make_service: ServiceFactory, peer: UdpPeer, s3: S3Endpoint
) -> None:
    default, chosen = s3.new_bucket(), s3.new_bucket()
    service = await make_service(**s3.settings(bucket_name=default))
    call = await PhoneCall.begin(service.stub, peer, talk=False)
    reply, _ = await call.record(f"s3://{chosen}/x/y.wav", 0.3)
    assert reply.recording_uri == f"s3://{chosen}/x/y.wav"
    assert s3.keys(chosen) == ["x/y.wav"]
    assert s3.keys(default) == []


async def test_missing_bucket_is_failed_precondition(
    make_service: ServiceFactory, peer: UdpPeer, s3: S3Endpoint
) -> None:
    service = await make_service(**s3.settings(bucket_name=None))
    call = await PhoneCall.begin(service.stub, peer, talk=False)
    uri = "s3://no-such-bucket-here/k.wav"
    try:
        await call.start(uri)
    except grpc.aio.AioRpcError as exc:
        failure = exc  # reported early, as the issue allows
    else:
        await asyncio.sleep(0.2)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.stop()
        failure = caught.value
    assert failure.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no-such-bucket-here" in failure.details()


async def test_missing_default_bucket_is_failed_precondition(
    make_service: ServiceFactory, peer: UdpPeer, s3: S3Endpoint
) -> None:
    service = await make_service(**s3.settings(bucket_name="absent-default-bucket"))
    call = await PhoneCall.begin(service.stub, peer, talk=False)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.start("s3:///k.wav")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "absent-default-bucket" in caught.value.details()


@pytest.mark.slow
async def test_endpoint_down_at_stop_is_unavailable_then_stored_by_the_background_retry(
    make_service: ServiceFactory,
    peer: UdpPeer,
    s3: S3Endpoint,
    spool_entries,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket = s3.new_bucket()
    service = await make_service(**s3.settings(bucket_name=bucket))
    events: list[MediaEvent] = []
    service.app.bus.subscribe(events.append)
    call = await PhoneCall.begin(service.stub, peer)
    uri = f"s3://{bucket}/outage/{call.call_id}.wav"
    await call.start(uri)
    await asyncio.sleep(0.8)
    s3.stop()
    asked = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.stop()
    answered_after = time.monotonic() - asked
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert uri in caught.value.details()
    assert answered_after < 20
    [entry] = spool_entries()
    assert (entry / "audio.s16").stat().st_size > 0
    assert available_events(events) == []
    await call.hang_up_phone()

    # moto keeps its state in this process: the bucket survives a restart of the server.
    s3.start()
    assert s3.bucket_exists(bucket)
    key = uri.split("/", 3)[3]
    with caplog.at_level(logging.INFO, logger="sentiric_media.events.broker"):
        assert await wait_until(lambda: key in s3.keys(bucket), within=30, step=0.25)
        assert await wait_until(lambda: available_events(events), within=5)
    frames, rate, _ = wav_of(s3.get(bucket, key))
    assert rate == 8000
    assert len(frames) >= 0.75 * 8000
    [available] = available_events(events)
    assert available.call_id == call.call_id
    assert available.data["recording_uri"] == uri
    assert f'"recordingUri": "{uri}"' in caplog.text  # handed to the broker publisher
    assert await wait_until(lambda: not spool_entries(), within=5)


@pytest.mark.slow
async def test_endpoint_down_at_start_still_records_and_stores_when_it_is_back(
    make_service: ServiceFactory, peer: UdpPeer, s3: S3Endpoint
) -> None:
    bucket = s3.new_bucket()
    service = await make_service(**s3.settings(bucket_name=bucket))
    call = await PhoneCall.begin(service.stub, peer, talk=False)
    s3.stop()
    asked = time.monotonic()
    await call.start(f"s3://{bucket}/late.wav")  # spooled: storage is only needed at the end
    assert time.monotonic() - asked < 20
    s3.start()
    await asyncio.sleep(0.3)
    reply = await call.stop()
    assert reply.recording_uri == f"s3://{bucket}/late.wav"
    assert s3.keys(bucket) == ["late.wav"]


async def test_refused_credentials_at_start_are_permission_denied(
    make_service: ServiceFactory, peer: UdpPeer, s3: S3Endpoint, spool_entries
) -> None:
    bucket = s3.new_bucket()
    service = await make_service(**s3.settings(bucket_name=bucket))
    call = await PhoneCall.begin(service.stub, peer, talk=False)
    with enable_iam_authentication(), pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.start(f"s3://{bucket}/denied.wav")
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"s3://{bucket}/denied.wav" in caught.value.details()
    assert spool_entries() == []


async def test_refused_credentials_at_stop_are_permission_denied_and_kept_for_retry(
    make_service: ServiceFactory, peer: UdpPeer, s3: S3Endpoint, spool_entries
) -> None:
    bucket = s3.new_bucket()
    service = await make_service(**s3.settings(bucket_name=bucket))
    call = await PhoneCall.begin(service.stub, peer, talk=False)
    await call.start(f"s3://{bucket}/denied-later.wav")
    await asyncio.sleep(0.3)
    with enable_iam_authentication():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.stop()
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "InvalidAccessKeyId" in caught.value.details()
        assert len(spool_entries()) == 1
    # Credentials accepted again (e.g. the key was fixed): the retry stores it.
    assert await wait_until(lambda: s3.keys(bucket) == ["denied-later.wav"], within=15, step=0.25)
    assert await wait_until(lambda: not spool_entries(), within=5)
    # A new recording on the same session may follow the failed stop.
    reply, _ = await call.record(f"s3://{bucket}/next.wav", 0.2)
    assert reply.success


async def test_large_recording_goes_up_in_parts_and_arrives_intact(
    make_service: ServiceFactory,
    peer: UdpPeer,
    s3: S3Endpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    part_size = 64 * 1024
    monkeypatch.setattr(store_module, "MULTIPART_THRESHOLD", 128 * 1024)
    monkeypatch.setattr(store_module, "PART_SIZE", part_size)
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1024)
    bucket = s3.new_bucket()
    service = await make_service(**s3.settings(bucket_name=bucket))
    call = await PhoneCall.begin(service.stub, peer)
    reply, _ = await call.record(f"s3://{bucket}/big.wav", 1.5, sample_rate=48000, channels=2)
    data = s3.get(bucket, "big.wav")
    assert len(data) > 128 * 1024
    frames, rate, channels = wav_of(data)
    assert (rate, channels) == (48000, 2)
    assert abs(len(frames) / 48 - reply.duration_ms) <= 5
    etag = s3.client.head_object(Bucket=bucket, Key="big.wav")["ETag"].strip('"')
    assert etag.endswith(f"-{math.ceil(len(data) / part_size)}")  # a multipart upload
    uploads = s3.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert uploads == []
    await call.hang_up_phone()


async def test_store_uploads_a_20_mb_file_in_8_mb_parts(tmp_path: Path, s3: S3Endpoint) -> None:
    """The real thresholds (16 MB, 8 MB parts), straight through RecordingStore."""
    bucket = s3.new_bucket()
    source = tmp_path / "big.bin"
    payload = np.random.default_rng(5).integers(0, 256, 20 * 1024 * 1024, np.uint8).tobytes()
    source.write_bytes(payload)
    store = RecordingStore(load_settings(**s3.settings(bucket_name=bucket)))
    try:
        await store.put(source, S3Target(bucket, "a/big.bin"))
    finally:
        await store.close()
    assert s3.get(bucket, "a/big.bin") == payload
    etag = s3.client.head_object(Bucket=bucket, Key="a/big.bin")["ETag"].strip('"')
    assert etag.endswith("-3")


async def test_failed_multipart_upload_is_aborted(
    tmp_path: Path, s3: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MULTIPART_THRESHOLD", 1024)
    monkeypatch.setattr(store_module, "PART_SIZE", 1024)
    # moto's real minimum part size (5 MB): completing 1 KB parts is refused.
    bucket = s3.new_bucket()
    source = tmp_path / "parts.bin"
    source.write_bytes(b"x" * 5000)
    store = RecordingStore(load_settings(**s3.settings(bucket_name=bucket)))
    try:
        with pytest.raises(Unavailable, match="EntityTooSmall"):
            await store.put(source, S3Target(bucket, "parts.bin"))
    finally:
        await store.close()
    assert s3.client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3.keys(bucket) == []


# ---- error mapping (unit) ----------------------------------------------------------------


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


TARGET = S3Target("bkt", "a/b.wav")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (client_error("NoSuchBucket", 404), FailedPrecondition),
        (client_error("404", 404), FailedPrecondition),
        (client_error("AccessDenied", 403), PermissionDenied),
        (client_error("InvalidAccessKeyId", 403), PermissionDenied),
        (client_error("SignatureDoesNotMatch", 403), PermissionDenied),
        (client_error("403", 403), PermissionDenied),
        (client_error("SomethingNew", 403), PermissionDenied),
        (client_error("InternalError", 500), Unavailable),
        (client_error("SlowDown", 503), Unavailable),
        (client_error("ServiceUnavailable", 503), Unavailable),
        (EndpointConnectionError(endpoint_url="http://x"), Unavailable),
        (ConnectTimeoutError(endpoint_url="http://x"), Unavailable),
        (ReadTimeoutError(endpoint_url="http://x"), Unavailable),
        (ConnectionRefusedError(111, "refused"), Unavailable),
        (TimeoutError(), Unavailable),
        (RuntimeError("surprise"), Unavailable),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, ClientError) else None,
)
def test_s3_errors_map_to_the_contract_statuses(error: BaseException, expected: type) -> None:
    mapped = _map_s3_error(error, TARGET)
    assert type(mapped) is expected
    assert "s3://bkt/a/b.wav" in str(mapped) or "'bkt'" in str(mapped)
