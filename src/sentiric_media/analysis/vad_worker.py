"""Silero VAD in a worker process, so its batch never blocks the media clock.

At 300 calls the batched model takes 9-13 ms per frame, which inline holds
every session's next 2 ms slot back (pacing p99 beyond its budget). Here the
media process sends the frame's windows that passed the gate (one write per
frame, a `ProcessLink`) and goes on; the worker runs them through
`SileroStates` (which keeps every stream's recurrent state) and answers with
the probabilities, in order. The bank applies them when they arrive, a few
milliseconds later (`VadBank`); until the worker says it has loaded the
model, while it restarts, or when it is `MAX_PENDING` frames behind, the bank
runs the model inline instead (a stream whose windows went both ways sees
two states: the model recovers within a few windows, as after a reset).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from sentiric_media.analysis.process_link import NICENESS, ProcessLink, frame, unframe
from sentiric_media.analysis.silero import SileroStates, model

MAX_PENDING = 10  # frames (200 ms) the worker may be behind before the bank runs inline
READY = "ready"  # the worker's first frame: the model is loaded (~1 s after the spawn)


class ModelJob(NamedTuple):
    """The gated windows of one rate in one frame."""

    rate: int
    keys: list[int]
    resets: list[bool]
    inputs: np.ndarray  # float32 rows: context + window


class VadWorker:
    """The media side: send a frame's jobs, get their probabilities back in order."""

    def __init__(self) -> None:
        self.link = ProcessLink("vad worker", serve, (), self._replies, on_lost=self._lost)
        self._forget: list[int] = []
        self.on_result: Callable[[list[np.ndarray]], None] = lambda _: None
        self.on_lost: Callable[[], None] = lambda: None
        self.pending = 0  # frames sent, not answered
        self.warm = False  # the worker said it loaded the model

    @property
    def ready(self) -> bool:
        """Whether a frame may go to the worker now (else: run it inline)."""
        if not self.link.running:
            self.link.start_soon()
            return False
        return self.warm and self.pending < MAX_PENDING

    def start_soon(self) -> None:
        """Start the worker now (else the first frame that needs it does)."""
        self.link.start_soon()

    def forget(self, key: int) -> None:
        self._forget.append(key)

    def send(self, jobs: list[ModelJob]) -> None:
        forget, self._forget = self._forget, []
        self.link.send((forget, [(j.rate, j.keys, j.resets, j.inputs.tobytes()) for j in jobs]))
        self.pending += 1

    def _replies(self, probabilities: list[bytes] | str) -> None:
        if probabilities == READY:
            self.warm = True
            return
        self.pending -= 1
        self.on_result([np.frombuffer(p, dtype=np.float32) for p in probabilities])

    def _lost(self) -> None:
        self.pending = 0
        self.warm = False
        self.on_lost()

    def stop(self) -> None:
        self.link.stop()


def serve(sock: socket.socket) -> None:
    """The worker process: every frame's jobs, in order, until the media process closes."""
    os.nice(NICENESS)
    states = SileroStates()
    model()
    buffer = bytearray()
    sock.setblocking(True)
    sock.sendall(frame(READY))
    while data := sock.recv(1 << 20):
        buffer += data
        for forget, jobs in unframe(buffer):
            states.forget(forget)
            out = []
            for rate, keys, resets, raw in jobs:
                inputs = np.frombuffer(raw, dtype=np.float32).reshape(len(keys), -1)
                out.append(states.run(rate, keys, resets, inputs).tobytes())
            sock.sendall(frame(out))
