"""The analysis worker process: every stream's keyword spotter and emotion estimator.

It reads a batch of commands, applies them in order and answers with what
they found and the CPU time they took. Per stream (`StreamAnalysis`), the
speech fed is spotted for keywords as it comes, and cut into pieces for the
emotion estimate: a piece ends with its stretch of speech, or after
`PIECE_S` of a long one. pocketsphinx is imported only by a worker that spots.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING

import numpy as np

from sentiric_media.analysis.process_link import NICENESS, frame, unframe
from sentiric_media.analysis.prosody import ArousalEstimator
from sentiric_media.analysis.worker_protocol import (
    Command,
    EmotionAt,
    Op,
    Reply,
    Wanted,
    WorkerSetup,
)
from sentiric_media.audio.resample import FrameResampler

if TYPE_CHECKING:
    from sentiric_media.analysis.emotion_model import EmotionModel
    from sentiric_media.analysis.keywords import KeywordSpotter, Vocabulary

    Estimator = ArousalEstimator | EmotionModel  # both: estimate(pcm, rate) -> Emotion | None

SPOTTER_RATE = 16000  # pocketsphinx's models
PIECE_S = 2.0  # the longest piece of speech one emotion estimate covers


class _Estimators:
    """Each stream's emotion estimator: its own prosody rule, or the one shared ONNX model."""

    def __init__(self, setup: WorkerSetup) -> None:
        self._model = None
        if setup.emotion_model is not None:
            from sentiric_media.analysis.emotion_model import EmotionModel

            self._model = EmotionModel(setup.emotion_model, setup.emotion_labels)

    def new(self) -> Estimator:
        return self._model if self._model is not None else ArousalEstimator()


class _SpotterBand:
    """The spotter's input: telephone band (≤ 4 kHz) at 16 kHz, whatever the call's codec.

    Its thresholds were tuned on G.711 speech, and measured on espeak-ng
    sentences the same speech at full 16 kHz band was found in none of 8
    tries, against 5 of 8 band-limited: a G.722 or Opus call is narrowed first.
    """

    def __init__(self, rate: int) -> None:
        self._narrow = FrameResampler(rate, 8000) if rate != 8000 else None
        self._up = FrameResampler(8000, SPOTTER_RATE)

    def process(self, pcm: np.ndarray) -> np.ndarray:
        if self._narrow is not None:
            pcm = self._narrow.process(pcm)
        return self._up.process(pcm)


class StreamAnalysis:
    """One stream's analysis in the worker."""

    def __init__(self, wanted: Wanted, rate: int, setup: WorkerSetup,
                 vocabulary: Vocabulary | None, estimators: _Estimators) -> None:  # fmt: skip
        self.rate = rate  # of the speech fed (the session's); positions are in its samples
        self.spotter: KeywordSpotter | None = None
        if wanted.keywords:
            if setup.keyword_model is None or vocabulary is None:
                raise ValueError("keyword spotting is off")
            from sentiric_media.analysis.keywords import KeywordSpotter

            self.spotter = KeywordSpotter(setup.keyword_model, wanted.keywords, vocabulary)
        self._band: _SpotterBand | None = None  # made by the first stretch spotted
        self._next = 0
        self._estimator = estimators.new() if wanted.emotion else None
        self._piece: list[np.ndarray] = []
        self._piece_start = 0
        self._piece_samples = 0

    def feed(self, start: int, pcm: np.ndarray, stream: int) -> list[Reply]:
        replies = []
        if self.spotter is not None:
            replies = self._spot(start, pcm, stream)
        if self._estimator is not None:
            if self._piece and start != self._piece_start + self._piece_samples:
                replies += self._estimate(stream)  # a gap ends the piece
            if not self._piece:
                self._piece_start = start
            self._piece.append(pcm)
            self._piece_samples += len(pcm)
            if self._piece_samples >= PIECE_S * self.rate:
                replies += self._estimate(stream)
        return replies

    def _spot(self, start: int, pcm: np.ndarray, stream: int) -> list[Reply]:
        assert self.spotter is not None
        if self._band is None or start != self._next:  # a new stretch: new filter history
            self._band = _SpotterBand(self.rate)
        self._next = start + len(pcm)
        hits = self.spotter.feed(self._band.process(pcm), start * SPOTTER_RATE // self.rate)
        to_ours = self.rate / SPOTTER_RATE
        return [
            Reply(
                stream,
                keyword=hit._replace(start=int(hit.start * to_ours), end=int(hit.end * to_ours)),
            )
            for hit in hits
        ]

    def pause(self, stream: int) -> list[Reply]:
        if self.spotter is not None:
            self.spotter.pause()
        return self._estimate(stream) if self._piece else []

    def _estimate(self, stream: int) -> list[Reply]:
        pcm = np.concatenate(self._piece)
        start = self._piece_start
        self._piece, self._piece_samples = [], 0
        assert self._estimator is not None
        emotion = self._estimator.estimate(pcm, self.rate)
        return [] if emotion is None else [Reply(stream, emotion=EmotionAt(emotion, start))]


def serve(sock: socket.socket, setup: WorkerSetup) -> None:
    """The worker process's main: until the media process closes its end."""
    os.nice(NICENESS)
    vocabulary = None
    if setup.keyword_model is not None:  # pocketsphinx is loaded only where it is used
        from sentiric_media.analysis.keywords import Vocabulary

        vocabulary = Vocabulary(setup.keyword_model.dictionary)
    estimators = _Estimators(setup)
    streams: dict[int, StreamAnalysis] = {}
    buffer = bytearray()
    sock.setblocking(True)
    while data := sock.recv(1 << 16):
        buffer += data
        for batch in unframe(buffer):
            began = time.process_time()
            replies: list[Reply | float] = []
            for command in batch:
                try:
                    replies += apply(command, streams, setup, vocabulary, estimators)
                except Exception as exc:
                    streams.pop(command.stream, None)
                    replies.append(Reply(command.stream, error=f"{command.op.value}: {exc!r}"))
            replies.append(time.process_time() - began)
            sock.sendall(frame(replies))


def apply(
    command: Command,
    streams: dict[int, StreamAnalysis],
    setup: WorkerSetup,
    vocabulary: Vocabulary | None,
    estimators: _Estimators,
) -> list[Reply]:
    stream = command.stream
    if command.op is Op.OPEN:
        streams.pop(stream, None)
        try:
            wanted, rate = command.args
            streams[stream] = StreamAnalysis(wanted, rate, setup, vocabulary, estimators)
        except (ValueError, RuntimeError) as exc:
            return [Reply(stream, error=str(exc))]
        return []
    analysis = streams.get(stream)
    if analysis is None:
        return []
    if command.op is Op.FEED:
        start, data = command.args
        return analysis.feed(start, np.frombuffer(data, dtype="<i2"), stream)
    if command.op is Op.PAUSE:
        return analysis.pause(stream)
    del streams[stream]
    return []
