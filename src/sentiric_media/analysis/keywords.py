"""Keyword spotting on one caller's audio: pocketsphinx keyphrase search (KWS).

This module owns the per-stream spotter and what it needs: where the acoustic
model and the pronunciation dictionary are (`KeywordModel`), which words the
dictionary can spot (`Vocabulary`), the detection threshold for a keyphrase of
n phones (`threshold`) and the decoder itself (`KeywordSpotter`, one per
caller, fed 16 kHz int16 audio). It does no networking and no scheduling: the
pocketsphinx call holds the GIL, so the caller runs spotters in a worker
process.

How KWS decides: each keyphrase is a chain of phone HMMs searched next to a
free phone loop; a keyphrase is spotted when its chain's score beats the
phone loop's by more than its threshold (a likelihood ratio, 10^x). Longer
phrases accumulate more evidence, so the threshold depends on the number of
phones; `bench/keyword_rates.py` measures the rule (espeak-ng speech through
G.711 μ-law, resampled 8 → 16 kHz as on the live path).

Measured there, with these options and rule: nine keywords of 3-13 phones,
18 voice × speed renditions each, are found 44 % of the time on average (11 %
"supervisor" to 94 % "speak to a person") at about 0.5 false alarms per
minute of other speech per keyword, and ~21 ms CPU per second of audio. That
is synthetic speech: real callers will differ, in either direction.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from pocketsphinx import Decoder, get_model_path

RATE = 16000  # the spotter's input rate
FRAME = RATE // 100  # pocketsphinx's frame shift: 10 ms (frate 100)
# Options measured by bench/keyword_rates.py (espeak-ng through G.711):
# - beam 1e-100 (default 1e-48): a long keyphrase trails the phone loop by more
#   than 1e-48 before it ends and was pruned: "supervisor", "representative"
#   and "speak to a person" were never found;
# - kws_plp 1e-10 (phone-loop penalty, default 1e-1): the free phone loop then
#   imitates the keyword less easily; mean detection within the false-alarm
#   budget rose from ~22 % to ~45 % (1e-20 is similar, 1e-30 worse);
# - ds=2 scores every other frame: 19 instead of 33 ms CPU per second of audio;
#   ds=1 found ~2 points more (47 %), topn=2 saves 4 ms and loses ~1 point.
DECODER_OPTIONS: dict[str, Any] = {"ds": 2, "beam": 1e-100, "kws_plp": 1e-10}
# Threshold rule: log10 threshold = _BASE + _PER_PHONE · phones, clamped. With
# the phone-loop penalty the ratio of a short keyword is large (> 1), a long
# one's small: each phone adds evidence for the keyword and a penalty-free
# stretch of the phone loop alike. The line is the best on the bench.
_BASE, _PER_PHONE = 48.0, -7.5
_LOWEST, _HIGHEST = -100.0, 40.5  # 1 phone .. 19 phones
# Confidence: a hit's margin over its threshold (log10 units) m maps to
# m / (m + _MARGIN_HALF), so a hit at the threshold is 0 and a typical espeak
# hit on the bench (margin ~_MARGIN_HALF) is 0.5.
_MARGIN_HALF = 16.0
# The decoder's initial cepstral mean (CMN): pocketsphinx starts from one for
# wideband speech (40,3,-1,0,...) and adapts only at each utterance's end, so a
# caller's first words were decoded with the wrong mean: "operator" scored
# 1e40 lower than on its second hearing. This is the mean it converges to on
# telephone-band speech resampled to 16 kHz (espeak-ng through G.711, six voices
# averaged); a real caller's voice moves it from there.
TELEPHONE_CMN = "54.8,29.2,-35.8,48.8,-31.0,2.7,7.2,-32.8,14.6,-13.7,5.1,3.8,-11.4"
_STEP = 320  # samples per decoder call: a hit restarts the search within 20 ms
# pocketsphinx reports a detection's score as logmath_exp(diff - KWS_MAX), diff
# the keyphrase-minus-phone-loop score in units of 2^10 logmath steps (base
# 1.0001), KWS_MAX = 1500 (kws_search.h). This undoes it into log10.
_KWS_MAX = 1500
_LOG_BASE = math.log(1.0001)
_LOG10_PER_UNIT = 1024 * math.log10(1.0001)


@dataclass(frozen=True)
class KeywordModel:
    """Where the acoustic model and the pronunciation dictionary are."""

    hmm: str  # acoustic model directory
    dictionary: str  # pronunciation dictionary file

    @classmethod
    def default(cls) -> KeywordModel:
        """The US-English model inside the pocketsphinx wheel."""
        root = Path(get_model_path()) / "en-us"
        return cls(str(root / "en-us"), str(root / "cmudict-en-us.dict"))

    @classmethod
    def from_path(cls, path: str) -> KeywordModel:
        """A model directory: exactly one acoustic model and one dictionary in it.

        Layout (the pocketsphinx wheel's own ``model/en-us`` has it)::

            path/
              <any name>/     acoustic model: mdef, means, variances,
                              transition_matrices, feat.params, ...
              <any name>.dict pronunciation dictionary ("word PH1 PH2 ...")

        `path` itself may be the acoustic model directory when the dictionary
        lies next to mdef. A CMU Sphinx ``.dic`` is accepted as well.
        """
        root = Path(path)
        if not root.is_dir():
            raise ValueError(f"keyword model {path!r}: not a directory")
        dictionaries = sorted(p for p in root.iterdir() if p.suffix in (".dict", ".dic"))
        if len(dictionaries) != 1:
            found = ", ".join(p.name for p in dictionaries) or "none"
            raise ValueError(
                f"keyword model {path!r}: needs exactly one *.dict file (found {found})"
            )
        if _is_acoustic_model(root):
            hmms = [root]
        else:
            hmms = sorted(p for p in root.iterdir() if p.is_dir() and _is_acoustic_model(p))
        if len(hmms) != 1:
            found = ", ".join(p.name for p in hmms) or "none"
            raise ValueError(
                f"keyword model {path!r}: needs exactly one acoustic model directory"
                f" (with mdef, means, variances, transition_matrices; found {found})"
            )
        return cls(str(hmms[0]), str(dictionaries[0]))


def _is_acoustic_model(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _MODEL_FILES)


_MODEL_FILES = ("mdef", "means", "variances", "transition_matrices")


class Vocabulary:
    """The words a model's dictionary can spot."""

    def __init__(self, dictionary: str) -> None:
        # Parsing the 135k-line CMU dictionary into a dict costs ~150 ms; a
        # lookup is instead a str.find in the lower-cased text (read + lower
        # ~15 ms once, ≤ 5 ms per new word, then cached).
        self.path = dictionary
        text = "\n" + Path(dictionary).read_text(encoding="utf-8", errors="replace")
        lower = text.lower()
        # Phones are case-sensitive (the model's mdef): positions found in the
        # lower-cased copy are read from the original, when lower() kept them.
        self._text, self._lower = (text, lower) if len(lower) == len(text) else (lower, lower)
        self._cache: dict[str, str | None] = {}

    def _lookup(self, word: str) -> str | None:
        """The first pronunciation of a lower-case word, or None.

        Variants ("word(2)") are left out: KWS searches only the first.
        """
        if word in self._cache:
            return self._cache[word]
        phones = None
        for separator in () if word.endswith(")") else (" ", "\t"):
            at = self._lower.find(f"\n{word}{separator}")
            if at >= 0:
                begin = at + 1 + len(word)
                end = self._text.find("\n", begin)
                phones = self._text[begin : end if end >= 0 else None].strip() or None
                break
        self._cache[word] = phones
        return phones

    def phones(self, phrase: str) -> list[str] | None:
        """The phones of a word or phrase (whitespace-separated words), None if any is missing."""
        out: list[str] = []
        for word in phrase.lower().split():
            phones = self._lookup(word)
            if phones is None:
                return None
            out.extend(phones.split())
        return out or None

    def unknown(self, phrases: Iterable[str]) -> list[str]:
        """The words missing from the dictionary, in order, deduplicated."""
        missing: dict[str, None] = {}
        for phrase in phrases:
            for word in phrase.lower().split():
                if self._lookup(word) is None:
                    missing[word] = None
        return list(missing)

    def entry(self, word: str) -> str | None:
        """The dictionary line of a (lower-case) word, as the decoder reads it."""
        phones = self._lookup(word)
        return None if phones is None else f"{word} {phones}"


def log10_threshold(phone_count: int) -> float:
    """`threshold` as a power of ten."""
    return min(_HIGHEST, max(_LOWEST, _BASE + _PER_PHONE * phone_count))


def threshold(phone_count: int) -> float:
    """The KWS threshold for a keyphrase of that many phones (bench/keyword_rates.py)."""
    return 10.0 ** log10_threshold(phone_count)


class KeywordHit(NamedTuple):
    """A spotted keyword.

    `confidence` is m / (m + 16), m = log10(score) − log10(threshold) ≥ 0: how
    far the keyphrase beat the phone loop beyond what was required (0 at the
    threshold, 0.5 for a typical clear hit, → 1). It ranks hits; it is not a
    calibrated probability.
    """

    keyword: str  # as the caller asked for it (original spelling, stripped)
    confidence: float  # 0..1, see above
    start: int  # where the keyword began, in 16 kHz samples, in the caller's units
    end: int


def build_decoder(
    model: KeywordModel,
    phrases: dict[str, float],
    vocabulary: Vocabulary,
    options: dict[str, Any] | None = None,
) -> Decoder:
    """A KWS decoder for lower-case phrases, each with its threshold (all words known).

    The decoder gets a dictionary of just the phrases' words: loading the
    full CMU dictionary costs ~180 ms and its memory per decoder; this costs
    ~20 ms and ~5 MB (the acoustic model).
    """
    words = dict.fromkeys(word for phrase in phrases for word in phrase.split())
    with tempfile.TemporaryDirectory(prefix="kws-") as folder:
        dictionary = Path(folder) / "words.dict"
        dictionary.write_text("".join(f"{vocabulary.entry(w)}\n" for w in words), "utf-8")
        keyphrases = Path(folder) / "phrases.kws"
        keyphrases.write_text("".join(f"{p} /{t:.3e}/\n" for p, t in phrases.items()), "utf-8")
        return Decoder(
            hmm=model.hmm,
            dict=str(dictionary),
            kws=str(keyphrases),
            samprate=RATE,
            logfn="/dev/null",  # pocketsphinx logs every utterance otherwise
            cmninit=TELEPHONE_CMN,
            **(DECODER_OPTIONS if options is None else options),
        )


def score_log10(segment_prob: float) -> float:
    """A KWS detection's keyphrase-over-phone-loop likelihood ratio, as log10."""
    units = math.log(max(segment_prob, 1e-300)) / _LOG_BASE + _KWS_MAX
    return units * _LOG10_PER_UNIT


class KeywordSpotter:
    """One caller's keyphrase decoder."""

    def __init__(
        self, model: KeywordModel, keywords: Sequence[str], vocabulary: Vocabulary
    ) -> None:
        requests: dict[str, str] = {}  # decoder phrase → the caller's spelling
        for keyword in keywords:
            phrase = " ".join(keyword.lower().split())
            if phrase:
                requests.setdefault(phrase, keyword.strip())
        if not requests:
            raise ValueError("keyword spotting needs at least one keyword")
        if missing := vocabulary.unknown(requests):
            raise ValueError(
                f"not in the pronunciation dictionary {vocabulary.path}: {', '.join(missing)}"
            )
        self.keywords: tuple[str, ...] = tuple(requests.values())
        self._requests = requests
        self._thresholds = {
            phrase: log10_threshold(len(vocabulary.phones(phrase) or ())) for phrase in requests
        }
        self._decoder = build_decoder(
            model, {p: 10.0**t for p, t in self._thresholds.items()}, vocabulary
        )
        self._origin = 0  # caller's sample index of the utterance's frame 0
        self._next: int | None = None  # where the next contiguous feed starts; None: no utterance

    def feed(self, pcm: np.ndarray, start: int) -> list[KeywordHit]:
        """Decode int16 mono 16 kHz audio whose first sample is the caller's `start`.

        Contiguous feeds are one stretch of speech; a gap begins a new
        utterance. Each occurrence is reported once: after a hit the search
        restarts, so its detections are not seen again.
        """
        if self._next is not None and start != self._next:
            self.pause()
        if self._next is None:
            self._begin(start)
        samples = np.ascontiguousarray(pcm, dtype=np.int16)
        hits: list[KeywordHit] = []
        for offset in range(0, len(samples), _STEP):
            piece = samples[offset : offset + _STEP]
            self._decoder.process_raw(piece.tobytes(), False, False)
            self._next = start + offset + len(piece)
            # hyp() is only non-empty once a detection is kws_delay frames old
            # (pocketsphinx may still replace it by a better overlapping one).
            if self._decoder.hyp() is not None:
                hits.extend(self._hits())
                self._decoder.end_utt()
                self._begin(self._next)
        return hits

    def pause(self) -> None:
        """The stretch of speech ended: finish the utterance (report nothing more from it)."""
        if self._next is not None:
            self._decoder.end_utt()
            self._next = None

    def _begin(self, start: int) -> None:
        self._decoder.start_utt()
        self._origin = start
        self._next = start

    def _hits(self) -> list[KeywordHit]:
        hits = []
        for segment in self._decoder.seg() or ():
            phrase = segment.word.strip()
            if phrase not in self._requests:
                continue
            margin = max(0.0, score_log10(segment.prob) - self._thresholds[phrase])
            hits.append(
                KeywordHit(
                    self._requests[phrase],
                    margin / (margin + _MARGIN_HALF),
                    self._origin + segment.start_frame * FRAME,
                    self._origin + (segment.end_frame + 1) * FRAME,
                )
            )
        return hits
