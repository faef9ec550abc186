"""CPU of the emotion estimate per second of speech, measured on the bundled speech.

Run: `.venv/bin/python -m bench.analysis_cost`. Prints the prosody features'
cost at 8 and 16 kHz, on whole utterances and on the 2 s pieces the analysis
worker cuts (docs/PERFORMANCE.md, "Speech analysis in the worker").
"""

from __future__ import annotations

import os
import time
import wave
from importlib import resources

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the service runs

import numpy as np
import soxr

from sentiric_media.analysis.prosody import features

ROUNDS = 5


def _speech() -> np.ndarray:
    path = resources.files("sentiric_media") / "data" / "speech8k.wav"
    with wave.open(str(path), "rb") as handle:
        return np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").copy()


def _cost(pieces: list[np.ndarray], rate: int) -> float:
    """ms of CPU per second of audio."""
    for piece in pieces:  # warm-up: per-rate tables
        features(piece, rate)
    started = time.process_time()
    for _ in range(ROUNDS):
        for piece in pieces:
            features(piece, rate)
    seconds = sum(len(piece) for piece in pieces) / rate
    return (time.process_time() - started) / ROUNDS / seconds * 1000


def main() -> None:
    speech8k = _speech()
    for rate in (8000, 16000):
        pcm = speech8k if rate == 8000 else soxr.resample(speech8k, 8000, rate)
        pcm = np.asarray(pcm, dtype=np.int16)
        whole = [pcm[i : i + 4 * rate] for i in range(0, len(pcm), 4 * rate)]
        pieces = [pcm[i : i + 2 * rate] for i in range(0, len(pcm), 2 * rate)]
        print(f"prosody features at {rate} Hz: {_cost(whole, rate):.2f} ms CPU per second "
              f"(4 s pieces), {_cost(pieces, rate):.2f} ms (2 s pieces)")  # fmt: skip


if __name__ == "__main__":
    main()
