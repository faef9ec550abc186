"""In-band DTMF talk-off: minutes of synthetic speech (espeak-ng) and music (numpy,
sox) hold no key, and keys over speech are still found."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from sentiric_media.analysis.dtmf_detect import (
    detect,
)
from sentiric_media.audio.dtmf import KEYS, amplitude
from tests.support import read_wav, require
from tests.unit.dtmf_signals import (
    RATES,
    SPEECH_WAV,
    TOLERANCE_MS,
    key_signal,
    peak_normalized,
    samples,
    to_pcm,
)

# --- 8. Talk-off: speech and music ----------------------------------------------------------

ENGLISH = (
    "The quick brown fox jumps over the lazy dog, while seven wizards quietly hex the jovial "
    "boxer. Please hold the line; your call is important to us, and an agent will be with you "
    "shortly. Did you know that a telephone keypad has twelve buttons, in four rows of three? "
    "On Tuesday morning Doctor Evelyn Parker flew from Melbourne to Zurich, carrying nine "
    "hundred and forty-one pages of notes about whales, weather, and the history of jazz.",
    "Hmm, well, I suppose so. Yes! No? Maybe tomorrow, around half past four, if the rain "
    "stops. One, two, three, four, five, six, seven, eight, nine, zero, star, pound, hash. "
    "She sells seashells by the seashore, and the shells she sells are surely seashells. "
    "Ahhh, oooh, eeee, mmmm, la la la la la, do re mi fa so la ti do. Whoa, wow, really?",
    "Thank you for calling. Your account balance is three thousand two hundred dollars and "
    "seventeen cents. To hear this message again, press or say one. To speak with a "
    "representative, stay on the line. Our office hours are Monday to Friday, eight in the "
    "morning to six in the evening, except on public holidays. Goodbye, and have a nice day.",
)
GERMAN = (
    "Guten Tag, Sie sind verbunden mit dem Kundendienst. Bitte nennen Sie Ihre Kundennummer "
    "und den Grund Ihres Anrufes. Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter "
    "Deich. Eins, zwei, drei, vier, fünf, sechs, sieben, acht, neun, null. Das Wetter in "
    "München ist heute sonnig, mit Temperaturen um die achtzehn Grad. Ähm, also, ich weiß "
    "nicht genau, vielleicht morgen früh?"
)
FRENCH = (
    "Bonjour et bienvenue. Votre appel est important pour nous, veuillez patienter quelques "
    "instants. Portez ce vieux whisky au juge blond qui fume. Un, deux, trois, quatre, cinq, "
    "six, sept, huit, neuf, zéro. Il fait beau aujourd'hui à Marseille, mais demain la pluie "
    "reviendra sur la Bretagne. Euh, oui, peut-être, je ne sais pas trop."
)
# (voice, words per minute, pitch 0-99, text)
VOICES = (
    ("en", 160, 50, ENGLISH[0] + " " + ENGLISH[1]),
    ("en+f3", 175, 70, ENGLISH[1] + " " + ENGLISH[2]),
    ("en-us+m3", 140, 35, ENGLISH[2] + " " + ENGLISH[0]),
    ("de", 150, 50, GERMAN),
    ("fr+f2", 170, 60, FRENCH),
)
MUSIC_RATE = 8000
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
LOWEST, HIGHEST = 48, 96  # C3 to C7 (MIDI notes), across every DTMF frequency


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.astype("<i2").tobytes())
    return path


def midi_hz(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def scale_notes(rng: np.random.Generator) -> list[int]:
    """A random major or minor scale, as the MIDI notes within LOWEST..HIGHEST."""
    tonic = int(rng.integers(0, 12))
    steps = MAJOR if rng.random() < 0.5 else MINOR
    notes = [tonic + 12 * octave + step for octave in range(3, 9) for step in steps]
    return [note for note in notes if LOWEST <= note <= HIGHEST]


def harmonic_note(
    rng: np.random.Generator, note: int, seconds: float, tilt: float, decay: float
) -> np.ndarray:
    """A note with all its harmonics below 3.9 kHz (amplitude 1/k^tilt), decaying."""
    t = np.arange(int(seconds * MUSIC_RATE)) / MUSIC_RATE
    f0 = midi_hz(note)
    k = np.arange(1, int(3900 // f0) + 1)
    phases = rng.uniform(0.0, 2 * np.pi, len(k))
    tone = (np.sin(2 * np.pi * f0 * np.outer(t, k) + phases) / k**tilt).sum(axis=1)
    return tone * np.exp(-t / decay) * np.minimum(1.0, t / 0.01)


def numpy_music(seed: int, seconds: float) -> np.ndarray:
    """A melody over a triad a bar, bars in random keys, timbres and tempi."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int((seconds + 10) * MUSIC_RATE))
    t = 0.0
    while t < seconds:
        scale = scale_notes(rng)
        tilt = float(rng.choice([1.0, 1.5, 2.0]))  # bright (string) to dull (flute)
        decay = float(rng.choice([0.15, 0.4, 1.0]))  # plucked to sustained
        beat = float(rng.choice([0.2, 0.3, 0.4]))
        for _ in range(4):
            low = int(rng.integers(0, 14))
            start = int(t * MUSIC_RATE)
            for note in scale[low : low + 5 : 2]:
                sound = 0.5 * harmonic_note(rng, note, 4 * beat + 0.3, tilt, 2 * decay)
                out[start : start + len(sound)] += sound
            step, end = int(rng.integers(7, len(scale) - 1)), t + 4 * beat
            while t < end - 1e-9:
                length = beat * float(rng.choice([0.5, 1, 1, 2]))
                step = int(np.clip(step + rng.integers(-3, 4), 0, len(scale) - 1))
                sound = harmonic_note(rng, scale[step], length + 0.2, tilt, decay)  # legato
                begin = int(t * MUSIC_RATE)
                out[begin : begin + len(sound)] += sound
                t += length
    out = out[: int(t * MUSIC_RATE)]
    return to_pcm(out * amplitude(-3.0) / np.abs(out).max())


def sox_music(seed: int, seconds: float, path: Path) -> Path:
    """Plucked notes, triads and thirds or sixths from random scales, one sox chain."""
    rng = np.random.default_rng(seed)
    chain: list[str] = []
    total = 0.0
    while total < seconds:
        scale = scale_notes(rng)
        for _ in range(16):
            length = float(rng.choice([0.125, 0.25, 0.25, 0.5, 0.75]))
            kind, low = rng.random(), int(rng.integers(0, len(scale) - 4))
            if kind < 0.5:
                notes = [scale[low]]
            elif kind < 0.75:
                notes = scale[low : low + 5 : 2]
            else:
                notes = [scale[low], scale[min(low + int(rng.choice([2, 5])), len(scale) - 1)]]
            chain += ["synth", str(length)]
            for note in notes:
                chain += ["pluck", f"{midi_hz(note):.2f}"]
            chain += [*(["remix", "-"] if len(notes) > 1 else []), "gain", "-n", "-3", ":"]
            total += length
    command = ["sox", "-n", "-r", str(MUSIC_RATE), "-b", "16", "-c", "1", str(path)]
    subprocess.run([*command, *chain[:-1]], check=True, capture_output=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def speech_wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """espeak-ng speech in several voices and languages (WAV files at espeak's rate)."""
    require("espeak-ng")
    folder = tmp_path_factory.mktemp("speech")
    wavs = {}
    for voice, speed, pitch, text in VOICES:
        path = folder / f"{voice}.wav"
        command = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path)]
        subprocess.run([*command, text], check=True, capture_output=True, timeout=60)
        wavs[voice] = path
    return wavs


@pytest.fixture(scope="module")
def music_wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """About a minute each of numpy-synthesized and sox-plucked music (8 kHz WAV files)."""
    require("sox")
    folder = tmp_path_factory.mktemp("music")
    return {
        "numpy": write_wav(folder / "numpy.wav", numpy_music(0, 60.0), MUSIC_RATE),
        "sox": sox_music(0, 60.0, folder / "sox.wav"),
    }


def load(path: Path, rate: int) -> np.ndarray:
    pcm, source_rate = read_wav(path)
    return pcm if source_rate == rate else soxr.resample(pcm, source_rate, rate)


def assert_no_key(rate: int, wavs: dict[str, Path], what: str) -> None:
    found, seconds = {}, 0.0
    for name, path in wavs.items():
        pcm = load(path, rate)
        seconds += len(pcm) / rate
        if presses := detect(rate, pcm):
            found[name] = presses
    print(f"talk-off at {rate} Hz: {seconds:.1f} s of {what} checked, {len(found)} with a key")
    assert found == {}


@pytest.mark.parametrize("rate", RATES)
def test_no_key_in_speech(rate: int, speech_wavs: dict[str, Path]) -> None:
    assert_no_key(rate, {**speech_wavs, "speech8k": SPEECH_WAV}, "speech")


@pytest.mark.parametrize("rate", RATES)
def test_no_key_in_music(rate: int, music_wavs: dict[str, Path]) -> None:
    assert_no_key(rate, music_wavs, "music")


# --- 10. A key over speech ------------------------------------------------------------------


@pytest.mark.parametrize("source", ["speech8k", "en", "en+f3", "de"])
@pytest.mark.parametrize("rate", RATES)
def test_key_over_speech_is_detected(
    rate: int, source: str, request: pytest.FixtureRequest
) -> None:
    """Keys at -10 dBm0 over speech peaking at -20 dBFS, one every half second."""
    path = SPEECH_WAV if source == "speech8k" else request.getfixturevalue("speech_wavs")[source]
    speech = peak_normalized(load(path, rate), -20.0)
    rng = np.random.default_rng(12)
    onsets = range(samples(rate, 250), len(speech) - samples(rate, 200), samples(rate, 500))
    keys = "".join(KEYS[i % len(KEYS)] for i in range(len(onsets)))
    for key, onset in zip(keys, onsets, strict=True):
        speech[onset : onset + samples(rate, 100)] += key_signal(key, rate, samples(rate, 100), rng)
    presses = detect(rate, to_pcm(speech))
    assert "".join(p.key for p in presses) == keys
    tolerance = samples(rate, TOLERANCE_MS)
    for press, onset in zip(presses, onsets, strict=True):  # each press lies within its tone
        end = press.position + samples(rate, press.duration_ms)
        assert onset - tolerance <= press.position < end <= onset + samples(rate, 100) + tolerance
