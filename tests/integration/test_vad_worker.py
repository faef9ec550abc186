"""The VAD worker process: the same speech starts and ends as the model inline; a worker
that dies is started again, what it held counts as silence, and the bank never stops."""

from __future__ import annotations

import asyncio
import os
import signal

import numpy as np

from sentiric_media.analysis.speech import SpeechSettings, Transition
from sentiric_media.analysis.vad import VadBank
from sentiric_media.analysis.vad_worker import VadWorker
from tests.integration.helpers import speech, wait_until

RATE = 8000
FRAME = 160


async def _feed(banks: list[VadBank], streams: list, audio: np.ndarray) -> None:
    for start in range(0, len(audio) - FRAME + 1, FRAME):
        for bank, stream in zip(banks, streams, strict=True):
            bank.add(stream, start, audio[start : start + FRAME])
            bank.run()
        await asyncio.sleep(0.002)  # the worker's answers arrive meanwhile


def _summary(transitions: list[Transition]) -> list[tuple[str, int]]:
    return [(t.change.name, t.onset) for t in transitions]


async def test_the_worker_finds_what_the_model_inline_finds():
    worker = VadWorker()
    worker.start_soon()
    try:
        assert await wait_until(lambda: worker.warm, 20.0)
        remote, inline = VadBank(worker=worker), VadBank()
        heard_remote: list[Transition] = []
        heard_inline: list[Transition] = []
        streams = [
            remote.stream(RATE, SpeechSettings(), heard_remote.append),
            inline.stream(RATE, SpeechSettings(), heard_inline.append),
        ]
        await _feed([remote, inline], streams, speech()[: RATE * 6])
        assert await wait_until(lambda: worker.pending == 0, 5.0)
        assert remote.inline_frames == 0
        assert len(heard_inline) >= 2
        assert _summary(heard_remote) == _summary(heard_inline)
    finally:
        worker.stop()


async def test_a_dead_worker_is_replaced_and_the_bank_goes_on():
    worker = VadWorker()
    worker.start_soon()
    try:
        assert await wait_until(lambda: worker.warm, 20.0)
        bank = VadBank(worker=worker)
        heard: list[Transition] = []
        stream = bank.stream(RATE, SpeechSettings(), heard.append)
        audio = speech()[: RATE * 4]
        pid = worker.link.pid
        assert pid is not None
        await _feed([bank], [stream], audio[: RATE * 2])
        os.kill(pid, signal.SIGKILL)
        await _feed([bank], [stream], audio[RATE * 2 :])
        assert await wait_until(lambda: worker.warm and worker.link.pid != pid, 20.0)
        assert worker.link.restarts == 1
        assert bank.inline_frames > 0  # while it was gone, the model ran inline
        assert heard, "speech was still found"
        assert not bank._waiting  # nothing waits for an answer that will never come
    finally:
        worker.stop()
