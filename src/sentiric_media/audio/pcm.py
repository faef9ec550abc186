"""Small operations on int16 PCM frames that several parts share."""

from __future__ import annotations

import numpy as np

INT16_MIN = -32768
INT16_MAX = 32767


def mix(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Saturating sum of two equally long int16 frames (never wraps around)."""
    total = first.astype(np.int32) + second
    # minimum/maximum is about twice as fast as np.clip on frame-sized arrays.
    return np.minimum(np.maximum(total, INT16_MIN), INT16_MAX).astype(np.int16)


def pad_to(samples: np.ndarray, length: int) -> np.ndarray:
    """`samples` followed by silence up to `length` samples."""
    if len(samples) >= length:
        return samples
    return np.concatenate((samples, np.zeros(length - len(samples), dtype=np.int16)))
