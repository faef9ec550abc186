"""Recording targets: parsing `output_uri` into where the file must end up.

`s3://bucket/key` (the bucket in the URI wins; `s3:///key` takes `BUCKET_NAME`),
`file:///absolute/path`, or a relative `file://path` under the recordings folder
(never outside it). The URI is honoured exactly: no key is rewritten.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from sentiric_media.errors import FailedPrecondition, InvalidArgument


@dataclass(frozen=True, slots=True)
class FileTarget:
    path: Path

    @property
    def uri(self) -> str:
        return f"file://{self.path}"


@dataclass(frozen=True, slots=True)
class S3Target:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


Target = FileTarget | S3Target


def parse_target(
    uri: str, recordings_path: Path, default_bucket: str | None, s3_configured: bool
) -> Target:
    """Validate `uri`; InvalidArgument for a malformed one, FailedPrecondition if S3 is absent."""
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise InvalidArgument(f"output_uri {uri!r} has no scheme (use s3:// or file://)")
    if "\x00" in uri:
        raise InvalidArgument("output_uri contains a NUL character")
    if scheme == "file":
        return FileTarget(_file_path(uri, unquote(rest), recordings_path))
    if scheme == "s3":
        bucket, _, key = rest.partition("/")
        if not key or key.endswith("/"):
            raise InvalidArgument(f"output_uri {uri!r} names no object key")
        if not bucket:
            if not default_bucket:
                raise FailedPrecondition(
                    f"output_uri {uri!r} has no bucket and BUCKET_NAME is not set"
                )
            bucket = default_bucket
        if not s3_configured:
            raise FailedPrecondition(
                f"output_uri {uri!r} needs S3 storage, but none is configured "
                "(BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID, BUCKET_NAME)"
            )
        return S3Target(bucket, key)
    raise InvalidArgument(
        f"unsupported output_uri scheme {scheme!r} in {uri!r} (use s3:// or file://)"
    )


def _file_path(uri: str, rest: str, recordings_path: Path) -> Path:
    if not rest or rest.endswith("/"):
        raise InvalidArgument(f"output_uri {uri!r} names no file")
    if rest.startswith("/"):
        return Path(os.path.normpath("/" + rest.lstrip("/")))
    base = Path(os.path.realpath(recordings_path))
    target = Path(os.path.normpath(base / rest))
    if base not in target.parents:
        raise InvalidArgument(f"output_uri {uri!r} points outside the recordings folder")
    return target
