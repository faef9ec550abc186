"""Putting a finished recording file at its target, durably.

`file://` targets are written atomically: a temporary name in the target's
folder, fsync, rename, fsync of the folder. `s3://` targets go through
aiobotocore (path-style addressing, so MinIO, Ceph and R2 work too), in one PUT
or as a multipart upload for large files. Failures become the contract's
errors: a missing bucket FAILED_PRECONDITION, refused credentials
PERMISSION_DENIED, anything transient UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from sentiric_media.config import Settings
from sentiric_media.errors import FailedPrecondition, MediaError, PermissionDenied, Unavailable
from sentiric_media.storage.targets import FileTarget, S3Target, Target

log = logging.getLogger(__name__)

MULTIPART_THRESHOLD = 16 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "Forbidden"}
_NO_BUCKET = {"NoSuchBucket", "404", "NotFound"}
_BUCKET_CHECK_SECONDS = 60.0
# StartRecording does not wait longer than this for the bucket check.
_BUCKET_CHECK_TIMEOUT = 1.5


def write_file_atomically(source: Path, target: Path) -> None:
    """Blocking: copy `source` to `target` so that `target` is either absent or complete."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
    try:
        with source.open("rb") as reader, temporary.open("wb") as writer:
            shutil.copyfileobj(reader, writer, 1024 * 1024)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    folder = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class RecordingStore:
    """Stores files at file:// and s3:// targets; one S3 client for the process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None
        self._client_context: Any = None
        self._buckets_seen: dict[str, float] = {}

    async def put(self, source: Path, target: Target) -> None:
        if isinstance(target, FileTarget):
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, write_file_atomically, source, target.path
                )
            except PermissionError as exc:
                raise PermissionDenied(f"cannot write {target.uri}: {exc.strerror}") from None
            except OSError as exc:
                raise Unavailable(f"cannot write {target.uri}: {exc.strerror or exc}") from None
            return
        await self._put_s3(source, target)

    async def check_bucket(self, target: S3Target) -> None:
        """Fail early when the bucket is missing or refused.

        Unreachable storage is not an error here: the recording is spooled locally
        and stored later.
        """
        if time.monotonic() - self._buckets_seen.get(target.bucket, -1e9) < _BUCKET_CHECK_SECONDS:
            return
        try:
            client = await self._s3()
            await asyncio.wait_for(client.head_bucket(Bucket=target.bucket), _BUCKET_CHECK_TIMEOUT)
        except MediaError:
            raise
        except Exception as exc:
            error = _map_s3_error(exc, target)
            if isinstance(error, Unavailable):
                log.warning("S3 unreachable while starting a recording (%s); spooling", error)
                return
            raise error from None
        self._buckets_seen[target.bucket] = time.monotonic()

    async def _put_s3(self, source: Path, target: S3Target) -> None:
        try:
            client = await self._s3()
            size = (await asyncio.to_thread(source.stat)).st_size
            if size < MULTIPART_THRESHOLD:
                body = await asyncio.to_thread(source.read_bytes)
                await client.put_object(Bucket=target.bucket, Key=target.key, Body=body)
            else:
                await self._multipart(client, source, target)
        except MediaError:
            raise
        except Exception as exc:
            raise _map_s3_error(exc, target) from None

    async def _multipart(self, client: Any, source: Path, target: S3Target) -> None:
        upload = await client.create_multipart_upload(Bucket=target.bucket, Key=target.key)
        upload_id = upload["UploadId"]
        parts = []
        try:
            with source.open("rb") as reader:
                number = 1
                while chunk := await asyncio.to_thread(reader.read, PART_SIZE):
                    reply = await client.upload_part(
                        Bucket=target.bucket,
                        Key=target.key,
                        PartNumber=number,
                        UploadId=upload_id,
                        Body=chunk,
                    )
                    parts.append({"ETag": reply["ETag"], "PartNumber": number})
                    number += 1
            await client.complete_multipart_upload(
                Bucket=target.bucket,
                Key=target.key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await client.abort_multipart_upload(
                    Bucket=target.bucket, Key=target.key, UploadId=upload_id
                )
            raise

    async def _s3(self) -> Any:
        if self._client is None:
            s = self.settings
            self._client_context = get_session().create_client(
                "s3",
                region_name=s.bucket_region,
                endpoint_url=s.bucket_endpoint_url,
                aws_access_key_id=s.bucket_access_key_id,
                aws_secret_access_key=s.bucket_secret_access_key,
                config=AioConfig(
                    s3={"addressing_style": "path"},
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=3,
                    read_timeout=30,
                ),
            )
            self._client = await self._client_context.__aenter__()
        return self._client

    async def close(self) -> None:
        if self._client_context is not None:
            await self._client_context.__aexit__(None, None, None)
            self._client = self._client_context = None


def _map_s3_error(exc: BaseException, target: S3Target) -> MediaError:
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _NO_BUCKET:
            return FailedPrecondition(f"bucket {target.bucket!r} does not exist ({target.uri})")
        if code in _DENIED or status == 403:
            return PermissionDenied(f"storage refused the credentials for {target.uri} ({code})")
        return Unavailable(f"storage error for {target.uri}: {code or status}")
    if isinstance(exc, BotoCoreError | OSError | asyncio.TimeoutError):
        return Unavailable(f"storage unreachable for {target.uri}: {type(exc).__name__}")
    log.exception("unexpected storage failure for %s", target.uri)
    return Unavailable(f"storage failed for {target.uri}: {type(exc).__name__}")
