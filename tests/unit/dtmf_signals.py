"""Test signals for the DTMF detector tests: two sines at set frequencies and levels.

Levels in dBm0 through `amplitude()`, phases from a seeded generator, so a
test depends on no luck of phase or alignment.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentiric_media.analysis.dtmf_detect import BLOCK_MS, detect
from sentiric_media.audio.dtmf import amplitude, key_frequencies

RATES = (8000, 16000)
SPEECH_WAV = (
    Path(__file__).resolve().parents[2] / "src" / "sentiric_media" / "data" / "speech8k.wav"
)
TOLERANCE_MS = BLOCK_MS  # positions and durations are reported to the nearest block
GAP_MS = 60  # silence between the tones of a key sequence
# A segment of a test signal: (key or None for silence, length in samples).
Segment = tuple[str | None, int]


# --- Signals --------------------------------------------------------------------------------


def samples(rate: int, ms: float) -> int:
    return round(rate * ms / 1000)


def two_tones(
    rate: int,
    count: int,
    low_hz: float,
    high_hz: float,
    *,
    low_dbm0: float = -10.0,
    high_dbm0: float = -10.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """`count` samples (float) of two sines, each at its own frequency and level."""
    phases = (0.0, 0.0) if rng is None else rng.uniform(0.0, 2 * np.pi, 2)
    t = np.arange(count) / rate
    low = amplitude(low_dbm0) * np.sin(2 * np.pi * low_hz * t + phases[0])
    high = amplitude(high_dbm0) * np.sin(2 * np.pi * high_hz * t + phases[1])
    return low + high


def key_signal(
    key: str,
    rate: int,
    count: int,
    rng: np.random.Generator,
    *,
    low_dbm0: float = -10.0,
    high_dbm0: float = -10.0,
    shift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """`key`'s tones at the given levels, each frequency moved by a relative `shift`."""
    low_hz, high_hz = key_frequencies(key)
    return two_tones(
        rate,
        count,
        low_hz * (1 + shift[0]),
        high_hz * (1 + shift[1]),
        low_dbm0=low_dbm0,
        high_dbm0=high_dbm0,
        rng=rng,
    )


def to_pcm(signal: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(signal), -32768, 32767).astype(np.int16)


def build(
    rate: int, segments: Sequence[Segment], rng: np.random.Generator, **tone: Any
) -> tuple[np.ndarray, list[int]]:
    """The float signal of `segments` and the onset (in samples) of each keyed one."""
    parts: list[np.ndarray] = []
    onsets: list[int] = []
    position = 0
    for key, count in segments:
        if key is None:
            parts.append(np.zeros(count))
        else:
            onsets.append(position)
            parts.append(key_signal(key, rate, count, rng, **tone))
        position += count
    return np.concatenate(parts), onsets


def key_sequence(
    rate: int, keys: str, tone_ms: float, rng: np.random.Generator, lead: int = 0, **tone: Any
) -> tuple[np.ndarray, list[int]]:
    """`keys` as tones of `tone_ms`, `GAP_MS` apart, after `lead` samples of silence."""
    segments: list[Segment] = [(None, lead)]
    for key in keys:
        segments += [(None, samples(rate, GAP_MS)), (key, samples(rate, tone_ms))]
    segments.append((None, samples(rate, 100)))
    return build(rate, segments, rng, **tone)


def found_keys(rate: int, signal: np.ndarray) -> str:
    return "".join(press.key for press in detect(rate, to_pcm(signal)))


def white_noise(rng: np.random.Generator, count: int, dbm0: float) -> np.ndarray:
    """Gaussian noise with the power of a sine at `dbm0`."""
    return rng.normal(0.0, amplitude(dbm0) / np.sqrt(2), count)


def peak_normalized(pcm: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """`pcm` (float) scaled so that its peak is at `peak_dbfs`."""
    signal = pcm.astype(np.float64)
    return signal * (32768 * 10 ** (peak_dbfs / 20) / np.abs(signal).max())
