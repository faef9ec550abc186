"""What the media process and the analysis worker say to each other.

One frame each way per batch (`process_link`): the media process sends a
list of `Command`s, the worker answers with a list of `Reply`s and the CPU
seconds the batch took.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from sentiric_media.analysis.keywords import KeywordHit, KeywordModel
    from sentiric_media.analysis.prosody import Emotion


@dataclass(frozen=True)
class Wanted:
    """What one stream's speech is analysed for."""

    keywords: tuple[str, ...] = ()
    emotion: bool = False

    def __bool__(self) -> bool:
        return bool(self.keywords) or self.emotion


@dataclass(frozen=True)
class WorkerSetup:
    """What the worker process needs to start (sent once, when it is spawned)."""

    keyword_model: KeywordModel | None = None
    emotion_model: str | None = None  # an ONNX file; None: the prosody rule
    emotion_labels: str | None = None


class Op(Enum):
    OPEN = "open"  # (Wanted, rate): a new analysis for the stream, replacing any old one
    FEED = "feed"  # (start, int16 bytes at the rate): contiguous starts are one stretch
    PAUSE = "pause"  # the stretch of speech ended
    CLOSE = "close"


class Command(NamedTuple):
    op: Op
    stream: int
    args: tuple[Any, ...] = ()


class EmotionAt(NamedTuple):
    emotion: Emotion
    start: int  # where the piece of speech began, in the stream's samples


class Reply(NamedTuple):
    stream: int
    keyword: KeywordHit | None = None
    emotion: EmotionAt | None = None
    error: str = ""  # the worker could not set the stream's analysis up
