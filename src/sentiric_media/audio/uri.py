"""Parsing of `audio_uri` values: `file://`, `data:` and `control://`.

This is the one place that decides what a URI means and whether it is allowed.
A `file://` path is resolved under the assets folder and refused when it would
leave it (nothing is read for a refused path). A `data:` URI is checked against
the size limit before its payload is decoded from base64.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from sentiric_media.errors import InvalidArgument, NotFound

CONTROL_COMMANDS = frozenset({"set_target", "enable_echo", "disable_echo"})


@dataclass(frozen=True, slots=True)
class FileAudio:
    """A prompt file under the assets folder."""

    uri: str
    path: Path


@dataclass(frozen=True, slots=True)
class DataAudio:
    """Audio carried inside the URI; `params` holds MIME parameters such as `rate`."""

    uri_prefix: str
    mime: str
    payload: bytes = field(repr=False)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ControlCommand:
    """A `control://` command of current callers (not audio)."""

    name: str


AudioUri = FileAudio | DataAudio | ControlCommand


def parse_audio_uri(uri: str, assets_base: Path, max_data_bytes: int) -> AudioUri:
    """Classify and validate `uri`; raise `InvalidArgument` (or `NotFound`) naming it."""
    if not uri:
        raise InvalidArgument("audio_uri is empty")
    if "\x00" in uri:
        raise InvalidArgument("audio_uri contains a NUL character")
    scheme, sep, rest = uri.partition(":")
    scheme = scheme.lower()
    if not sep:
        raise InvalidArgument(
            f"audio_uri {_short(uri)!r} has no scheme (file://, data: or control://)"
        )
    if scheme == "file":
        return _parse_file(uri, rest, assets_base)
    if scheme == "data":
        return _parse_data(rest, max_data_bytes)
    if scheme == "control":
        command = rest.removeprefix("//").strip("/").lower()
        if command not in CONTROL_COMMANDS:
            raise InvalidArgument(
                f"unknown control command {command!r} in {_short(uri)!r}; "
                f"known: {', '.join(sorted(CONTROL_COMMANDS))}"
            )
        return ControlCommand(command)
    raise InvalidArgument(
        f"unsupported audio_uri scheme {scheme!r} in {_short(uri)!r} "
        "(use file://, data: or control://)"
    )


def _parse_file(uri: str, rest: str, assets_base: Path) -> FileAudio:
    if not rest.startswith("//"):
        raise InvalidArgument(f"malformed file URI {_short(uri)!r}: expected file://path")
    relative = unquote(rest[2:].split("?", 1)[0].split("#", 1)[0]).lstrip("/")
    if not relative:
        raise InvalidArgument(f"file URI {_short(uri)!r} names no file")
    if "\x00" in relative:
        raise InvalidArgument(f"file URI {_short(uri)!r} contains a NUL character")
    base = Path(os.path.realpath(assets_base))
    target = Path(os.path.realpath(base / relative))
    if target != base and base not in target.parents:
        raise InvalidArgument(f"file URI {_short(uri)!r} points outside the assets folder")
    if not target.is_file():
        raise NotFound(f"no prompt file for {_short(uri)!r} under the assets folder")
    return FileAudio(uri, target)


def _parse_data(rest: str, max_data_bytes: int) -> DataAudio:
    header, comma, payload_text = rest.partition(",")
    if not comma:
        raise InvalidArgument(f"malformed data URI 'data:{_short(header)}': no ',' before the data")
    parts = [part.strip() for part in header.split(";")]
    if "base64" not in (part.lower() for part in parts[1:]):
        raise InvalidArgument(f"data URI 'data:{_short(header)},...' is not base64-encoded")
    mime = parts[0].lower() or "application/octet-stream"
    params = {}
    for part in parts[1:]:
        key, eq, value = part.partition("=")
        if eq:
            params[key.strip().lower()] = value.strip()
    prefix = f"data:{_short(header, 60)}"
    text = "".join(unquote(payload_text).split())
    # Base64 is 4 characters per 3 bytes: check the size before decoding anything.
    size = len(text) * 3 // 4 - (len(text) - len(text.rstrip("=")))
    if size > max_data_bytes:
        raise InvalidArgument(
            f"data URI of {size} bytes is over the limit of {max_data_bytes} bytes "
            "(MEDIA_SERVICE_MAX_DATA_URI_BYTES)"
        )
    try:
        payload = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument(f"{prefix}: invalid base64 payload ({exc})") from None
    if not payload:
        raise InvalidArgument(f"{prefix}: empty payload")
    return DataAudio(prefix, mime, payload, params)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
