"""Encoding a spooled timeline into the recording file that was asked for.

The spool holds interleaved 16-bit (caller, bot) frames at the session rate.
Encoding streams it in blocks: both legs are summed with saturation for mono
(or kept apart for stereo: caller left, bot right), resampled once to the
requested rate by one stateful resampler, and written as WAV (PCM16) or through
PyAV as FLAC, OGG/Opus or MP3. Blocking: runs in an executor.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import soxr

from sentiric_media.audio.pcm import INT16_MAX, INT16_MIN

FORMATS = {"wav": "wav", "flac": "flac", "ogg": "ogg", "mp3": "mp3"}
RATES = (8000, 16000, 24000, 48000)
_CODECS = {"flac": "flac", "ogg": "libopus", "mp3": "libmp3lame"}
_BLOCK_SECONDS = 10


def read_blocks(raw_path: Path, source_rate: int, channels: int) -> Iterator[np.ndarray]:
    """The spooled legs as (n, channels) int16 blocks: mixed mono or caller/bot stereo."""
    frame_bytes = 4
    block_bytes = source_rate * _BLOCK_SECONDS * frame_bytes
    with raw_path.open("rb") as handle:
        while chunk := handle.read(block_bytes):
            usable = len(chunk) - len(chunk) % frame_bytes
            legs = np.frombuffer(chunk[:usable], dtype="<i2").reshape(-1, 2)
            if channels == 2:
                yield legs
            else:
                mixed = legs[:, 0].astype(np.int32) + legs[:, 1]
                mixed = np.minimum(np.maximum(mixed, INT16_MIN), INT16_MAX).astype(np.int16)
                yield mixed.reshape(-1, 1)


def resampled(blocks: Iterator[np.ndarray], source_rate: int, rate: int, channels: int):
    """Resample a stream of blocks once, with state carried across blocks."""
    if source_rate == rate:
        yield from blocks
        return
    stream = soxr.ResampleStream(source_rate, rate, channels, dtype="int16", quality="HQ")
    for block in blocks:
        out = stream.resample_chunk(block)
        if len(out):
            yield out.reshape(-1, channels)
    tail = stream.resample_chunk(np.zeros((0, channels), dtype=np.int16), last=True)
    if len(tail):
        yield tail.reshape(-1, channels)


def encode_recording(
    raw_path: Path, source_rate: int, out_path: Path, fmt: str, rate: int, channels: int
) -> int:
    """Write the recording; returns its length in samples at `rate`."""
    blocks = resampled(read_blocks(raw_path, source_rate, channels), source_rate, rate, channels)
    if fmt == "wav":
        return _write_wav(blocks, out_path, rate, channels)
    return _write_with_pyav(blocks, out_path, fmt, rate, channels)


def _write_wav(blocks: Iterator[np.ndarray], out_path: Path, rate: int, channels: int) -> int:
    total = 0
    with wave.open(str(out_path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        for block in blocks:
            handle.writeframes(block.astype("<i2", copy=False).tobytes())
            total += len(block)
    return total


def _write_with_pyav(
    blocks: Iterator[np.ndarray], out_path: Path, fmt: str, rate: int, channels: int
) -> int:
    layout = "stereo" if channels == 2 else "mono"
    total = 0
    with av.open(str(out_path), mode="w", format=FORMATS[fmt]) as container:
        stream = container.add_stream(_CODECS[fmt], rate=rate, layout=layout)
        planar = fmt == "mp3"
        for block in blocks:
            if not len(block):
                continue
            data = np.ascontiguousarray(block.T) if planar else block.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(
                data, format="s16p" if planar else "s16", layout=layout
            )
            frame.sample_rate = rate
            frame.pts = total
            total += len(block)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return total
