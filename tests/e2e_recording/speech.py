"""Test speech: distinct sentences spoken by espeak-ng, as 8 kHz mono 16-bit WAV files.

Every source is a different sentence (and the bot has a different voice from the
caller), so cross-correlation finds each one at one place only. Sources are
trimmed to the speech (so "starts at" means speech starts), padded to whole
20 ms frames, and levelled to the same loudness (RMS ≈ −20 dBFS, peaks below
−6 dBFS), so that in the mixed track neither party drowns the other and the
saturating sum of two of them never clips.
"""

from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

RATE = 8000
FRAME = 160

CALLER_LINES = {
    "caller-A": "Hello, my internet connection is broken.",
    "caller-B": "The router shows a red light since yesterday evening.",
    "caller-C": "Please send a technician tomorrow.",
}
BOT_LINES = {
    "bot-P1": "Welcome to the support line. How can I help?",
    "bot-P2": "Please hold on while I check your account.",
}
CALLER_VOICE = ("en-us", 185)
BOT_VOICE = ("en-gb+f3", 190)


@dataclass(frozen=True)
class Speech:
    name: str
    path: Path
    samples: np.ndarray  # int16 at RATE

    @property
    def seconds(self) -> float:
        return len(self.samples) / RATE


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> None:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.astype("<i2").tobytes())


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as handle:
        data = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
        return data.reshape(-1, handle.getnchannels())[:, 0].copy(), handle.getframerate()


def synthesize(text: str, voice: str, speed: int, path: Path) -> np.ndarray:
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
        check=True,
        capture_output=True,
        timeout=30,
    )
    samples, rate = read_mono(raw)
    raw.unlink()
    audio = soxr.resample(samples.astype(np.float64) / 32768, rate, RATE, quality="VHQ")
    # Trim to the speech: 10 ms frames within 40 dB of the loudest frame.
    frames = audio[: len(audio) // 80 * 80].reshape(-1, 80)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    active = np.flatnonzero(level > level.max() - 40)
    audio = audio[active[0] * 80 : (active[-1] + 1) * 80]
    audio *= 0.1 / np.sqrt(np.mean(audio**2))
    peak = np.max(np.abs(audio))
    if peak > 0.45:
        audio *= 0.45 / peak
    audio = np.concatenate((audio, np.zeros(-len(audio) % FRAME)))
    samples = np.round(audio * 32767).astype(np.int16)
    write_wav(path, samples)
    return samples


def make_speech(folder: Path) -> dict[str, Speech]:
    """Every source of the scenario, by name (caller-A.., bot-P1..)."""
    folder.mkdir(parents=True, exist_ok=True)
    result: dict[str, Speech] = {}
    for lines, (voice, speed) in ((CALLER_LINES, CALLER_VOICE), (BOT_LINES, BOT_VOICE)):
        for name, text in lines.items():
            path = folder / f"{name}.wav"
            result[name] = Speech(name, path, synthesize(text, voice, speed, path))
    return result
