"""Voice activity of the caller: an energy gate, then Silero VAD, batched over all sessions.

Each stream's audio (8 or 16 kHz, the session's rate: nothing is resampled)
is cut into Silero's 32 ms windows (256 or 512 samples; the model also reads
the 4 ms before each window). Once per frame the `VadBank` takes every window
that came in, from every stream:

- a window quieter than `GATE_DBFS` is silence without asking the model
  (probability 0); a stream whose gate stayed shut `RESET_MS` starts the
  model afresh, as the silence would have;
- the others go through the model (`silero.SileroStates`: one onnxruntime
  run for the whole batch, the recurrent states of the streams stacked),
  in the VAD worker process when there is one (`vad_worker`: the probabilities
  come back a few milliseconds later, and are applied in order), else inline.

Each probability goes to its stream's `SpeechTracker` (`analysis/speech.py`),
which turns them into speech start and end with hysteresis.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sentiric_media.analysis.silero import CONTEXT, SileroStates
from sentiric_media.analysis.speech import SpeechSettings, SpeechTracker, Transition
from sentiric_media.analysis.vad_worker import ModelJob, VadWorker

GATE_DBFS = -55.0  # a window's RMS below this is silence (a -40 dBm0 hiss passes)
RESET_MS = 500
_WINDOW_MS = 32
_KEYS = itertools.count(1)


def supported(rate: int) -> bool:
    return rate in CONTEXT


class VadStream:
    """One stream's place in the bank: samples short of a window, context, tracker."""

    __slots__ = (
        "_pending",
        "_pending_at",
        "context",
        "key",
        "quiet",
        "rate",
        "released",
        "report",
        "tracker",
        "window",
    )

    def __init__(
        self, rate: int, settings: SpeechSettings, report: Callable[[Transition], None]
    ) -> None:
        if not supported(rate):
            raise ValueError(f"voice activity at {rate} Hz: only 8000 or 16000")
        self.key = next(_KEYS)  # its model state's name (in this process or the worker)
        self.rate = rate
        self.window = rate * _WINDOW_MS // 1000
        self.context = np.zeros(CONTEXT[rate], dtype=np.float32)
        self.quiet = 0  # samples the gate has been shut
        self.tracker = SpeechTracker(settings, rate)
        self.report = report
        self.released = False
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_at: int | None = None  # position of the first pending sample

    def cut(self, position: int, pcm: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """The whole windows of new audio, with their positions (a jump restarts)."""
        if self._pending_at is None or position != self._pending_at + len(self._pending):
            self._pending = pcm[:0]
            self._pending_at = position
        samples = np.concatenate([self._pending, pcm]) if len(self._pending) else pcm
        count = len(samples) // self.window
        start = self._pending_at
        self._pending = samples[count * self.window :]
        self._pending_at = start + count * self.window
        return [
            (start + k * self.window, samples[k * self.window : (k + 1) * self.window])
            for k in range(count)
        ]


Window = tuple[VadStream, int, np.ndarray]  # (stream, position, samples)


@dataclass
class _Frame:
    """One frame's windows, waiting for (or holding) their probabilities."""

    windows: list[Window]
    probabilities: np.ndarray
    jobs: list[tuple[list[int], ModelJob]] = field(default_factory=list)
    done: bool = False


class VadBank:
    """Voice activity of many streams: `add` their audio, then `run` once per frame."""

    def __init__(self, gate_dbfs: float = GATE_DBFS, worker: VadWorker | None = None) -> None:
        self._gate = (32768 * 10 ** (gate_dbfs / 20)) ** 2  # mean square
        self._windows: list[Window] = []
        self.silero = SileroStates()  # the states of windows modelled inline
        self._worker = worker
        self._waiting: deque[_Frame] = deque()  # in order; the head is applied first
        if worker is not None:
            worker.on_result = self._answered
            worker.on_lost = self._lost
        self.model_windows = 0  # windows the model ran on (the gate let through)
        self.gated_windows = 0
        self.inline_frames = 0  # with a worker: frames it could not take
        self.lost_windows = 0  # sent to a worker that died before answering

    def stream(
        self, rate: int, settings: SpeechSettings, report: Callable[[Transition], None]
    ) -> VadStream:
        return VadStream(rate, settings, report)

    def release(self, stream: VadStream) -> None:
        """The stream ended: windows still waiting are dropped, speech in progress ends."""
        stream.released = True
        self.silero.forget([stream.key])
        if self._worker is not None:
            self._worker.forget(stream.key)
        if (transition := stream.tracker.finish()) is not None:
            stream.report(transition)

    def add(self, stream: VadStream, position: int, pcm: np.ndarray) -> None:
        for start, window in stream.cut(position, pcm):
            self._windows.append((stream, start, window))

    def run(self) -> None:
        """Gate every window that came in, then the model on the rest (worker or inline).

        Once per frame: the model's cost per window falls with the batch (at
        8 kHz ~240 µs alone, ~57 µs in a batch of 150, ~44 µs in one of 300), so
        a frame's windows go in one batch. Inline, that batch blocks the loop
        (9-13 ms at 300 calls); an executor thread fared worse (it competed with
        the loop for the GIL), hence the worker process.
        """
        windows, self._windows = self._windows, []
        windows = [w for w in windows if not w[0].released]
        if not windows:
            return
        frame = self._gate_frame(windows)
        worker = self._worker
        if not frame.jobs:
            frame.done = True
        elif worker is not None and worker.ready:
            worker.send([job for _, job in frame.jobs])
        else:
            self.inline_frames += worker is not None
            for indices, job in frame.jobs:
                frame.probabilities[indices] = self.silero.run(*job)
            frame.done = True
        self._waiting.append(frame)
        self._apply_done()

    def _gate_frame(self, windows: list[Window]) -> _Frame:
        """The energy gate and each stream's context, in order; the model's jobs by rate."""
        frame = _Frame(windows, np.zeros(len(windows), dtype=np.float32))
        # Windows of one rate have one length; two rates in one frame are stacked apart.
        by_rate: dict[int, list[int]] = {}
        for index, (stream, _, _) in enumerate(windows):
            by_rate.setdefault(stream.rate, []).append(index)
        for rate, indices in by_rate.items():
            rows = np.stack([windows[i][2] for i in indices]).astype(np.float32) / 32768.0
            energy = np.einsum("ij,ij->i", rows, rows) / rows.shape[1] * 32768.0**2
            reset_after = RESET_MS * rate // 1000
            chosen, loud, keys, resets, contexts = [], [], [], [], []
            for row, index in enumerate(indices):
                stream = windows[index][0]
                if energy[row] >= self._gate:
                    reset = stream.quiet >= reset_after
                    if reset:
                        stream.context[:] = 0.0
                    stream.quiet = 0
                    chosen.append(index)
                    loud.append(row)
                    keys.append(stream.key)
                    resets.append(reset)
                    contexts.append(stream.context)
                else:
                    stream.quiet += stream.window
                stream.context = rows[row, -len(stream.context) :].copy()
            self.model_windows += len(chosen)
            self.gated_windows += len(indices) - len(chosen)
            if chosen:
                inputs = np.concatenate([np.stack(contexts), rows[loud]], axis=1)
                frame.jobs.append((chosen, ModelJob(rate, keys, resets, inputs)))
        return frame

    def _answered(self, results: list[np.ndarray]) -> None:
        """The worker's probabilities of the oldest frame it was sent."""
        frame = next((f for f in self._waiting if not f.done), None)
        if frame is None:
            return  # a frame given up when a worker died
        for (indices, _), probabilities in zip(frame.jobs, results, strict=True):
            frame.probabilities[indices] = probabilities
        frame.done = True
        self._apply_done()

    def _lost(self) -> None:
        """The worker died: what it was sent counts as silence (its states are gone too)."""
        for frame in self._waiting:
            if not frame.done:
                self.lost_windows += sum(len(indices) for indices, _ in frame.jobs)
                frame.done = True
        self._apply_done()

    def _apply_done(self) -> None:
        while self._waiting and self._waiting[0].done:
            frame = self._waiting.popleft()
            self._apply(frame.windows, frame.probabilities.tolist())

    def _apply(self, windows: list[Window], probabilities: list[float]) -> None:
        """The trackers, in each stream's order."""
        for (stream, start, _), probability in zip(windows, probabilities, strict=True):
            if stream.released:
                continue
            transition = stream.tracker.update(start, stream.window, probability)
            if transition is not None:
                stream.report(transition)
