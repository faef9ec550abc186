"""Unit: `output_uri` → where the recording must end up (storage/targets.parse_target)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sentiric_media.errors import FailedPrecondition, InvalidArgument
from sentiric_media.storage.targets import FileTarget, S3Target, parse_target


@pytest.fixture
def recordings(tmp_path: Path) -> Path:
    folder = tmp_path / "recordings"
    folder.mkdir()
    return folder


def parse(uri: str, recordings: Path, bucket: str | None = None, s3: bool = True):
    return parse_target(uri, recordings, bucket, s3)


@pytest.mark.parametrize(
    ("uri", "relative"),
    [
        ("file://call.wav", "call.wav"),
        ("file://2024/05/call-1.flac", "2024/05/call-1.flac"),
        ("file://a/./b/../c.wav", "a/c.wav"),
        ("file://with%20space.wav", "with space.wav"),
        ("FILE://upper.wav", "upper.wav"),
    ],
)
def test_relative_file_uri_lands_under_the_recordings_folder(
    recordings: Path, uri: str, relative: str
) -> None:
    target = parse(uri, recordings)
    assert isinstance(target, FileTarget)
    assert target.path == Path(os.path.realpath(recordings)) / relative
    assert target.uri == f"file://{target.path}"


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("file:///var/rec/x.wav", "/var/rec/x.wav"),
        ("file:///tmp/a/../b.ogg", "/tmp/b.ogg"),
    ],
)
def test_absolute_file_uri_is_taken_as_given(recordings: Path, uri: str, path: str) -> None:
    assert parse(uri, recordings) == FileTarget(Path(path))


@pytest.mark.parametrize(
    "uri",
    [
        "file://../x.wav",
        "file://a/../../x.wav",
        "file://%2e%2e/x.wav",
        "file://..",
        "file://.",
    ],
)
def test_relative_file_uri_escaping_the_folder_is_invalid(recordings: Path, uri: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(uri, recordings)
    assert uri in str(caught.value)


@pytest.mark.parametrize("uri", ["file://", "file://folder/", "file:///"])
def test_file_uri_without_a_file_name_is_invalid(recordings: Path, uri: str) -> None:
    with pytest.raises(InvalidArgument, match="names no file"):
        parse(uri, recordings)


def test_s3_uri_with_bucket_keeps_the_key_exactly(recordings: Path) -> None:
    target = parse("s3://calls/2024/05/06/call-7.wav", recordings, bucket="default")
    assert target == S3Target("calls", "2024/05/06/call-7.wav")
    assert target.uri == "s3://calls/2024/05/06/call-7.wav"


def test_s3_key_is_not_rewritten(recordings: Path) -> None:
    target = parse("s3://b-1/a%20b/Ünï code.wav", recordings)
    assert target == S3Target("b-1", "a%20b/Ünï code.wav")


def test_s3_uri_without_bucket_uses_bucket_name(recordings: Path) -> None:
    assert parse("s3:///recs/call.wav", recordings, bucket="fallback") == S3Target(
        "fallback", "recs/call.wav"
    )


def test_bucket_in_the_uri_wins_over_bucket_name(recordings: Path) -> None:
    assert parse("s3://mine/k.wav", recordings, bucket="fallback").bucket == "mine"


def test_s3_uri_without_bucket_and_no_bucket_name_is_failed_precondition(
    recordings: Path,
) -> None:
    with pytest.raises(FailedPrecondition, match="BUCKET_NAME") as caught:
        parse("s3:///key.wav", recordings, bucket=None, s3=True)
    assert "s3:///key.wav" in str(caught.value)


def test_s3_uri_when_s3_is_not_configured_is_failed_precondition(recordings: Path) -> None:
    with pytest.raises(FailedPrecondition, match="configured") as caught:
        parse("s3://bucket/key.wav", recordings, bucket=None, s3=False)
    assert "s3://bucket/key.wav" in str(caught.value)


@pytest.mark.parametrize("uri", ["s3://bucket", "s3://bucket/", "s3://bucket/folder/", "s3:///"])
def test_s3_uri_without_key_is_invalid(recordings: Path, uri: str) -> None:
    with pytest.raises(InvalidArgument, match="no object key"):
        parse(uri, recordings, bucket="fallback")


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("ftp://x/y", "'ftp'"),
        ("http://host/a.wav", "'http'"),
        ("gs://bucket/a.wav", "'gs'"),
        ("call.wav", "no scheme"),
        ("/abs/call.wav", "no scheme"),
    ],
)
def test_unsupported_or_missing_scheme_is_invalid(recordings: Path, uri: str, shown: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse(uri, recordings)
    assert shown in str(caught.value)
    assert uri in str(caught.value)


def test_nul_character_is_invalid(recordings: Path) -> None:
    with pytest.raises(InvalidArgument, match="NUL"):
        parse("file://a\x00b.wav", recordings)
