"""Keyword spotting: the dictionary and model lookups, the threshold rule, and the spotter
on espeak-ng speech through G.711 μ-law (8 kHz, then 16 kHz as the live path resamples)."""

from __future__ import annotations

import io
import itertools
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from sentiric_media.analysis.keywords import (
    RATE,
    KeywordModel,
    KeywordSpotter,
    Vocabulary,
    threshold,
)
from sentiric_media.audio.resample import FrameResampler
from sentiric_media.media.codecs.g711 import ULAW
from tests.support import require

MS = RATE // 1000
TOLERANCE = 300 * MS
# A rendition the spotter finds with a wide margin (its score beats the threshold by
# ~1e45): these tests check the plumbing; bench/keyword_rates.py measures how often
# keywords are found across voices and speeds (about half the time).
VOICE, SPEED = "en-us", 150
PREFIX = "Hello, I would like to talk to the"
KEYWORD_PART = "operator, thank you."
OTHER = "The weather has been terrible all week, so the flight was delayed."


def espeak_8k(text: str) -> np.ndarray:
    """espeak-ng speech at 8 kHz, its leading and trailing silence trimmed."""
    command = ["espeak-ng", "-v", VOICE, "-s", str(SPEED), "--stdout", text]
    wav = subprocess.run(command, check=True, capture_output=True, timeout=60).stdout
    with wave.open(io.BytesIO(wav)) as handle:
        rate = handle.getframerate()
        pcm = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2")
    pcm8 = soxr.resample(pcm.astype(np.float32), rate, 8000)
    loud = np.flatnonzero(np.abs(pcm8) > 300)
    return np.clip(pcm8[loud[0] : loud[-1] + 1], -32768, 32767).astype(np.int16)


def phone_line(pcm8: np.ndarray) -> np.ndarray:
    """Through G.711 μ-law, then 8 → 16 kHz 20 ms at a time, as the live path does."""
    decoded = ULAW.decode(ULAW.encode(pcm8))
    decoded = np.concatenate((decoded, np.zeros(-len(decoded) % 160, np.int16)))
    resampler = FrameResampler(8000, RATE)
    return np.concatenate([resampler.process(frame) for frame in decoded.reshape(-1, 160)])


def silence_8k(ms: int) -> np.ndarray:
    return np.zeros(8 * ms, np.int16)


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary(KeywordModel.default().dictionary)


@pytest.fixture(scope="module")
def speech() -> dict[str, tuple[np.ndarray, int]]:
    """16 kHz audio and where (sample) the keyword part starts: -1 when there is none."""
    require("espeak-ng")
    prefix, keyword = espeak_8k(PREFIX), espeak_8k(KEYWORD_PART)
    with_keyword = np.concatenate(
        (silence_8k(300), prefix, silence_8k(60), keyword, silence_8k(400))
    )
    other = np.concatenate((silence_8k(300), espeak_8k(OTHER), silence_8k(400)))
    at = 2 * (len(silence_8k(300)) + len(prefix) + len(silence_8k(60)))
    return {"keyword": (phone_line(with_keyword), at), "other": (phone_line(other), -1)}


def spot(spotter: KeywordSpotter, pcm: np.ndarray, start: int = 0, chunk: int = 320) -> list:
    hits = []
    for offset in range(0, len(pcm), chunk):
        hits += spotter.feed(pcm[offset : offset + chunk], start + offset)
    return hits


# --- Vocabulary ---------------------------------------------------------------------------


def test_phones_of_words_and_phrases_ignore_case_and_spacing(vocabulary: Vocabulary) -> None:
    assert vocabulary.phones("operator") == ["AA", "P", "ER", "EY", "T", "ER"]
    assert vocabulary.phones("  OpErAtOr ") == ["AA", "P", "ER", "EY", "T", "ER"]
    person = ["P", "ER", "S", "AH", "N"]
    assert vocabulary.phones("Speak to\ta  PERSON") == [
        "S",
        "P",
        "IY",
        "K",
        "T",
        "UW",
        "AH",
        *person,
    ]
    assert vocabulary.phones("speak to a zorblaxian") is None
    assert vocabulary.phones("   ") is None


def test_unknown_words_in_order_without_repeats(vocabulary: Vocabulary) -> None:
    asked = ["help", "Zorblax please", "speak to a QWERTYX", "zorblax", "operator"]
    assert vocabulary.unknown(asked) == ["zorblax", "qwertyx"]
    assert vocabulary.unknown(["help", "Speak To A Person"]) == []


def test_a_dictionary_of_any_case_with_variants_and_tabs(tmp_path: Path) -> None:
    path = tmp_path / "small.dict"
    path.write_text("HELLO HH AH L OW\nhello(2) HH EH L OW\nworld\tW ER L D\nfirst F ER S T\n")
    vocabulary = Vocabulary(str(path))
    assert vocabulary.phones("hello World") == ["HH", "AH", "L", "OW", "W", "ER", "L", "D"]
    assert vocabulary.phones("first") == ["F", "ER", "S", "T"]
    assert vocabulary.unknown(["hello(2)", "hell", "worl"]) == ["hello(2)", "hell", "worl"]


# --- KeywordModel -------------------------------------------------------------------------


def test_the_default_model_and_its_directory_layout() -> None:
    model = KeywordModel.default()
    assert (Path(model.hmm) / "mdef").is_file()
    assert Path(model.dictionary).is_file()
    assert KeywordModel.from_path(str(Path(model.hmm).parent)) == model


def make_model_dir(root: Path, dictionaries: int = 1, acoustic: bool = True) -> Path:
    default = KeywordModel.default()
    root.mkdir()
    if acoustic:
        (root / "tr").symlink_to(default.hmm, target_is_directory=True)
    for n in range(dictionaries):
        (root / f"words{n}.dict").write_text("merhaba M EH R HH AA B AA\n")
    return root


def test_from_path_finds_the_model_and_dictionary(tmp_path: Path) -> None:
    root = make_model_dir(tmp_path / "turkish")
    model = KeywordModel.from_path(str(root))
    assert model == KeywordModel(str(root / "tr"), str(root / "words0.dict"))


@pytest.mark.parametrize(
    ("dictionaries", "acoustic", "complaint"),
    [(0, True, "dict"), (2, True, "dict"), (1, False, "acoustic model")],
)
def test_from_path_rejects_an_unusable_directory(
    tmp_path: Path, dictionaries: int, acoustic: bool, complaint: str
) -> None:
    root = make_model_dir(tmp_path / "model", dictionaries, acoustic)
    with pytest.raises(ValueError, match=complaint) as error:
        KeywordModel.from_path(str(root))
    assert str(root) in str(error.value)


def test_from_path_rejects_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory") as error:
        KeywordModel.from_path(str(tmp_path / "nowhere"))
    assert "nowhere" in str(error.value)


# --- threshold ----------------------------------------------------------------------------


def test_threshold_is_a_probability_ratio_falling_with_length() -> None:
    values = [threshold(n) for n in range(1, 30)]
    assert all(0.0 < v < 1e50 and np.isfinite(v) for v in values)
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert values[2] > values[11]  # "yes" (3 phones) must beat "representative" (13)


# --- KeywordSpotter -----------------------------------------------------------------------


def test_unknown_keywords_are_named(vocabulary: Vocabulary) -> None:
    with pytest.raises(ValueError, match="zorblax, qwertyx"):
        KeywordSpotter(KeywordModel.default(), ["help", "Zorblax", "qwertyx now"], vocabulary)
    with pytest.raises(ValueError, match="at least one"):
        KeywordSpotter(KeywordModel.default(), ["  "], vocabulary)


def test_keywords_keep_the_callers_spelling(vocabulary: Vocabulary) -> None:
    spotter = KeywordSpotter(
        KeywordModel.default(), [" Operator ", "operator", "Speak  to a Person"], vocabulary
    )
    assert spotter.keywords == ("Operator", "Speak  to a Person")


def test_the_keyword_is_found_where_it_was_said(
    vocabulary: Vocabulary, speech: dict[str, tuple[np.ndarray, int]]
) -> None:
    pcm, at = speech["keyword"]
    spotter = KeywordSpotter(KeywordModel.default(), ["Operator", "cancel"], vocabulary)
    hits = spot(spotter, pcm, start=48_000)
    assert [hit.keyword for hit in hits] == ["Operator"]  # once, and not the unspoken one
    hit = hits[0]
    assert abs(hit.start - (48_000 + at)) <= TOLERANCE
    assert hit.start < hit.end <= 48_000 + len(pcm)
    assert 0.0 <= hit.confidence <= 1.0


def test_any_chunk_length_finds_it_too(
    vocabulary: Vocabulary, speech: dict[str, tuple[np.ndarray, int]]
) -> None:
    pcm, at = speech["keyword"]
    for chunk in (len(pcm), 1234):
        spotter = KeywordSpotter(KeywordModel.default(), ["operator"], vocabulary)
        hits = spot(spotter, pcm, chunk=chunk)
        assert [hit.keyword for hit in hits] == ["operator"]
        assert abs(hits[0].start - at) <= TOLERANCE


def test_each_occurrence_is_reported_once(
    vocabulary: Vocabulary, speech: dict[str, tuple[np.ndarray, int]]
) -> None:
    pcm, at = speech["keyword"]
    spotter = KeywordSpotter(KeywordModel.default(), ["operator"], vocabulary)
    hits = spot(spotter, np.concatenate((pcm, pcm)))
    assert [hit.keyword for hit in hits] == ["operator", "operator"]
    assert abs(hits[1].start - (len(pcm) + at)) <= TOLERANCE


def test_speech_without_the_keyword_silence_and_noise_give_nothing(
    vocabulary: Vocabulary, speech: dict[str, tuple[np.ndarray, int]]
) -> None:
    rng = np.random.default_rng(5)
    noise = phone_line(np.clip(rng.normal(0, 1000, 8000 * 5), -32768, 32767).astype(np.int16))
    spotter = KeywordSpotter(KeywordModel.default(), ["operator", "cancel"], vocabulary)
    position = 0
    for pcm in (speech["other"][0], np.zeros(5 * RATE, np.int16), noise):
        assert spot(spotter, pcm, position) == []
        spotter.pause()
        position += len(pcm)


def test_pause_and_gap_end_the_utterance(
    vocabulary: Vocabulary, speech: dict[str, tuple[np.ndarray, int]]
) -> None:
    """The keyword cut in two by a pause (or a jump in position) is no keyword."""
    pcm, at = speech["keyword"]
    middle = at + 250 * MS  # inside "operator"
    paused = KeywordSpotter(KeywordModel.default(), ["operator"], vocabulary)
    assert spot(paused, pcm[:middle]) == []
    paused.pause()
    assert spot(paused, pcm[middle:], middle) == []
    gapped = KeywordSpotter(KeywordModel.default(), ["operator"], vocabulary)
    assert spot(gapped, pcm[:middle]) == []
    assert spot(gapped, pcm[middle:], middle + 320) == []
    contiguous = KeywordSpotter(KeywordModel.default(), ["operator"], vocabulary)
    assert spot(contiguous, pcm[:middle]) + spot(contiguous, pcm[middle:], middle) != []
