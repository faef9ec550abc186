"""Speech analysis of this process: what StreamEvents subscribers may ask, and the worker.

`SpeechAnalysis` builds the analysis worker from the settings (keyword
spotting with the pocketsphinx model, the emotion estimate with the prosody
rule or an ONNX model) and checks the keywords a subscriber asks for before
its subscription begins: normalised, and refused, naming them, when the
model's pronunciation dictionary lacks a word. The media process reads that
dictionary once, in a thread (≈170 ms for the US-English one: never on the
loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sentiric_media.analysis.worker import AnalysisWorker
from sentiric_media.analysis.worker_protocol import WorkerSetup
from sentiric_media.config import Settings
from sentiric_media.errors import FailedPrecondition, InvalidArgument

if TYPE_CHECKING:
    from sentiric_media.analysis.keywords import Vocabulary

MAX_KEYWORDS = 50  # per subscriber: a decoder with hundreds of phrases false-alarms constantly
MAX_KEYWORD_CHARS = 64


def normalise(keywords: Iterable[str]) -> tuple[str, ...]:
    """Lower case, single spaces, no empties, no repeats (first spelling kept in order)."""
    words: dict[str, None] = {}
    for keyword in keywords:
        word = " ".join(keyword.lower().split())
        if word:
            words.setdefault(word)
    return tuple(words)


def worker_setup(settings: Settings) -> WorkerSetup:
    """What the worker runs, from the settings; a bad model path fails here, at start-up."""
    keyword_model = None
    if settings.keyword_spotting:
        from sentiric_media.analysis.keywords import KeywordModel

        path = settings.keyword_model
        keyword_model = (
            KeywordModel.default() if path is None else KeywordModel.from_path(str(path))
        )
    emotion_model = labels = None
    if settings.emotion and settings.emotion_model is not None:
        from sentiric_media.analysis.emotion_model import EmotionModel

        emotion_model = str(settings.emotion_model)
        labels = str(settings.emotion_labels) if settings.emotion_labels else None
        EmotionModel(emotion_model, labels)  # refuse a broken model now, not in the worker
    return WorkerSetup(keyword_model, emotion_model, labels)


class SpeechAnalysis:
    """Keyword spotting and emotion of this process, and their worker (None if both off)."""

    def __init__(self, settings: Settings) -> None:
        self.setup = worker_setup(settings)
        self.emotion = settings.emotion
        wanted = self.setup.keyword_model is not None or self.emotion
        self.worker = AnalysisWorker(self.setup) if wanted else None
        self._vocabulary: asyncio.Future[Vocabulary] | None = None  # read on first use

    async def check(self, keywords: tuple[str, ...]) -> None:
        """Refuse what cannot be spotted, naming it."""
        if not keywords:
            return
        model = self.setup.keyword_model
        if model is None:
            raise FailedPrecondition(
                f"keywords {list(keywords)}: keyword spotting is off "
                "(MEDIA_SERVICE_KEYWORD_SPOTTING=false)"
            )
        if len(keywords) > MAX_KEYWORDS:
            raise InvalidArgument(f"{len(keywords)} keywords: at most {MAX_KEYWORDS}")
        long = [word for word in keywords if len(word) > MAX_KEYWORD_CHARS]
        if long:
            shown = long[0][:80]
            raise InvalidArgument(f"keyword {shown!r}: at most {MAX_KEYWORD_CHARS} characters")
        if self._vocabulary is None:
            from sentiric_media.analysis.keywords import Vocabulary  # pocketsphinx: on first use

            loading = asyncio.to_thread(Vocabulary, model.dictionary)
            self._vocabulary = asyncio.ensure_future(loading)
        unknown = (await asyncio.shield(self._vocabulary)).unknown(keywords)
        if unknown:
            raise InvalidArgument(
                f"keywords: {', '.join(repr(word) for word in unknown)} not in the "
                f"dictionary of the keyword model ({model.dictionary})"
            )

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
