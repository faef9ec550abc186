"""`audio_uri` parsing (audio/uri.py): file://, data: and control:// URIs, and what is refused."""

from __future__ import annotations

import base64
import builtins
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentiric_media.audio.uri import ControlCommand, DataAudio, FileAudio, parse_audio_uri
from sentiric_media.errors import InvalidArgument, NotFound

LIMIT = 4096
WAV_BYTES = b"RIFF\x24\x00\x00\x00WAVEfmt "


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    base = tmp_path / "assets"
    (base / "audio" / "tr").mkdir(parents=True)
    (base / "audio" / "tr" / "welcome.wav").write_bytes(WAV_BYTES)
    (base / "audio" / "with space.wav").write_bytes(WAV_BYTES)
    (base / "top.wav").write_bytes(WAV_BYTES)
    (tmp_path / "secret.wav").write_bytes(b"SECRET")
    (tmp_path / "assets-evil").mkdir()
    (tmp_path / "assets-evil" / "x.wav").write_bytes(b"SECRET")
    return base


@pytest.fixture
def no_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail the test if anything is opened while it is active."""
    opened: list[str] = []

    def refuse(file: object, *args: object, **kwargs: object) -> object:
        opened.append(str(file))
        raise AssertionError(f"{file} was opened")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    monkeypatch.setattr(os, "open", refuse)
    yield opened
    assert opened == []


def parse(uri: str, base: Path) -> object:
    return parse_audio_uri(uri, base, LIMIT)


# --- file:// -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "file://audio/tr/welcome.wav",
        "file:///audio/tr/welcome.wav",
        "file:////audio/tr/welcome.wav",
        "FILE://audio/tr/welcome.wav",
        "file://audio/tr/./welcome.wav",
        "file://audio/tr/../tr/welcome.wav",
        "file://audio/%74%72/welcome.wav",
        "file://audio/tr/welcome.wav?version=2",
        "file://audio/tr/welcome.wav#start",
    ],
)
def test_file_uri_resolves_under_the_assets_folder(uri: str, assets: Path) -> None:
    result = parse(uri, assets)
    assert isinstance(result, FileAudio)
    assert result.path == (assets / "audio" / "tr" / "welcome.wav").resolve()
    assert result.uri == uri


def test_file_uri_with_percent_encoded_space(assets: Path) -> None:
    result = parse("file://audio/with%20space.wav", assets)
    assert isinstance(result, FileAudio)
    assert result.path.name == "with space.wav"


def test_file_uri_with_relative_assets_base(assets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(assets.parent)
    result = parse("file://top.wav", Path("assets"))
    assert isinstance(result, FileAudio)
    assert result.path == (assets / "top.wav").resolve()


@pytest.mark.parametrize(
    "uri",
    [
        "file://../secret.wav",
        "file:///../secret.wav",
        "file://audio/../../secret.wav",
        "file://audio/tr/../../../secret.wav",
        "file://%2e%2e/secret.wav",
        "file://%2E%2E/secret.wav",
        "file://audio/%2e%2e/%2e%2e/secret.wav",
        "file://..%2fsecret.wav",
        "file://../assets-evil/x.wav",
        "file://../../../../../../etc/passwd",
    ],
)
def test_traversal_is_refused_and_nothing_is_read(
    uri: str, assets: Path, no_reads: list[str]
) -> None:
    with pytest.raises(InvalidArgument, match="outside the assets folder"):
        parse(uri, assets)


def test_absolute_path_is_taken_under_the_assets_folder(assets: Path) -> None:
    # file:///etc/passwd means <assets>/etc/passwd, never the system file.
    with pytest.raises(NotFound):
        parse("file:///etc/passwd", assets)
    (assets / "etc").mkdir()
    (assets / "etc" / "passwd").write_bytes(WAV_BYTES)
    result = parse("file:///etc/passwd", assets)
    assert isinstance(result, FileAudio)
    assert result.path == (assets / "etc" / "passwd").resolve()


def test_symlink_pointing_outside_is_refused(assets: Path, no_reads: list[str]) -> None:
    (assets / "audio" / "link.wav").symlink_to(assets.parent / "secret.wav")
    with pytest.raises(InvalidArgument, match="outside the assets folder"):
        parse("file://audio/link.wav", assets)


def test_symlinked_directory_pointing_outside_is_refused(assets: Path, no_reads: list[str]) -> None:
    (assets / "escape").symlink_to(assets.parent)
    with pytest.raises(InvalidArgument, match="outside the assets folder"):
        parse("file://escape/secret.wav", assets)


def test_symlink_inside_the_assets_folder_is_fine(assets: Path) -> None:
    (assets / "alias.wav").symlink_to(assets / "audio" / "tr" / "welcome.wav")
    result = parse("file://alias.wav", assets)
    assert isinstance(result, FileAudio)
    assert result.path == (assets / "audio" / "tr" / "welcome.wav").resolve()


def test_assets_folder_that_is_itself_a_symlink(assets: Path, tmp_path: Path) -> None:
    linked = tmp_path / "linked-assets"
    linked.symlink_to(assets)
    result = parse("file://audio/tr/welcome.wav", linked)
    assert isinstance(result, FileAudio)
    assert result.path.read_bytes() == WAV_BYTES


@pytest.mark.parametrize("uri", ["file://audio/tr/missing.wav", "file://audio/tr", "file://."])
def test_missing_file_or_directory_is_not_found(uri: str, assets: Path) -> None:
    with pytest.raises(NotFound) as info:
        parse(uri, assets)
    assert uri in str(info.value)
    assert info.value.status == "NOT_FOUND"


@pytest.mark.parametrize("uri", ["file://", "file:///", "file://?x", "file:", "file:/top.wav"])
def test_file_uri_without_a_path_is_invalid(uri: str, assets: Path) -> None:
    with pytest.raises(InvalidArgument):
        parse(uri, assets)


@pytest.mark.parametrize(
    "uri", ["file://audio/tr/welcome.wav\x00.txt", "file://audio/tr/welcome.wav%00.txt"]
)
def test_nul_characters_are_refused(uri: str, assets: Path, no_reads: list[str]) -> None:
    with pytest.raises(InvalidArgument, match="NUL"):
        parse(uri, assets)


def test_nul_character_in_any_uri_is_refused(assets: Path) -> None:
    with pytest.raises(InvalidArgument, match="NUL"):
        parse("control://set_target\x00", assets)


# --- data: ---------------------------------------------------------------------------------------


def data_uri(payload: bytes, header: str = "audio/wav;base64") -> str:
    return f"data:{header}," + base64.b64encode(payload).decode()


def test_data_uri_payload_is_decoded(assets: Path) -> None:
    payload = bytes(range(256)) * 4
    result = parse(data_uri(payload), assets)
    assert isinstance(result, DataAudio)
    assert result.payload == payload
    assert result.mime == "audio/wav"
    assert result.params == {}


def test_data_uri_mime_parameters(assets: Path) -> None:
    result = parse(data_uri(b"\x01\x00" * 8, "audio/L16;rate=8000;channels=1;base64"), assets)
    assert isinstance(result, DataAudio)
    assert result.mime == "audio/l16"
    assert result.params == {"rate": "8000", "channels": "1"}


def test_data_uri_parameters_are_trimmed_and_keys_lowercased(assets: Path) -> None:
    result = parse(data_uri(b"abc", "Audio/PCM; Rate = 16000 ;BASE64"), assets)
    assert isinstance(result, DataAudio)
    assert result.mime == "audio/pcm"
    assert result.params == {"rate": "16000"}


def test_data_uri_without_mime(assets: Path) -> None:
    result = parse(data_uri(b"abc", ";base64"), assets)
    assert isinstance(result, DataAudio)
    assert result.mime == "application/octet-stream"


def test_percent_encoded_base64_is_accepted(assets: Path) -> None:
    payload = b"\xfb\xff\xfe"  # base64 "+//+" needs '+' and '/'
    text = base64.b64encode(payload).decode().replace("+", "%2B").replace("/", "%2F")
    result = parse("data:audio/wav;base64," + text, assets)
    assert isinstance(result, DataAudio)
    assert result.payload == payload


def test_data_uri_must_be_base64(assets: Path) -> None:
    with pytest.raises(InvalidArgument, match="base64"):
        parse("data:audio/wav,RIFF....", assets)


def test_data_uri_needs_a_comma(assets: Path) -> None:
    with pytest.raises(InvalidArgument, match="no ','"):
        parse("data:audio/wav;base64", assets)


@pytest.mark.parametrize("payload", ["", "====", "  "])
def test_empty_data_uri_payload_is_invalid(payload: str, assets: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"empty payload|invalid base64"):
        parse("data:audio/wav;base64," + payload, assets)


@pytest.mark.parametrize("payload", ["abc", "A===", "QUJD=A", "QQ=Q"])
def test_invalid_base64_is_invalid_argument(payload: str, assets: Path) -> None:
    with pytest.raises(InvalidArgument, match="invalid base64"):
        parse("data:audio/wav;base64," + payload, assets)


@pytest.mark.parametrize("payload", ["AAAA!!!!", "QUJD*REVG", "UklG$Rg=="])
def test_characters_outside_the_base64_alphabet_are_refused(payload: str, assets: Path) -> None:
    with pytest.raises(InvalidArgument):
        parse("data:audio/wav;base64," + payload, assets)


def test_data_uri_over_the_limit_names_the_limit(assets: Path) -> None:
    uri = data_uri(bytes(LIMIT * 2))
    with pytest.raises(InvalidArgument) as info:
        parse(uri, assets)
    message = str(info.value)
    assert str(LIMIT) in message
    assert "limit" in message
    assert uri[60:] not in message  # the payload itself is not echoed back


def test_size_is_checked_before_decoding(assets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("decoded an oversized payload")

    monkeypatch.setattr(base64, "b64decode", explode)
    with pytest.raises(InvalidArgument, match="limit"):
        parse(data_uri(bytes(LIMIT + 300)), assets)


def test_payload_just_under_the_limit_is_accepted(assets: Path) -> None:
    payload = bytes(LIMIT - 3)
    result = parse(data_uri(payload), assets)
    assert isinstance(result, DataAudio)
    assert len(result.payload) == LIMIT - 3


def test_payload_of_exactly_the_limit_is_accepted(assets: Path) -> None:
    assert LIMIT % 3 == 1  # so the base64 text ends in '=='
    result = parse(data_uri(bytes(LIMIT)), assets)
    assert isinstance(result, DataAudio)
    assert len(result.payload) == LIMIT


# --- control:// ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "command"),
    [
        ("control://set_target", "set_target"),
        ("control://enable_echo", "enable_echo"),
        ("control://disable_echo", "disable_echo"),
        ("CONTROL://Enable_Echo", "enable_echo"),
        ("control://disable_echo/", "disable_echo"),
    ],
)
def test_control_commands(uri: str, command: str, assets: Path) -> None:
    assert parse(uri, assets) == ControlCommand(command)


@pytest.mark.parametrize("command", ["reboot", "play", "set_target_now", ""])
def test_unknown_control_command_is_named(command: str, assets: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse(f"control://{command}", assets)
    assert f"{command!r}" in str(info.value)
    assert "set_target" in str(info.value)  # the known commands are listed


# --- other schemes and garbage -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        ("http://example.com/a.wav", "http"),
        ("https://example.com/a.wav", "https"),
        ("ftp:", "ftp"),
        ("s3://bucket/key.wav", "s3"),
        ("Gopher://x", "gopher"),
        ("127.0.0.1:5000", "127.0.0.1"),
    ],
)
def test_unknown_scheme_is_named(uri: str, scheme: str, assets: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse(uri, assets)
    assert f"scheme {scheme!r}" in str(info.value)
    assert info.value.status == "INVALID_ARGUMENT"


def test_empty_uri_is_invalid(assets: Path) -> None:
    with pytest.raises(InvalidArgument, match="empty"):
        parse("", assets)


@pytest.mark.parametrize("uri", ["audio/tr/welcome.wav", "/etc/passwd", "welcome"])
def test_uri_without_scheme_is_invalid(uri: str, assets: Path, no_reads: list[str]) -> None:
    with pytest.raises(InvalidArgument, match="no scheme"):
        parse(uri, assets)


def test_long_uri_is_shortened_in_messages(assets: Path) -> None:
    uri = "http://example.com/" + "a" * 5000
    with pytest.raises(InvalidArgument) as info:
        parse(uri, assets)
    assert len(str(info.value)) < 300
