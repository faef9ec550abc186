"""`sentiric-media inspect FILE [--png OUT]`: who speaks when in a recording.

A stereo recording (channels = 2) has the caller on the left and the bot on the
right, so each party's segments are listed apart; a mono recording holds the
mixed dialog, listed as one track. `--png` draws the waveform with the
segments shaded, which a person checks faster than a table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sentiric_media.analysis.segments import speech_segments
from sentiric_media.audio.decode import decode_channels
from sentiric_media.errors import MediaError


def run_inspect(path: str, png: str | None) -> int:
    try:
        samples, rate = decode_channels(Path(path), path)
    except MediaError as exc:
        print(f"inspect: {exc}")
        return 1
    names = ["caller", "bot"] if samples.shape[1] == 2 else ["mixed"]
    duration = len(samples) / rate
    print(f"{path}: {duration:.3f} s, {rate} Hz, {samples.shape[1]} channel(s)")
    tracks = {}
    for channel, name in enumerate(names):
        segments = speech_segments(samples[:, channel], rate)
        tracks[name] = segments
        print(f"  {name}: {len(segments)} speech segment(s)")
        for start, end in segments:
            print(f"    {start:8.2f} s – {end:8.2f} s  ({end - start:5.2f} s)")
    if png:
        _draw(samples, rate, tracks, png)
        print(f"  waveform written to {png}")
    return 0


def _draw(samples: np.ndarray, rate: int, tracks: dict, out: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("inspect --png needs matplotlib: pip install matplotlib") from None
    colours = {"caller": "tab:blue", "bot": "tab:orange", "mixed": "tab:green"}
    figure, axes = plt.subplots(
        len(tracks), 1, figsize=(14, 2.2 * len(tracks)), sharex=True, squeeze=False
    )
    time = np.arange(len(samples)) / rate
    step = max(1, len(samples) // 200_000)
    for row, (name, segments) in enumerate(tracks.items()):
        axis = axes[row][0]
        axis.plot(time[::step], samples[::step, row], linewidth=0.4, color=colours[name])
        for start, end in segments:
            axis.axvspan(start, end, color=colours[name], alpha=0.2)
        axis.set_ylim(-1, 1)
        axis.set_ylabel(name)
    axes[-1][0].set_xlabel("seconds")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
