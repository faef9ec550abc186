"""Speech segments of a finished track, by short-time energy.

Used to inspect recordings (who spoke when), not on the live path: 20 ms
frames above an energy threshold relative to the track's loudest frames are
speech; gaps shorter than `bridge_ms` are bridged and segments shorter than
`min_ms` dropped.
"""

from __future__ import annotations

import numpy as np


def speech_segments(
    samples: np.ndarray,
    rate: int,
    threshold_db: float = -35.0,
    bridge_ms: int = 300,
    min_ms: int = 120,
) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in float samples scaled to ±1."""
    frame = rate // 50
    count = len(samples) // frame
    if count == 0:
        return []
    frames = samples[: count * frame].astype(np.float64).reshape(count, frame)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loudest = np.percentile(level, 99)
    active = level > max(loudest + threshold_db, -60.0)
    segments: list[list[int]] = []
    for index in np.flatnonzero(active):
        if segments and index - segments[-1][1] <= bridge_ms // 20:
            segments[-1][1] = index + 1
        else:
            segments.append([int(index), int(index) + 1])
    return [
        (start * frame / rate, end * frame / rate)
        for start, end in segments
        if (end - start) * 20 >= min_ms
    ]
