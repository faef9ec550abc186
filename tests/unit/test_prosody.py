"""Prosody features and vocal arousal: F0 of synthetic tones, silence, and espeak-ng speech
spoken calm and agitated, through G.711 at 8 kHz and at 16 kHz."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soxr

from sentiric_media.analysis.prosody import ArousalEstimator, Emotion, Label, features
from sentiric_media.media.codecs.g711 import ULAW
from tests.support import read_wav, require

NEUTRAL = (
    "Hello, I am calling about my order from last week. It still has not arrived, and "
    "nobody answered my emails.",
    "Good morning. I would like to check the balance of my account, and change the address "
    "on file.",
)
TEST_SENTENCE = (
    "Could you tell me when the technician is coming? I have been waiting at home since "
    "eight o'clock."
)
AGITATED = ("-a", "180", "-s", "210", "-p", "80")  # loud, fast, high
CALM = ("-a", "50", "-s", "120", "-p", "25")  # quiet, slow, low
VOICES = ("en-gb", "en-us", "en-us+m3", "en+f3", "en-us+f2")  # (plain "en" is en-gb)
Speech = tuple[np.ndarray, int]


def synthesize(folder: Path, voice: str, text: str, options: tuple[str, ...] = ()) -> Speech:
    path = folder / f"{voice}-{len(list(folder.iterdir()))}.wav"
    command = ["espeak-ng", "-v", voice, *options, "-w", str(path), text]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    return read_wav(path)


def line(speech: Speech, rate: int) -> np.ndarray:
    """espeak's 22050 Hz speech as a call delivers it: G.711 μ-law at 8 kHz, or 16 kHz PCM."""
    pcm, source_rate = speech
    resampled = soxr.resample(pcm, source_rate, rate)
    return ULAW.decode(ULAW.encode(resampled)) if rate == 8000 else resampled


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Speech]]:
    """Per voice: two neutral sentences, and one sentence spoken agitated and calm."""
    require("espeak-ng")
    folder = tmp_path_factory.mktemp("prosody")
    return {
        voice: {
            "neutral0": synthesize(folder, voice, NEUTRAL[0]),
            "neutral1": synthesize(folder, voice, NEUTRAL[1]),
            "agitated": synthesize(folder, voice, TEST_SENTENCE, AGITATED),
            "calm": synthesize(folder, voice, TEST_SENTENCE, CALM),
        }
        for voice in VOICES
    }


def tone(rate: int, f0: float, seconds: float, harmonics: bool) -> np.ndarray:
    """A sine at f0, or a pulse train's harmonics inside 300–3400 Hz (fundamental missing
    below 300 Hz, as on a telephone line), at -10 dBFS peak."""
    t = np.arange(int(rate * seconds)) / rate
    k = np.arange(1, int(3400 // f0) + 1) if harmonics else np.array([1])
    if harmonics:
        k = k[k * f0 >= 300]
    signal = np.cos(2 * np.pi * f0 * np.outer(t, k)).sum(axis=1)
    return np.rint(signal / np.abs(signal).max() * 0.316 * 32767).astype(np.int16)


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("harmonics", [False, True], ids=["sine", "pulses"])
def test_f0_of_synthetic_tones(rate: int, harmonics: bool) -> None:
    for f0 in (65.0, 90.0, 123.4, 180.0, 247.0, 310.0, 390.0):
        if harmonics and f0 * 2 > 3400:
            continue
        pcm = tone(rate, f0, 1.0, harmonics)
        if rate == 8000:
            pcm = ULAW.decode(ULAW.encode(pcm))
        prosody = features(pcm, rate)
        assert prosody is not None
        assert prosody.f0_hz == pytest.approx(f0, rel=0.03), f0
        assert prosody.voiced > 0.9
        assert prosody.f0_spread < 0.2  # a steady tone: no intonation


@pytest.mark.parametrize("rate", [8000, 16000])
def test_silence_and_scraps_give_nothing(rate: int) -> None:
    rng = np.random.default_rng(0)
    estimator = ArousalEstimator()
    quiet_noise = rng.normal(0, 3, rate * 2).astype(np.int16)  # about -80 dBFS
    loud_noise = rng.normal(0, 3000, rate * 2).astype(np.int16)  # fricative-like, unvoiced
    scrap = tone(rate, 150.0, 0.2, harmonics=True)  # under the shortest piece
    for pcm in (
        np.zeros(rate * 2, np.int16),
        quiet_noise,
        loud_noise,
        scrap,
        np.zeros(0, np.int16),
    ):
        assert features(pcm, rate) is None
        assert estimator.estimate(pcm, rate) is None
    assert estimator.mean_arousal is None


def test_other_rates_are_resampled() -> None:
    for rate in (11025, 44100, 48000):
        prosody = features(tone(rate, 200.0, 0.5, harmonics=True), rate)
        assert prosody is not None
        assert prosody.f0_hz == pytest.approx(200.0, rel=0.03)


def test_features_agree_between_8k_g711_and_16k(speech: dict[str, dict[str, Speech]]) -> None:
    for voice, pieces in speech.items():
        narrow = features(line(pieces["neutral0"], 8000), 8000)
        wide = features(line(pieces["neutral0"], 16000), 16000)
        assert narrow is not None
        assert wide is not None
        assert narrow.f0_hz == pytest.approx(wide.f0_hz, rel=0.02), voice
        assert narrow.energy_db == pytest.approx(wide.energy_db, abs=0.5), voice
        assert narrow.tilt_db == pytest.approx(wide.tilt_db, abs=0.5), voice
        assert 60 < narrow.f0_hz < 400
        assert 2.0 < narrow.rate < 9.0  # syllables a second of ordinary speech


@pytest.mark.parametrize("rate", [8000, 16000])
def test_agitated_speech_has_higher_arousal_than_calm(
    rate: int, speech: dict[str, dict[str, Speech]]
) -> None:
    """Same sentence, same voice, after two neutral sentences of that voice as baseline."""
    for voice, pieces in speech.items():
        estimator = ArousalEstimator()
        first = estimator.estimate(line(pieces["neutral0"], rate), rate)
        second = estimator.estimate(line(pieces["neutral1"], rate), rate)
        assert first is not None
        assert second is not None
        assert first.confidence < second.confidence < 0.5  # a young baseline is unsure
        assert first.label == Label.NEUTRAL  # against priors a voice is not yet a mood
        results: dict[str, Emotion] = {}
        for style in ("agitated", "calm"):
            fork = copy.deepcopy(estimator)  # each style against the same baseline
            result = fork.estimate(line(pieces[style], rate), rate)
            assert result is not None
            results[style] = result
            assert fork.mean_arousal is not None
            assert 0.0 <= fork.mean_arousal <= 1.0
        agitated, calm = results["agitated"], results["calm"]
        print(
            f"{rate} Hz {voice:9s} baseline {first.arousal:.2f} {first.label} "
            f"{second.arousal:.2f} {second.label}  "
            f"agitated {agitated.arousal:.2f} {agitated.label}  calm {calm.arousal:.2f} "
            f"{calm.label}  (confidence {agitated.confidence:.2f})"
        )
        assert agitated.arousal > calm.arousal + 0.3, voice
        assert agitated.label != Label.CALM, voice
        assert calm.label != Label.AGITATED, voice
        assert agitated.valence == calm.valence == 0.0


def telephone_band(pcm: np.ndarray, rate: int) -> np.ndarray:
    """A line's 300–3400 Hz band: gone below 150 Hz, -6 dB at 225 Hz, flat from 300 Hz."""
    spectrum = np.fft.rfft(pcm.astype(np.float64))
    hz = np.fft.rfftfreq(len(pcm), 1 / rate)
    ramp = np.clip((hz - 150) / 150, 0, 1) * np.clip((3600 - hz) / 200, 0, 1)
    return np.rint(np.fft.irfft(spectrum * np.sin(np.pi / 2 * ramp) ** 2, len(pcm))).astype(
        np.int16
    )


def test_f0_survives_a_telephone_band(speech: dict[str, dict[str, Speech]]) -> None:
    """A line that cuts below 300 Hz removes a male voice's fundamental: F0 stays put."""
    for voice, pieces in speech.items():
        pcm = line(pieces["neutral0"], 8000)
        full = features(pcm, 8000)
        narrow = features(telephone_band(pcm, 8000), 8000)
        assert full is not None
        assert narrow is not None
        assert narrow.f0_hz == pytest.approx(full.f0_hz, rel=0.03), voice
        assert narrow.voiced > 0.8 * full.voiced, voice


def test_two_second_pieces_of_a_long_segment(speech: dict[str, dict[str, Speech]]) -> None:
    """The estimator as the media path calls it on long speech: every 2 s."""
    rate = 8000
    for voice, pieces in speech.items():
        baseline = np.concatenate([line(pieces[f"neutral{i}"], rate) for i in (0, 1)])
        estimator = ArousalEstimator()
        for start in range(0, len(baseline), 2 * rate):
            estimator.estimate(baseline[start : start + 2 * rate], rate)
        means = {}
        for style in ("agitated", "calm"):
            fork = copy.deepcopy(estimator)
            pcm = line(pieces[style], rate)
            results = [
                fork.estimate(pcm[i : i + 2 * rate], rate) for i in range(0, len(pcm), 2 * rate)
            ]
            means[style] = np.mean([r.arousal for r in results if r is not None])
        print(f"2 s pieces {voice:9s} agitated {means['agitated']:.2f} calm {means['calm']:.2f}")
        assert means["agitated"] > means["calm"] + 0.3, voice
