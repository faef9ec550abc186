"""Vocal arousal from tone of voice: prosodic features and a per-caller running baseline.

`features` turns one piece of speech (int16 mono at any rate) into a `Prosody`:
frame energy and its spread, median F0 and its spread in semitones, the voiced
fraction, spectral tilt and a speaking-rate proxy. Everything is measured at
8 kHz inside the telephone band (energy 60–3400 Hz, tilt and syllables
300–3400 Hz, pitch below 2.4 kHz): other rates are resampled first, which costs
less than analysing them natively and makes an 8 kHz G.711 call and a 16 kHz
G.722 call of the same voice give the same numbers. One FFT of a 2-D frame
matrix feeds all of it; there is no Python loop over samples or frames.

Pitch is Boersma's (Praat's) method: the autocorrelation of each Hann-windowed,
band-limited frame divided by the window's own autocorrelation, so a periodic
frame scores ~1 at its period and at every multiple; the period is the best
peak after a small cost per octave downwards. It needs no energy at the
fundamental, which a telephone line usually removes.

`ArousalEstimator` owns one caller's baseline: each piece is scored by z-scores
against the caller's own running means (population priors until it has heard
some speech), mapped to 0..1 by a logistic, labelled calm / neutral /
agitated, and then folded into the baseline. Valence is not estimated (0).
"""

from __future__ import annotations

import functools
from enum import StrEnum
from typing import NamedTuple

import numpy as np
import soxr

RATE = 8000  # the analysis rate: the telephone band is all the cues need
WINDOW = 400  # 50 ms: 3 periods of 60 Hz under a Hann window (Praat's rule for the lowest F0)
HOP = 160  # 20 ms, 50 frames a second: plenty for medians and percentiles
NFFT = 640  # ≥ window + longest lag (400 + 137): no circular wrap; 12.5 Hz bins
F0_MIN, F0_MAX = 60.0, 400.0
ENERGY_BAND = (60.0, 3400.0)  # loudness also counts a male fundamental where the line keeps it
LOW_BAND, HIGH_BAND = (300.0, 1000.0), (1000.0, 3400.0)  # spectral tilt: highs minus lows
PITCH_EDGES = (20.0, 50.0, 1600.0, 2400.0)  # raised-cosine band: no DC, no upper formants
VOICING = 0.45  # normalized autocorrelation needed to call a frame voiced (Praat's default)
OCTAVE_COST = 0.04  # per octave down: a subharmonic (2T, 3T) peaks about as high as T
SILENCE_DB = -55.0  # frames quieter than this (dBFS) are never speech
DYNAMIC_DB = 35.0  # nor are frames this far below the piece's loud frames
NUCLEUS_DIP_DB = 2.0  # an energy peak must rise this far above the dip before it
NUCLEUS_FLOOR_DB = 20.0  # and be within this of the piece's loud frames (no breaths, clicks)
OCTAVE_ERROR_ST = 6.0  # voiced frames this far from the most common pitch are octave errors
MIN_SECONDS = 0.3
MIN_VOICED_FRAMES = 8  # 160 ms of voice: fewer make a median F0 a guess


class Prosody(NamedTuple):
    """Features of one piece of speech."""

    energy_db: float  # mean energy of speech frames, dB re full scale (full-scale sine: -3)
    energy_range_db: float  # 90th minus 10th percentile of speech-frame energy
    f0_hz: float  # median F0 of voiced frames (never 0: too little voicing gives None)
    f0_spread: float  # robust standard deviation of F0, semitones
    voiced: float  # fraction of frames that are voiced
    tilt_db: float  # energy 1–3.4 kHz minus 0.3–1 kHz in voiced frames, dB (flatter = higher)
    rate: float  # syllable nuclei per second of speech
    seconds: float  # length of the piece


LAG_LOW, LAG_HIGH = int(RATE / F0_MAX), int(np.ceil(RATE / F0_MIN)) + 1  # 20..135
REACH = np.arange(LAG_LOW - 1, LAG_HIGH + 2)  # one lag either side, to tell peaks


class _Tables(NamedTuple):
    window: np.ndarray
    lag_window: np.ndarray  # autocorrelation of the window itself at REACH (Boersma's normalizer)
    pitch_bins: int  # the pitch band ends below this bin
    cosines: np.ndarray  # pitch-band power spectrum → autocorrelation at lag 0 and REACH
    energy: slice
    low: slice
    high: slice
    scale: float  # sum of |X|² over a band → mean square of the frame in that band


@functools.cache
def _tables() -> _Tables:
    window = np.hanning(WINDOW + 2)[1:-1]  # no zero end points: every sample counts
    lag_window = np.fft.irfft(np.abs(np.fft.rfft(window, NFFT)) ** 2, NFFT)
    hz = np.fft.rfftfreq(NFFT, 1 / RATE)
    a, b, c, d = PITCH_EDGES
    # Smooth band edges so that the band limit does not ring in the lag domain.
    ramp = np.clip((hz - a) / (b - a), 0, 1) * np.clip((d - hz) / (d - c), 0, 1)

    def bins(band: tuple[float, float]) -> slice:
        return slice(int(np.searchsorted(hz, band[0])), int(np.searchsorted(hz, band[1])))

    mask = 0.5 - 0.5 * np.cos(np.pi * ramp)
    # The inverse DFT of a real, even power spectrum, restricted to the ~120 lags the pitch
    # search reads and the ~190 bins the pitch band holds: one small matrix product costs
    # a fifth of an inverse FFT per frame (numpy converts a real irfft input to complex).
    pitch_bins = int(np.searchsorted(hz, d)) + 1
    k = np.arange(pitch_bins)[:, None]
    lags = np.concatenate(([0], REACH))
    weights = (mask[:pitch_bins] * np.where(k[:, 0] == 0, 1.0, 2.0))[:, None]  # ±k both count
    cosines = weights * np.cos(2 * np.pi * k * lags / NFFT) / NFFT
    return _Tables(
        window=window,
        lag_window=lag_window[REACH] / lag_window[0],
        pitch_bins=pitch_bins,
        cosines=np.ascontiguousarray(cosines),
        energy=bins(ENERGY_BAND),
        low=bins(LOW_BAND),
        high=bins(HIGH_BAND),
        scale=2.0 / (NFFT * float(np.sum(window**2))),
    )


def _quantiles(values: np.ndarray, *q: float) -> list[float]:
    """Linear-interpolated quantiles: np.percentile's answer at a fraction of its overhead."""
    ordered = np.sort(values)
    where = np.asarray(q) * (len(ordered) - 1)
    return [float(v) for v in np.interp(where, np.arange(len(ordered)), ordered)]


def _db(power: np.ndarray) -> np.ndarray:
    return 10 * np.log10(power + 1e-12)


def _pitch(power: np.ndarray, tables: _Tables) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: F0 in Hz and its normalized autocorrelation peak (0 when no peak)."""
    acf = power[:, : tables.pitch_bins] @ tables.cosines
    r = acf[:, 1:] / np.maximum(acf[:, :1], 1e-20) / tables.lag_window
    left, centre, right = r[:, :-2], r[:, 1:-1], r[:, 2:]
    peaks = (centre > left) & (centre >= right)
    # Parabolic interpolation of every peak: a lag step is 2–7 % of the period, and a peak
    # between two lags is sampled below its top (which would favour integer subharmonics).
    curve = np.minimum(np.where(peaks, left - 2 * centre + right, -1.0), -1e-9)
    shift = np.clip(0.5 * (left - right) / curve, -0.5, 0.5)
    height = centre - 0.25 * (left - right) * shift
    lags = REACH[1:-1]
    score = np.where(peaks, height + OCTAVE_COST * np.log2(RATE / lags / F0_MIN), -np.inf)
    best = np.argmax(score, axis=1)
    rows = np.arange(len(r))
    strength = np.where(peaks[rows, best], height[rows, best], 0.0)
    return RATE / (lags[best] + shift[rows, best]), strength


def _mode(semitones: np.ndarray) -> float:
    """The most common pitch, in semitones: the histogram peak (1 st bins, ±2 st smoothing).

    Without the fundamental (a telephone line cuts below 300 Hz), some frames of a low
    voice lock onto its 3rd or 4th harmonic, and of a high voice onto half its F0. Such
    frames can be a sixth of the voiced ones and would shift a plain median by a semitone;
    the median and spread are taken only around this peak, which they cannot move.
    """
    low = 12 * np.log2(F0_MIN)
    counts = np.bincount((semitones - low).astype(np.int64), minlength=1)
    smooth = np.convolve(counts, [1.0, 2.0, 3.0, 2.0, 1.0], mode="same")
    return low + int(np.argmax(smooth)) + 0.5


def _nuclei(envelope: np.ndarray, voiced: np.ndarray, floor: float) -> int:
    """Syllable nuclei: voiced peaks of the energy envelope with a dip before each."""
    if len(envelope) < 3:
        return 0
    smooth = np.convolve(envelope, np.full(2, 0.5), mode="same")  # 40 ms, on 50 ms frames
    inner = smooth[1:-1]
    peaks = np.flatnonzero((inner > smooth[:-2]) & (inner >= smooth[2:])) + 1
    if len(peaks) == 0:
        return 0
    # The lowest point between each peak and the local peak before it (or the start): a
    # shoulder on a rising vowel has no dip and is not a new syllable.
    dips = np.minimum.reduceat(smooth, np.concatenate(([0], peaks)))[:-1]
    keep = (smooth[peaks] - dips >= NUCLEUS_DIP_DB) & voiced[peaks] & (smooth[peaks] > floor)
    return int(np.count_nonzero(keep))


def features(pcm: np.ndarray, rate: int) -> Prosody | None:
    """Prosody of one piece (int16 samples, or floats in -1..1); None if too little speech."""
    seconds = len(pcm) / rate
    if seconds < MIN_SECONDS:
        return None
    scale = 1 / 32768 if np.issubdtype(pcm.dtype, np.integer) else 1.0
    signal = pcm.astype(np.float32) * np.float32(scale)
    if rate != RATE:
        signal = soxr.resample(signal, rate, RATE)  # ~0.06 ms a second from 16 kHz
    tables = _tables()
    view = np.lib.stride_tricks.sliding_window_view(signal.astype(np.float64), WINDOW)[::HOP]
    # float64: numpy's FFT runs faster in double than in single precision.
    spectrum = np.fft.rfft(view * tables.window, NFFT)
    power = spectrum.real**2 + spectrum.imag**2
    energy = _db(power[:, tables.energy].sum(axis=1) * tables.scale)
    speech = (energy > SILENCE_DB) & (energy > _quantiles(energy, 0.95)[0] - DYNAMIC_DB)
    voiced = speech.copy()  # the pitch search only runs on frames loud enough for speech
    f0, strength = _pitch(power[speech], tables)
    voiced[speech] = strength >= VOICING
    f0_voiced = f0[strength >= VOICING]
    if np.count_nonzero(voiced) < MIN_VOICED_FRAMES:
        return None
    semitones = 12 * np.log2(f0_voiced)
    near = np.abs(semitones - _mode(semitones)) <= OCTAVE_ERROR_ST
    centre = float(np.median(semitones[near]))
    low_st, high_st = _quantiles(semitones[near], 0.1, 0.9)
    tilt = _db(power[voiced, tables.high].sum(axis=1)) - _db(power[voiced, tables.low].sum(axis=1))
    syllable_band = slice(tables.low.start, tables.high.stop)  # vowels, not low hum
    envelope = _db(power[:, syllable_band].sum(axis=1) * tables.scale)
    floor = _quantiles(envelope[speech], 0.9)[0] - NUCLEUS_FLOOR_DB
    p10, p90 = _quantiles(energy[speech], 0.1, 0.9)
    spoken = np.count_nonzero(speech) * HOP / RATE
    return Prosody(
        energy_db=float(np.mean(energy[speech])),
        energy_range_db=p90 - p10,
        f0_hz=float(2 ** (centre / 12)),
        f0_spread=(high_st - low_st) / 2.56,  # the 10–90 % range of a normal is 2.56 σ
        voiced=float(np.count_nonzero(voiced) / len(voiced)),
        tilt_db=float(np.mean(tilt)),
        rate=_nuclei(envelope, voiced, floor) / spoken,  # per second spoken: pauses aren't pace
        seconds=seconds,
    )


# --- Arousal against the caller's own baseline ------------------------------------------------


class Label(StrEnum):
    CALM = "calm"
    NEUTRAL = "neutral"
    AGITATED = "agitated"


class Emotion(NamedTuple):
    """One estimate, as published in the `emotion` event."""

    label: str  # a Label value, or a model's own class name
    arousal: float  # 0..1
    valence: float  # -1..1, 0 when unknown
    confidence: float  # 0..1


# The scored cues: (name, population mean, population spread, within-speaker spread, weight).
# The within-speaker spread is how far one speaker's pieces typically stray from their own
# mean: a z of 1 is a noticeable change of tone. The population spread (speakers, sexes,
# phones and line levels) only widens the z while the baseline has heard little.
# Weights follow the arousal literature (Scherer 2003; Juslin & Laukka 2003): loudness and
# F0 level carry most, then speaking rate and spectral flatness; F0 spread and energy
# range are weaker, noisier cues.
CUES: tuple[tuple[str, float, float, float, float], ...] = (
    ("energy_db", -26.0, 6.0, 4.0, 0.8),  # nominal telephone speech is about -26 dBFS
    ("f0_st", 12 * np.log2(150.0), 5.0, 2.0, 0.8),  # semitones; 150 Hz is between the sexes
    ("rate", 5.0, 1.0, 1.0, 0.5),  # syllable nuclei per spoken second
    ("tilt_db", -6.0, 3.0, 2.0, 0.4),  # a tense, raised voice has relatively more highs
    ("f0_spread", 2.5, 1.0, 1.0, 0.3),
    ("energy_range_db", 24.0, 4.0, 4.0, 0.2),
)
PRIOR = np.array([cue[1] for cue in CUES])
POPULATION = np.array([cue[2] for cue in CUES])
SPREAD = np.array([cue[3] for cue in CUES])
WEIGHT = np.array([cue[4] for cue in CUES])
PRIOR_SECONDS = 1.0  # the priors count as this much speech: a few seconds override them
SPREAD_PRIOR_SECONDS = 30.0  # the spreads are learned far more slowly than the means
MEMORY_SECONDS = 120.0  # the baseline forgets beyond about two minutes of speech
OUTLIER_SCORE = 2.0  # pieces scoring beyond this teach the baseline proportionally less
CALM_BELOW, AGITATED_ABOVE = 0.3, 0.7
LABEL_CAUTION = 0.2  # thresholds move this much further out while the baseline is all prior
CONFIDENCE_FLOOR, CONFIDENCE_TOP = 0.1, 0.8  # a rule on prosody alone is never certain
CONFIDENCE_HALF_SECONDS = 15.0  # baseline speech at which confidence is half-way up


def _cues(prosody: Prosody) -> np.ndarray:
    return np.array(
        [
            prosody.energy_db,
            12 * np.log2(prosody.f0_hz),
            prosody.rate,
            prosody.tilt_db,
            prosody.f0_spread,
            prosody.energy_range_db,
        ]
    )


class ArousalEstimator:
    """One caller's running baseline and arousal."""

    def __init__(self) -> None:
        self._mean = PRIOR.copy()
        self._variance = SPREAD**2
        self._weight = PRIOR_SECONDS  # seconds of evidence behind the mean, priors included
        self._heard = 0.0  # seconds of the caller's own speech in the baseline
        self._arousal_sum = 0.0
        self._arousal_seconds = 0.0

    def estimate(self, pcm: np.ndarray, rate: int) -> Emotion | None:
        prosody = features(pcm, rate)
        if prosody is None:
            return None
        cues = _cues(prosody)
        # Predictive spread: the caller's own, plus what the mean itself is still unsure of.
        unsure = PRIOR_SECONDS / (PRIOR_SECONDS + self._heard)
        z = (cues - self._mean) / np.sqrt(self._variance + unsure * POPULATION**2)
        score = float(np.dot(WEIGHT, np.clip(z, -4.0, 4.0)))  # one wild cue cannot decide
        arousal = 1.0 / (1.0 + np.exp(-score))
        # Judge first, then learn: the piece is scored against what came before it.
        spoken = prosody.seconds * prosody.voiced
        confidence = self._confidence(spoken)
        self._learn(cues, spoken * min(1.0, OUTLIER_SCORE / max(abs(score), 1e-9)))
        self._arousal_sum += arousal * spoken
        self._arousal_seconds += spoken
        # A first utterance compared with population priors mostly measures the voice (a high
        # voice is not an agitated one): a label needs a clearer margin until the baseline grows.
        caution = LABEL_CAUTION * unsure
        if arousal >= AGITATED_ABOVE + caution:
            label = Label.AGITATED
        elif arousal <= CALM_BELOW - caution:
            label = Label.CALM
        else:
            label = Label.NEUTRAL
        return Emotion(label.value, float(arousal), 0.0, confidence)

    def _learn(self, cues: np.ndarray, seconds: float) -> None:
        # An exponentially weighted mean and variance whose memory grows with the speech
        # heard, up to MEMORY_SECONDS; the variance starts from the priors' spreads.
        # Deviations from a mean that is still mostly prior say how wrong the prior was, not
        # how the caller varies: they teach the variance only as far as the mean is data.
        known = self._heard / (self._heard + PRIOR_SECONDS)
        self._weight = min(self._weight + seconds, MEMORY_SECONDS)
        self._heard += seconds
        share = seconds / self._weight
        deviation = cues - self._mean
        self._mean += share * deviation
        variance_share = known * seconds / min(SPREAD_PRIOR_SECONDS + self._heard, MEMORY_SECONDS)
        self._variance += variance_share * (deviation**2 * (1 - share) - self._variance)
        # Never trust a baseline as tighter (or looser) than twice the typical spread.
        self._variance = np.clip(self._variance, (SPREAD / 2) ** 2, (SPREAD * 2) ** 2)

    def _confidence(self, spoken: float) -> float:
        grown = self._heard / (self._heard + CONFIDENCE_HALF_SECONDS)
        evidence = min(1.0, spoken / 1.0)  # a piece with under a second of voice says less
        return float(CONFIDENCE_FLOOR + (CONFIDENCE_TOP - CONFIDENCE_FLOOR) * grown * evidence)

    @property
    def mean_arousal(self) -> float | None:
        """Arousal over the call so far, weighted by voiced seconds (None before any)."""
        if self._arousal_seconds == 0:
            return None
        return self._arousal_sum / self._arousal_seconds
