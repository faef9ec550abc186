"""Keyword spotting rates: detection and false alarms of pocketsphinx KWS on espeak-ng speech.

Run: ``.venv/bin/python -m bench.keyword_rates`` (about 2-4 minutes on two cores).

The corpus, all synthesized here, goes the live path's way: espeak-ng
(22050 Hz) → 8 kHz → G.711 μ-law → 8 → 16 kHz with the service's own
`FrameResampler` (its polyphase upsampler):

- keyword sentences: each keyword in a carrier sentence, in 6 voices × 3 speeds
  (130-200 wpm); the carrier's prefix is synthesized apart, so where the keyword
  starts is known;
- sentences without any keyword (a few near-misses: "operation", "helpful");
- silence (digital zero and -60 dBFS hiss), noise (white, brown) and music
  (sox plucked notes and chords).

Each decoder setting runs once per (voice, speed) with every keyword at a very
permissive threshold and records every detection's score (the keyphrase's
likelihood ratio over the phone loop, log10); the threshold only gates what
is reported, so one pass yields the rates at every threshold. Per keyword
the script picks the most permissive threshold whose false alarms on speech
stay within the budget, fits log10(threshold) linear in the phone count, and
then runs `KeywordSpotter` itself (the module's rule and options, all keywords
together, 20 ms chunks, restart after a hit) over the corpus for the final table.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr

from sentiric_media.analysis import keywords as kws
from sentiric_media.audio.resample import FrameResampler
from sentiric_media.media.codecs.g711 import ULAW

KEYWORDS = (
    "yes",
    "help",
    "agent",
    "cancel",
    "operator",
    "manager",
    "supervisor",
    "representative",
    "speak to a person",
)
CARRIERS = (  # (before the keyword, after it)
    ("Well, I said", "and that is all."),
    ("", "please."),
    ("Okay, so", "thank you very much."),
)
NEGATIVES = (
    "My account number is four five six seven, and I moved last month.",
    "Could you tell me the balance on my savings account?",
    "I am calling about the package that never arrived at my house.",
    "The weather has been terrible all week, so the flight was delayed.",
    "No, that is not right, my name is spelled differently.",
    "I would like to change my address and my phone number.",
    "Hold on a second, let me find my card in my wallet.",
    "We ordered the blue chair but they delivered a red table instead.",
    "What time does the store open on Saturday morning?",
    "The operation went well, and the nurse was very kind."  # "operat...",
    "Thank you, that was really useful. Goodbye.",
    "Is there a cheaper plan for people who travel abroad a lot?",
)
VOICES = (  # (voice, pitch 0-99)
    ("en", 50),
    ("en-us", 45),
    ("en+f3", 70),
    ("en-us+m3", 35),
    ("en+f2", 65),
    ("en-gb-x-rp", 50),
)
SPEEDS = (130, 165, 200)
NEGATIVES_PER_RENDITION = 5
PERMISSIVE = 1e-100  # every detection worth scoring
SPEECH_FA_BUDGET = 0.5  # false alarms per minute of non-keyword speech, per keyword
# Per minute of silence, noise and music, each: the spotter is fed what the VAD
# calls speech, so noise and silence mostly never reach it (music may).
OTHER_FA_BUDGET = 1.0
HIT_BEFORE, HIT_AFTER = 0.3, 1.5  # s: a hit starts within this window of the keyword
WIDE = 1e-100  # beam: the default 1e-48 prunes long keyphrases before they end
CONFIGS: dict[str, dict[str, Any]] = {
    "pocketsphinx defaults (ds=1 beam=1e-48 kws_plp=1e-1)": {},
    "ds=2": {"ds": 2},
    "ds=2 beam=1e-100": {"ds": 2, "beam": WIDE},
    "ds=2 beam=1e-100 kws_plp=1e-10": {"ds": 2, "beam": WIDE, "kws_plp": 1e-10},
    "ds=2 beam=1e-100 kws_plp=1e-20": {"ds": 2, "beam": WIDE, "kws_plp": 1e-20},
    "ds=2 beam=1e-100 kws_plp=1e-20 topn=2": {"ds": 2, "beam": WIDE, "kws_plp": 1e-20, "topn": 2},
    "ds=2 beam=1e-100 kws_plp=1e-30": {"ds": 2, "beam": WIDE, "kws_plp": 1e-30},
    "ds=1 beam=1e-100 kws_plp=1e-20": {"ds": 1, "beam": WIDE, "kws_plp": 1e-20},
    "ds=1 beam=1e-100 kws_plp=1e-30": {"ds": 1, "beam": WIDE, "kws_plp": 1e-30},
}
RATE8 = 8000


@dataclass
class Clip:
    kind: str  # "keyword", "speech" (no keyword), "silence", "noise", "music"
    pcm: np.ndarray  # 16 kHz int16
    keyword: str | None = None
    at: int = 0  # 16 kHz sample where the keyword part starts
    group: int = 0  # which decoder (one per voice and speed: the CMN adapts per caller)


@dataclass
class Detections:
    clip: int
    found: list[tuple[str, int, float]] = field(default_factory=list)  # phrase, start, log10


def espeak(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's output at 8 kHz (int16)."""
    command = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text]
    wav = subprocess.run(command, check=True, capture_output=True, timeout=60).stdout
    with wave.open(io.BytesIO(wav)) as handle:
        rate = handle.getframerate()
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    return np.clip(soxr.resample(pcm.astype(np.float32), rate, RATE8), -32768, 32767).astype(
        np.int16
    )


def phone_line(pcm8: np.ndarray) -> np.ndarray:
    """8 kHz audio through G.711 μ-law, then to 16 kHz as the live path does (20 ms frames)."""
    decoded = ULAW.decode(ULAW.encode(pcm8.astype(np.int16)))
    decoded = np.concatenate((decoded, np.zeros(-len(decoded) % 160, np.int16)))
    resampler = FrameResampler(RATE8, kws.RATE)
    return np.concatenate([resampler.process(f) for f in decoded.reshape(-1, 160)])


def padded(*parts: np.ndarray) -> np.ndarray:
    gap = np.zeros(RATE8 // 5, np.int16)
    return np.concatenate((gap, *parts, gap, gap))


def speech_corpus(renditions: list[tuple[str, int, int]]) -> list[Clip]:
    jobs: list[tuple[int, str, str | None, str, str]] = []
    for group, _ in enumerate(renditions):
        for k, keyword in enumerate(KEYWORDS):
            before, after = CARRIERS[(group + k) % len(CARRIERS)]
            jobs.append((group, "keyword", keyword, before, f"{keyword} {after}"))
        for n in range(NEGATIVES_PER_RENDITION):
            sentence = NEGATIVES[(group * NEGATIVES_PER_RENDITION + n) % len(NEGATIVES)]
            jobs.append((group, "speech", None, "", sentence))

    def make(job: tuple[int, str, str | None, str, str]) -> Clip:
        group, kind, keyword, before, text = job
        voice, speed, pitch = renditions[group]
        prefix = espeak(before, voice, speed, pitch) if before else np.zeros(0, np.int16)
        main = espeak(text, voice, speed, pitch)
        at = (RATE8 // 5 + len(prefix)) * 2
        return Clip(kind, phone_line(padded(prefix, main)), keyword, at, group)

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(make, jobs))


def sox_music(seed: int, seconds: float) -> np.ndarray:
    """Plucked notes and triads from random major scales (one sox chain), 8 kHz."""
    rng = np.random.default_rng(seed)
    chain: list[str] = []
    total = 0.0
    while total < seconds:
        tonic = 48 + int(rng.integers(0, 12))
        scale = [tonic + 12 * o + s for o in range(3) for s in (0, 2, 4, 5, 7, 9, 11)]
        length = float(rng.choice([0.125, 0.25, 0.5, 0.75]))
        low = int(rng.integers(0, len(scale) - 4))
        notes = [scale[low]] if rng.random() < 0.5 else scale[low : low + 5 : 2]
        chain += ["synth", str(length)]
        for note in notes:
            chain += ["pluck", f"{440.0 * 2 ** ((note - 69) / 12):.2f}"]
        chain += [*(["remix", "-"] if len(notes) > 1 else []), "gain", "-n", "-3", ":"]
        total += length
    command = ["sox", "-n", "-r", str(RATE8), "-b", "16", "-c", "1", "-t", "wav", "-"]
    wav = subprocess.run([*command, *chain[:-1]], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as handle:
        return np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2").copy()


def other_corpus(seconds: float) -> list[Clip]:
    rng = np.random.default_rng(7)
    n = int(seconds * RATE8)
    white = rng.normal(0, 32768 * 10 ** (-30 / 20), n)
    brown = np.cumsum(rng.normal(0, 1, n))
    brown -= np.convolve(brown, np.ones(400) / 400, "same")  # no DC drift
    brown *= 32768 * 10 ** (-25 / 20) / np.std(brown)
    sources = {
        "silence": [np.zeros(n // 2), rng.normal(0, 32768 * 10 ** (-60 / 20), n // 2)],
        "noise": [white, brown],
        "music": [sox_music(3, seconds)],
    }
    clips = []
    for kind, signals in sources.items():
        for signal in signals:
            pcm16 = phone_line(np.clip(signal, -32768, 32767).astype(np.int16))
            for begin in range(0, len(pcm16), 10 * kws.RATE):  # 10 s utterances, as a VAD cuts
                clips.append(Clip(kind, pcm16[begin : begin + 10 * kws.RATE], group=-1))
    return clips


def decode_group(
    job: tuple[dict[str, Any], list[tuple[int, np.ndarray]]],
) -> tuple[list[Detections], float, float]:
    """Every detection in a group's clips at PERMISSIVE; (detections, CPU s, audio s)."""
    options, clips = job
    vocabulary = kws.Vocabulary(kws.KeywordModel.default().dictionary)
    decoder = kws.build_decoder(
        kws.KeywordModel.default(), dict.fromkeys(KEYWORDS, PERMISSIVE), vocabulary, options
    )
    out, cpu, audio = [], 0.0, 0.0
    for index, pcm in clips:
        began = time.process_time()
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), False, False)
        decoder.end_utt()
        cpu += time.process_time() - began
        audio += len(pcm) / kws.RATE
        found = [
            (s.word.strip(), s.start_frame * kws.FRAME, kws.score_log10(s.prob))
            for s in decoder.seg() or ()
        ]
        out.append(Detections(index, found))
    return out, cpu, audio


def spot_group(job: tuple[int, list[tuple[int, np.ndarray]]]) -> tuple[list[Detections], float]:
    """The module's KeywordSpotter over a group's clips, 20 ms at a time."""
    _, clips = job
    vocabulary = kws.Vocabulary(kws.KeywordModel.default().dictionary)
    spotter = kws.KeywordSpotter(kws.KeywordModel.default(), KEYWORDS, vocabulary)
    out, cpu, position = [], 0.0, 0
    for index, pcm in clips:
        began = time.process_time()
        hits = []
        for offset in range(0, len(pcm), 320):
            hits += spotter.feed(pcm[offset : offset + 320], position + offset)
        spotter.pause()
        cpu += time.process_time() - began
        found = [(h.keyword, h.start - position, 0.0) for h in hits]
        out.append(Detections(index, found))
        position += len(pcm) + kws.RATE  # a gap between utterances
    return out, cpu


def groups(clips: list[Clip]) -> Iterator[list[tuple[int, np.ndarray]]]:
    rng = np.random.default_rng(1)
    for group in sorted({c.group for c in clips}):
        members = [i for i, c in enumerate(clips) if c.group == group]
        rng.shuffle(members)  # keyword and other sentences interleaved, as in a call
        yield [(i, clips[i].pcm) for i in members]


@dataclass
class Rates:
    detected: float  # fraction of the keyword's sentences with a hit at the keyword
    speech_fa: float  # per minute of speech without that keyword
    speech_fa_sentence: float  # fraction of such sentences with a false alarm
    other_fa: dict[str, float]  # per minute: silence, noise, music


OTHER_KINDS = ("silence", "noise", "music")


class Scores:
    """One keyword's detection scores over the corpus, to read the rates at any threshold."""

    def __init__(self, clips: list[Clip], found: dict[int, list[tuple[str, int, float]]],
                 keyword: str) -> None:  # fmt: skip
        best, sentence_best = [], []
        false: dict[str, list[float]] = {k: [] for k in ("speech", *OTHER_KINDS)}
        self.seconds = dict.fromkeys(false, 0.0)
        for index, clip in enumerate(clips):
            mine = [(start, score) for phrase, start, score in found[index] if phrase == keyword]
            if clip.keyword == keyword:  # the best hit where the keyword was said
                best.append(max((sc for st, sc in mine if hit(clip, st)), default=-np.inf))
                continue
            kind = "speech" if clip.kind in ("keyword", "speech") else clip.kind
            false[kind] += [score for _, score in mine]
            self.seconds[kind] += len(clip.pcm) / kws.RATE
            if kind == "speech":
                sentence_best.append(max((score for _, score in mine), default=-np.inf))
        self.best = np.array(best)
        self.sentence_best = np.array(sentence_best)
        self.false = {k: np.sort(v) for k, v in false.items()}

    def rates(self, log10_t: float) -> Rates:
        per_minute = {
            k: 60 * (len(v) - np.searchsorted(v, log10_t)) / self.seconds[k] if self.seconds[k]
            else 0.0 for k, v in self.false.items()
        }  # fmt: skip
        return Rates(
            float(np.mean(self.best >= log10_t)),
            per_minute["speech"],
            float(np.mean(self.sentence_best >= log10_t)),
            {k: per_minute[k] for k in OTHER_KINDS},
        )

    def within(self, log10_t: float) -> bool:
        r = self.rates(log10_t)
        return r.speech_fa <= SPEECH_FA_BUDGET and max(r.other_fa.values()) <= OTHER_FA_BUDGET

    def pick(self, grid: np.ndarray, speech_only: bool = False) -> float | None:
        """The most permissive log10 threshold within the false-alarm budgets."""
        for log10_t in grid:
            r = self.rates(float(log10_t))
            if r.speech_fa <= SPEECH_FA_BUDGET and (speech_only or self.within(log10_t)):
                return float(log10_t)
        return None


def hit(clip: Clip, start: int) -> bool:
    return clip.at - HIT_BEFORE * kws.RATE <= start <= clip.at + HIT_AFTER * kws.RATE


def best_rule(
    scores: dict[str, Scores], phones: dict[str, int], grid: np.ndarray
) -> tuple[float, float, float, list[Rates]]:
    """log10 threshold = base + per_phone·phones, at least `lowest`: (base, per_phone,
    lowest) with the best mean detection while the mean false alarms per keyword stay
    within the budgets, and the rates it gives."""
    fine = np.arange(grid[0], grid[-1] + 0.5, 0.5)
    curves = {k: [s.rates(float(t)) for t in fine] for k, s in scores.items()}
    detected = np.array([[r.detected for r in curves[k]] for k in phones])  # (keywords, fine)
    speech = np.array([[r.speech_fa for r in curves[k]] for k in phones])
    other = np.array([[max(r.other_fa.values()) for r in curves[k]] for k in phones])
    n = np.array(list(phones.values()), float)
    rows = np.arange(len(n))
    best = (-1.0, 0.0, 0.0, 0.0)
    for per_phone in np.arange(-20.0, 0.01, 0.5):
        bases = np.arange(fine[0], fine[-1] - 20 * per_phone + 1.0, 1.0)
        for lowest in np.arange(fine[0], fine[-1], 5.0):
            t = np.clip(bases[:, None] + per_phone * n[None, :], lowest, fine[-1])
            at = np.clip(np.searchsorted(fine, t), 0, len(fine) - 1)  # (bases, keywords)
            ok = (speech[rows, at].mean(1) <= SPEECH_FA_BUDGET) & (
                other[rows, at].mean(1) <= OTHER_FA_BUDGET
            )
            mean = np.where(ok, detected[rows, at].mean(1), -1.0)
            i = int(np.argmax(mean))
            if mean[i] > best[0]:
                best = (float(mean[i]), float(bases[i]), float(per_phone), float(lowest))
    _, base, per_phone, lowest = best
    got = [scores[k].rates(max(lowest, base + per_phone * phones[k])) for k in phones]
    return base, per_phone, lowest, got


def phone_count(vocabulary: kws.Vocabulary, keyword: str) -> int:
    return len(vocabulary.phones(keyword) or ())


def print_rates(title: str, phones: dict[str, int], thresholds: dict[str, float],
                got: list[Rates]) -> None:  # fmt: skip
    print(title + "\n")
    print("| keyword | phones | threshold | detected | FA/min speech | FA/sentence | "
          "FA/min silence | FA/min noise | FA/min music |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for (keyword, n), r in zip(phones.items(), got, strict=True):
        print(f"| {keyword} | {n} | 1e{thresholds[keyword]:.1f} | {100 * r.detected:.0f}% | "
              f"{r.speech_fa:.2f} | {100 * r.speech_fa_sentence:.1f}% | "
              + " | ".join(f"{r.other_fa[k]:.2f}" for k in OTHER_KINDS) + " |")  # fmt: skip
    print(f"| **mean** | | | {100 * np.mean([r.detected for r in got]):.0f}% | "
          f"{np.mean([r.speech_fa for r in got]):.2f} | "
          f"{100 * np.mean([r.speech_fa_sentence for r in got]):.1f}% | "
          + " | ".join(f"{np.mean([r.other_fa[k] for r in got]):.2f}" for k in OTHER_KINDS)
          + " |\n")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 voices, 2 speeds")
    parser.add_argument("--only", help="the decoder settings whose name contains this")
    args = parser.parse_args()
    voices, speeds, configs = VOICES, SPEEDS, CONFIGS
    if args.only:
        configs = {k: v for k, v in CONFIGS.items() if args.only in k}
    if args.quick:
        voices, speeds = VOICES[:2], SPEEDS[::2]
    renditions = [(v, s, p) for v, p in voices for s in speeds]
    began = time.perf_counter()
    clips = speech_corpus(renditions) + other_corpus(60.0)
    speech_s = sum(len(c.pcm) for c in clips if c.group >= 0) / kws.RATE
    other_s = sum(len(c.pcm) for c in clips if c.group < 0) / kws.RATE
    print(f"corpus: {len(clips)} clips, {speech_s / 60:.1f} min speech, {other_s / 60:.1f} min "
          f"silence/noise/music, {len(renditions)} voice×speed; "
          f"synthesized in {time.perf_counter() - began:.0f} s\n")  # fmt: skip
    vocabulary = kws.Vocabulary(kws.KeywordModel.default().dictionary)
    phones = {k: phone_count(vocabulary, k) for k in KEYWORDS}
    jobs = list(groups(clips))
    print(f"Budgets: {SPEECH_FA_BUDGET} false alarms per minute of speech without the keyword,"
          f" {OTHER_FA_BUDGET} per minute of silence, noise or music (per keyword).\n")  # fmt: skip
    summary = []
    with ProcessPoolExecutor(2) as pool:
        for name, options in configs.items():
            results = list(pool.map(decode_group, [(options, job) for job in jobs]))
            found = {d.clip: d.found for r in results for d in r[0]}
            cpu = sum(r[1] for r in results) / sum(r[2] for r in results)
            scores = {k: Scores(clips, found, k) for k in KEYWORDS}
            every = sorted(score for f in found.values() for _, _, score in f)
            grid = np.arange(np.floor(every[0]), every[-1] + 2.5, 2.5)
            picks = {k: s.pick(grid) for k, s in scores.items()}
            free = {k: s.pick(grid, speech_only=True) for k, s in scores.items()}
            at_pick = np.mean([scores[k].rates(p).detected if p is not None else 0.0
                               for k, p in picks.items()])  # fmt: skip
            at_free = np.mean([scores[k].rates(p).detected if p is not None else 0.0
                               for k, p in free.items()])  # fmt: skip
            base, per_phone, lowest, got = best_rule(scores, phones, grid)
            rule = f"{base:.1f} {per_phone:+.1f}·phones, ≥ {lowest:.0f}"
            summary.append((name, cpu, at_free, at_pick, np.mean([r.detected for r in got]), rule))
            if options == kws.DECODER_OPTIONS:
                chosen = (name, base, per_phone, lowest, got)
                margins = [b - max(lowest, base + per_phone * phones[k])
                           for k, sc in scores.items() for b in sc.best]  # fmt: skip
                margin = float(np.median([m for m in margins if m >= 0] or [0.0]))
    print(
        "| decoder options | CPU ms/s | detection, per-keyword threshold (speech budget) | "
        "same, all budgets | detection, best phone rule | best rule (log10 threshold) |"
    )
    print("|---|---|---|---|---|---|")
    for name, cpu, at_free, at_pick, by_rule, rule in summary:
        print(f"| {name} | {1000 * cpu:.1f} | {100 * at_free:.0f}% | {100 * at_pick:.0f}% | "
              f"{100 * by_rule:.0f}% | {rule} |")  # fmt: skip
    print()
    if "chosen" in locals():
        name, base, per_phone, lowest, got = chosen
        thresholds = {k: max(lowest, base + per_phone * n) for k, n in phones.items()}
        print_rates(f"## Best rule for the module's options ({name}): log10 threshold = "
                    f"{base:.1f} {per_phone:+.1f}·phones, at least {lowest:.0f}",
                    phones, thresholds, got)  # fmt: skip
        print(f"Median margin of the detected keywords over that rule: {margin:.1f} (log10); "
              f"the module's confidence is 0.5 at {kws._MARGIN_HALF}.\n")  # fmt: skip
    print(f"Module rule: log10 threshold = {kws._BASE} {kws._PER_PHONE:+}·phones, clamped to "
          f"[{kws._LOWEST}, {kws._HIGHEST}]; options {kws.DECODER_OPTIONS}\n")  # fmt: skip
    with ProcessPoolExecutor(2) as pool:
        results = list(pool.map(spot_group, [(0, job) for job in jobs]))
    found = {d.clip: d.found for r in results for d in r[0]}
    cpu = sum(r[1] for r in results) / (speech_s + other_s)
    thresholds = {k: kws.log10_threshold(n) for k, n in phones.items()}
    got = [Scores(clips, found, k).rates(-1e300) for k in KEYWORDS]  # every hit counts
    print_rates(f"## KeywordSpotter (the module), all 9 keywords at once, 20 ms feeds, restart "
                f"after each hit: {1000 * cpu:.1f} ms CPU per s of audio", phones, thresholds,
                got)  # fmt: skip
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
