"""Helpers for the codec tests (test_codec_*.py): speech at any rate, the ffmpeg CLI, correlation.

The codecs are checked against independent implementations by normalised
cross-correlation with the source speech over a small lag window, since every
codec delays its output (G.722 22 samples, Opus 312 at 48 kHz, G.729 40).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sentiric_media.audio.decode import to_rate
from sentiric_media.media.codecs import Encoder
from tests.support import best_alignment, read_wav

SPEECH_WAV = (
    Path(__file__).resolve().parents[2] / "src" / "sentiric_media" / "data" / "speech8k.wav"
)

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg")


@functools.cache
def speech(rate: int, seconds: float = 3.0) -> np.ndarray:
    """The first `seconds` of the speech sample at `rate`, cut to whole 20 ms packets."""
    source, source_rate = read_wav(SPEECH_WAV)
    pcm = to_rate(source[: int(seconds * source_rate)] / 32768, source_rate, rate)
    return pcm[: len(pcm) // (rate // 50) * (rate // 50)]


def similarity(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> tuple[float, int]:
    """Best normalised correlation of `reference` in `decoded` at a lag 0..max_lag, and the lag."""
    length = min(len(reference), len(decoded)) - max_lag
    return best_alignment(reference[:length], decoded[: length + max_lag])


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised correlation of two aligned signals of the same length."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    return float(x @ y / np.sqrt((x @ x) * (y @ y) + 1e-9))


def ffmpeg(*args: str, stdin: bytes | None = None) -> bytes:
    """Run the ffmpeg command line (quiet, overwrite) and return its stdout."""
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args]
    return subprocess.run(command, input=stdin, capture_output=True, check=True, timeout=30).stdout


def encode_all(pcm: np.ndarray, encoder: Encoder, size: int) -> list[bytes]:
    """`pcm` encoded in packets of `size` samples."""
    return [encoder.encode(pcm[start : start + size]) for start in range(0, len(pcm), size)]


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
