"""SpeechTap: silence is never sent; speech goes from just before its onset until a
tail after its end, then the stretch is paused; findings land at session positions."""

from __future__ import annotations

import numpy as np

from sentiric_media.analysis.keywords import KeywordHit
from sentiric_media.analysis.prosody import Emotion
from sentiric_media.analysis.worker_protocol import EmotionAt, Wanted
from sentiric_media.media.placement import Anchor
from sentiric_media.media.speech_tap import LEAD_MS, PREROLL_MS, TAIL_MS, Found, SpeechTap
from sentiric_media.media.taps import CallerFrame

RATE = 8000
FRAME = 160


class RecordingWorker:
    """Stands in for the worker process: keeps what the tap sends."""

    def __init__(self) -> None:
        self.opened: list[Wanted] = []
        self.fed: list[tuple[int, int]] = []  # (start, samples) at the session rate
        self.paused = 0
        self.closed = 0
        self.listener = None

    def open(self, wanted, rate, listener):
        assert rate == RATE
        self.opened.append(wanted)
        self.listener = listener
        return 7

    def change(self, stream, wanted):
        self.opened.append(wanted)

    def feed(self, stream, start, pcm):
        assert stream == 7
        assert pcm.dtype == np.int16
        self.fed.append((start, len(pcm)))

    def pause(self, stream):
        self.paused += 1

    def close(self, stream):
        self.closed += 1


def frame(index: int) -> CallerFrame:
    pcm = np.full(FRAME, 1000, np.int16)
    return CallerFrame(index * FRAME, index * FRAME, Anchor(0), index * FRAME, pcm)


HELP = Wanted(("help",))


def make() -> tuple[SpeechTap, RecordingWorker, list[tuple]]:
    worker, found = RecordingWorker(), []
    report = Found(
        lambda *hit: found.append(("keyword", *hit)),
        lambda *estimate: found.append(("emotion", *estimate)),
        lambda reason: found.append(("failure", reason)),
    )
    return SpeechTap(worker, RATE, HELP, report), worker, found


def test_nothing_is_sent_while_silent():
    tap, worker, _ = make()
    for index in range(100):
        tap.on_caller(frame(index))
    assert worker.fed == []
    assert worker.opened == [HELP]


def test_speech_goes_from_its_lead_to_its_tail_then_pauses():
    tap, worker, _ = make()
    for index in range(50):
        tap.on_caller(frame(index))
    onset = 40 * FRAME  # the VAD decides late: the onset is 10 frames back
    tap.speech_started(onset)
    first = onset - RATE * LEAD_MS // 1000
    assert worker.fed[0][0] == first // FRAME * FRAME  # the frame holding the lead
    assert all(n == FRAME for _, n in worker.fed)
    for index in range(50, 60):
        tap.on_caller(frame(index))
    tap.speech_ended(55 * FRAME)
    tail_frames = TAIL_MS * 50 // 1000
    for index in range(60, 55 + tail_frames + 5):
        tap.on_caller(frame(index))
    starts = [start for start, _ in worker.fed]
    assert starts == list(range(starts[0], starts[-1] + 1, FRAME))  # contiguous
    assert starts[-1] == (55 + tail_frames - 1) * FRAME
    assert worker.paused == 1


def test_the_ring_holds_only_the_preroll():
    tap, worker, _ = make()
    for index in range(200):
        tap.on_caller(frame(index))
    tap.speech_started(0)  # an onset older than the ring: what is left of it is sent
    assert len(worker.fed) == PREROLL_MS * 50 // 1000


def test_speech_resuming_within_the_tail_continues_the_stretch():
    tap, worker, _ = make()
    for index in range(10):
        tap.on_caller(frame(index))
    tap.speech_started(5 * FRAME)
    tap.speech_ended(12 * FRAME)
    tap.on_caller(frame(10))
    tap.speech_started(11 * FRAME)  # no resend of the ring
    sent = len(worker.fed)
    tap.on_caller(frame(30))  # far beyond the old tail: it still goes (speech again)
    assert len(worker.fed) == sent + 1
    assert worker.paused == 0


def test_findings_land_at_session_positions_and_the_wanted_follow():
    tap, worker, found = make()
    worker.listener.on_keyword(KeywordHit("help", 0.8, 16000, 20000))
    calm = Emotion("calm", 0.2, 0.0, 0.5)
    worker.listener.on_emotion(EmotionAt(calm, 8000))
    worker.listener.on_failure("broken")
    assert found == [
        ("keyword", "help", 0.8, 16000),
        ("emotion", calm, 8000),
        ("failure", "broken"),
    ]
    tap.change(HELP)
    tap.change(Wanted(("agent", "help"), emotion=True))
    assert worker.opened == [HELP, Wanted(("agent", "help"), emotion=True)]
    tap.close()
    assert worker.closed == 1
