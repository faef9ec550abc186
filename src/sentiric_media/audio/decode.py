"""Decoding of whole prompts into mono int16 PCM at one sample rate.

Containers and codecs (WAV at any rate, MP3, OGG/Opus, FLAC, ...) go through
PyAV; raw 16-bit PCM is read directly. Channels are averaged to mono and the
result is resampled once with soxr at very high quality. These functions block
(they run in an executor, never on the media loop).
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import soxr

from sentiric_media.audio.pcm import INT16_MAX, INT16_MIN
from sentiric_media.errors import InvalidArgument

RAW_PCM_TYPES = frozenset({"audio/pcm", "audio/l16", "audio/raw", "audio/x-raw"})
DEFAULT_RAW_RATE = 16000

_SCALE = {
    np.dtype(np.int16): 1 / 32768,
    np.dtype(np.int32): 1 / 2147483648,
    np.dtype(np.uint8): 1 / 128,
}


def decode_raw_pcm(
    payload: bytes, params: dict[str, str], max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """Little-endian s16 PCM with optional `rate` and `channels` MIME parameters."""
    rate = _int_param(params, "rate", DEFAULT_RAW_RATE, 1000, 384000)
    channels = _int_param(params, "channels", 1, 1, 8)
    frame_bytes = 2 * channels
    usable = len(payload) - len(payload) % frame_bytes
    if usable == 0:
        raise InvalidArgument(f"raw PCM payload of {len(payload)} bytes holds no whole sample")
    samples = np.frombuffer(payload[:usable], dtype="<i2").reshape(-1, channels)
    if max_seconds is not None and len(samples) > max_seconds * rate:
        raise InvalidArgument(
            f"raw PCM longer than {max_seconds:g} s (MEDIA_SERVICE_MAX_PROMPT_SECONDS)"
        )
    return samples.astype(np.float32).mean(axis=1) / 32768, rate


def decode_container(
    source: bytes | Path, label: str, max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of a file or in-memory container to mono float32."""
    channels, rate = decode_channels(source, label, max_seconds)
    return (channels.mean(axis=1) if channels.shape[1] > 1 else channels[:, 0]), rate


def decode_channels(
    source: bytes | Path, label: str, max_seconds: float | None = None
) -> tuple[np.ndarray, int]:
    """Decode the first audio stream to float32 samples shaped (frames, channels).

    With `max_seconds`, audio longer than that is refused as soon as decoding
    passes it (a small compressed file can hold hours of audio).
    """
    handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        with av.open(handle, mode="r") as container:
            if not container.streams.audio:
                raise InvalidArgument(f"{label}: no audio stream")
            stream = container.streams.audio[0]
            pieces: list[np.ndarray] = []
            rate, decoded = 0, 0
            for frame in container.decode(stream):
                rate = frame.sample_rate
                pieces.append(_frame_samples(frame))
                decoded += frame.samples
                if max_seconds is not None and decoded > max_seconds * rate:
                    raise InvalidArgument(
                        f"{label}: audio longer than {max_seconds:g} s "
                        "(MEDIA_SERVICE_MAX_PROMPT_SECONDS)"
                    )
    except InvalidArgument:
        raise
    except (av.FFmpegError, ValueError, EOFError) as exc:
        raise InvalidArgument(f"{label}: undecodable audio ({exc})") from None
    if not pieces or rate <= 0:
        raise InvalidArgument(f"{label}: no audio samples decoded")
    return np.concatenate(pieces), rate


def to_rate(mono: np.ndarray, source_rate: int, rate: int) -> np.ndarray:
    """Resample float mono audio once (soxr VHQ) and convert to int16 with saturation."""
    if source_rate != rate and len(mono):
        mono = soxr.resample(mono, source_rate, rate, quality="VHQ")
    scaled = np.rint(mono * 32768.0)
    return np.minimum(np.maximum(scaled, INT16_MIN), INT16_MAX).astype(np.int16)


def _frame_samples(frame: av.AudioFrame) -> np.ndarray:
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    if data.dtype.kind == "f":
        samples = data.astype(np.float32, copy=False)
    else:
        scale = _SCALE.get(data.dtype)
        if scale is None:
            raise InvalidArgument(f"unsupported sample format {frame.format.name}")
        offset = 128 if data.dtype == np.uint8 else 0
        samples = (data.astype(np.float32) - offset) * scale
    return samples.T


def _int_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument(f"MIME parameter {name}={text!r} is not a number") from None
    if not low <= value <= high:
        raise InvalidArgument(f"MIME parameter {name}={value} is outside {low}..{high}")
    return value
