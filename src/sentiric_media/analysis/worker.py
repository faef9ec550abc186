"""Speech analysis off the media loop: one worker process for every call of this process.

Keyword spotting (pocketsphinx holds the GIL and costs ~20 ms of CPU per
second of speech) and the emotion estimate would take the media clock's core
if they ran on the loop. They run instead in a child process
(`worker_process`, spawned when the first stream is opened), and the media
process talks to it over a socket pair, batched as the design asks:
everything the sessions queued during a frame (`open`, `feed`, `pause`,
`close`) leaves in one write after the frame (`flush`, a
`MediaClock.after_frame` hook); the worker answers each batch in one write.

What the loop never does: wait for the worker. Writes go through an asyncio
transport; if the worker falls behind by more than `MAX_BACKLOG_BYTES`,
speech is dropped (counted in `dropped_feeds`), never the media clock. If the
worker dies it is started again (`ProcessLink`), and every open stream is
opened again in it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from sentiric_media.analysis.process_link import ProcessLink
from sentiric_media.analysis.worker_process import serve
from sentiric_media.analysis.worker_protocol import (
    Command,
    EmotionAt,
    Op,
    Reply,
    Wanted,
    WorkerSetup,
)

if TYPE_CHECKING:
    from sentiric_media.analysis.keywords import KeywordHit

log = logging.getLogger(__name__)

MAX_BACKLOG_BYTES = 2_000_000  # ~120 s of 8 kHz speech waiting for the worker
MAX_PENDING_COMMANDS = 20_000  # while the worker starts (~1 s): 400 calls' frames
AROUSAL_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, float("inf"))


class Listener(Protocol):
    """Who hears what a stream's analysis found (a session's `SpeechTap`)."""

    def on_keyword(self, hit: KeywordHit) -> None: ...

    def on_emotion(self, found: EmotionAt) -> None: ...

    def on_failure(self, reason: str) -> None: ...


@dataclass
class _Stream:
    wanted: Wanted
    rate: int
    listener: Listener


@dataclass
class WorkerCounters:
    batches: int = 0
    fed_ms: int = 0
    dropped_feeds: int = 0
    hits: int = 0
    emotions: int = 0
    busy_s: float = 0.0  # the worker's CPU time on the batches, as it reports
    # Calls' mean arousal, as a histogram (observed when a call's analysis ends).
    arousal_counts: list[int] = field(default_factory=lambda: [0] * len(AROUSAL_BUCKETS))
    arousal_sum: float = 0.0

    def observe_arousal(self, value: float) -> None:
        bucket = next(i for i, bound in enumerate(AROUSAL_BUCKETS) if value <= bound)
        self.arousal_counts[bucket] += 1
        self.arousal_sum += value


class AnalysisWorker:
    """The media process's handle on the analysis worker process."""

    def __init__(self, setup: WorkerSetup) -> None:
        self.setup = setup
        self.counters = WorkerCounters()
        self._streams: dict[int, _Stream] = {}
        self._next_id = 0
        self._pending: list[Command] = []
        self.link = ProcessLink("analysis worker", serve, (setup,), self.deliver, self._reopen_all)

    # ---- what sessions call ---------------------------------------------------------

    def open(self, wanted: Wanted, rate: int, listener: Listener) -> int:
        """A new stream of speech at `rate`, analysed for `wanted`; findings to `listener`."""
        self._next_id += 1
        stream = self._next_id
        self._streams[stream] = _Stream(wanted, rate, listener)
        self._pending.append(Command(Op.OPEN, stream, (wanted, rate)))
        return stream

    def change(self, stream: int, wanted: Wanted) -> None:
        """Analyse for something else from now on (the subscribers changed)."""
        entry = self._streams.get(stream)
        if entry is not None:
            entry.wanted = wanted
            self._pending.append(Command(Op.OPEN, stream, (wanted, entry.rate)))

    def feed(self, stream: int, start: int, pcm: np.ndarray) -> None:
        """Speech at the stream's rate, `start` in its samples."""
        data = pcm.astype("<i2", copy=False).tobytes()
        self._pending.append(Command(Op.FEED, stream, (start, data)))

    def pause(self, stream: int) -> None:
        self._pending.append(Command(Op.PAUSE, stream))

    def close(self, stream: int) -> None:
        if self._streams.pop(stream, None) is not None:
            self._pending.append(Command(Op.CLOSE, stream))

    # ---- once per frame -------------------------------------------------------------

    def flush(self) -> None:
        """Send what this frame queued, in one write (a `MediaClock.after_frame` hook)."""
        if not self._pending:
            return
        link = self.link
        if not link.running:
            link.start_soon()
            if len(self._pending) > MAX_PENDING_COMMANDS:  # speech waits only so long
                self._drop_feeds()
            return
        if link.backlog > MAX_BACKLOG_BYTES:
            self._drop_feeds()  # the worker is behind; opens and closes still go
        batch, self._pending = self._pending, []
        for command in batch:
            if command.op is Op.FEED and (entry := self._streams.get(command.stream)):
                self.counters.fed_ms += len(command.args[1]) * 500 // entry.rate  # int16
        self.counters.batches += 1
        link.send(batch)

    def _drop_feeds(self) -> None:
        kept = [c for c in self._pending if c.op is not Op.FEED]
        self.counters.dropped_feeds += len(self._pending) - len(kept)
        self._pending = kept

    def deliver(self, replies: list[Reply | float]) -> None:
        for reply in replies:
            if isinstance(reply, float):
                self.counters.busy_s += reply
                continue
            entry = self._streams.get(reply.stream)
            if entry is None:
                continue  # closed meanwhile
            if reply.keyword is not None:
                self.counters.hits += 1
                entry.listener.on_keyword(reply.keyword)
            if reply.emotion is not None:
                self.counters.emotions += 1
                entry.listener.on_emotion(reply.emotion)
            if reply.error:
                entry.listener.on_failure(reply.error)

    def _reopen_all(self) -> None:
        """A new worker knows no stream: open the living ones again, first."""
        self._pending[:0] = [
            Command(Op.OPEN, stream, (entry.wanted, entry.rate))
            for stream, entry in self._streams.items()
        ]

    def stop(self) -> None:
        self.link.stop()
