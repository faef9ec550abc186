"""The speech tracker's state machine, on synthetic window probabilities.

Windows are Silero's 32 ms (256 samples at 8000 Hz, 512 at 16000 Hz). With
the default settings speech starts after 3 windows (96 ms) at or above 0.5
and ends after 10 windows (320 ms) below 0.35.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sentiric_media.analysis.speech import Change, SpeechSettings, SpeechTracker, Transition

RATE = 8000
WINDOW = RATE * 32 // 1000  # 256 samples
VOICE, DIP, QUIET = 0.9, 0.4, 0.1  # above start, between end and start, below end
SILENCE_WINDOWS = 10  # 320 ms of windows below the end threshold end speech

# (window index at which the transition came, the transition)
Reported = list[tuple[int, Transition]]


def feed(
    tracker: SpeechTracker,
    probabilities: Sequence[float],
    *,
    window: int = WINDOW,
    first: int = 0,
) -> Reported:
    """Every transition of a run of windows, with the index of the window that gave it."""
    reported: Reported = []
    for index, probability in enumerate(probabilities):
        transition = tracker.update(first + index * window, window, probability)
        if transition is not None:
            reported.append((index, transition))
    return reported


def track(
    probabilities: Sequence[float],
    settings: SpeechSettings | None = None,
    rate: int = RATE,
) -> Reported:
    window = rate * 32 // 1000
    return feed(SpeechTracker(settings or SpeechSettings(), rate), probabilities, window=window)


def summary(reported: Reported, window: int = WINDOW) -> list[tuple[int, Change, int, int]]:
    """(index, change, onset window, end in windows) for comparing with a table."""
    return [
        (index, transition.change, transition.onset // window, transition.end // window)
        for index, transition in reported
    ]


# --- Start ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000])
def test_onset_is_the_first_voiced_window_not_the_decision(rate: int) -> None:
    window = rate * 32 // 1000
    first = 123_456  # positions are the stream's, not counted from zero
    tracker = SpeechTracker(SpeechSettings(), rate)
    reported = feed(tracker, [QUIET, QUIET, VOICE, VOICE, VOICE, VOICE], window=window, first=first)
    assert len(reported) == 1
    index, started = reported[0]
    assert index == 4  # decided on the third voiced window (96 ms)
    assert started.change is Change.STARTED
    assert started.onset == first + 2 * window  # stamped where the voice began
    assert started.end == first + 5 * window  # where it was decided
    assert tracker.speaking


@pytest.mark.parametrize("voiced", [1, 2])
def test_a_burst_shorter_than_min_speech_gives_nothing(voiced: int) -> None:
    tracker = SpeechTracker(SpeechSettings(), RATE)
    assert feed(tracker, [QUIET] * 3 + [VOICE] * voiced + [QUIET] * 20) == []
    assert not tracker.speaking
    assert tracker.finish() is None


@pytest.mark.parametrize("dip", [0.35, DIP, 0.49])
def test_a_dip_between_the_thresholds_keeps_the_start_count(dip: float) -> None:
    # 96 ms from the first voiced window, with a dip in between: speech.
    assert summary(track([VOICE, dip, VOICE])) == [(2, Change.STARTED, 0, 3)]


@pytest.mark.parametrize("dip", [0.0, QUIET, 0.349])
def test_a_dip_below_the_end_threshold_restarts_the_count(dip: float) -> None:
    reported = track([VOICE, VOICE, dip, VOICE, VOICE, VOICE])
    assert summary(reported) == [(5, Change.STARTED, 3, 6)]


def test_windows_between_the_thresholds_alone_start_nothing() -> None:
    assert track([DIP] * 30) == []


# --- End ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pause", "segments"),
    [(1, 1), (SILENCE_WINDOWS - 1, 1), (SILENCE_WINDOWS, 2), (SILENCE_WINDOWS + 5, 2)],
)
def test_speech_ends_only_after_min_silence(pause: int, segments: int) -> None:
    probabilities = [VOICE] * 5 + [QUIET] * pause + [VOICE] * 5 + [QUIET] * 30
    reported = track(probabilities)
    changes = [transition.change for _, transition in reported]
    assert changes == [Change.STARTED, Change.ENDED] * segments
    last_voiced = 5 + pause + 4
    _, ended = reported[-1]
    assert ended.end == (last_voiced + 1) * WINDOW
    if segments == 1:  # the pause is bridged: one segment over both bursts
        assert ended.onset == 0
    else:
        assert reported[1][1].end == 5 * WINDOW
        assert reported[2][1].onset == (5 + pause) * WINDOW


def test_speech_ends_on_the_window_that_completes_min_silence() -> None:
    reported = track([VOICE] * 5 + [QUIET] * 30)
    index, ended = reported[-1]
    assert ended.change is Change.ENDED
    assert index == 4 + SILENCE_WINDOWS  # the tenth quiet window
    assert ended.end == 5 * WINDOW


def test_duration_runs_from_onset_to_the_end_of_the_last_voiced_window() -> None:
    # Voice from window 3 to window 12 (dips between the thresholds count as voice
    # once speaking), then quiet: 10 windows, 320 ms.
    probabilities = [QUIET] * 3 + [VOICE] * 6 + [DIP, VOICE, DIP, DIP] + [QUIET] * 20
    reported = track(probabilities)
    assert summary(reported) == [(5, Change.STARTED, 3, 6), (22, Change.ENDED, 3, 13)]
    _, ended = reported[1]
    assert ended.end - ended.onset == 10 * WINDOW


def test_a_second_segment_has_its_own_onset_and_peak() -> None:
    probabilities = [0.95] * 4 + [QUIET] * 12 + [0.6, 0.7, 0.6] + [QUIET] * 12
    reported = track(probabilities)
    assert summary(reported) == [
        (2, Change.STARTED, 0, 3),
        (13, Change.ENDED, 0, 4),
        (18, Change.STARTED, 16, 19),
        (28, Change.ENDED, 16, 19),
    ]
    assert [transition.probability for _, transition in reported] == pytest.approx(
        [0.95, 0.95, 0.7, 0.7]
    )


def test_onset_is_known_only_while_speaking() -> None:
    tracker = SpeechTracker(SpeechSettings(), RATE)
    feed(tracker, [QUIET, VOICE, VOICE])  # a candidate is not speech yet
    assert tracker.onset is None
    feed(tracker, [VOICE], first=3 * WINDOW)
    assert tracker.onset == WINDOW
    feed(tracker, [QUIET] * SILENCE_WINDOWS, first=4 * WINDOW)
    assert not tracker.speaking
    assert tracker.onset is None


# --- finish() -------------------------------------------------------------------------------


def test_finish_ends_speech_in_progress_where_its_voice_ended() -> None:
    tracker = SpeechTracker(SpeechSettings(), RATE)
    feed(tracker, [QUIET, VOICE, VOICE, VOICE, VOICE, QUIET, QUIET])
    ended = tracker.finish()
    assert ended == Transition(Change.ENDED, WINDOW, 5 * WINDOW, VOICE)
    assert not tracker.speaking
    assert tracker.finish() is None  # once only


@pytest.mark.parametrize(
    "probabilities",
    [[], [QUIET] * 20, [VOICE, VOICE], [VOICE] * 4 + [QUIET] * 15],
    ids=["nothing", "quiet", "short-burst", "already-ended"],
)
def test_finish_when_not_speaking_gives_none(probabilities: list[float]) -> None:
    tracker = SpeechTracker(SpeechSettings(), RATE)
    feed(tracker, probabilities)
    assert tracker.finish() is None


# --- Probability ----------------------------------------------------------------------------


def test_the_peak_before_the_decision_is_reported() -> None:
    # The dip (0.45) is not voice for the peak; windows after the decision are not counted.
    probabilities = [0.55, 0.45, 0.8, 0.6, 0.99, 0.99] + [QUIET] * 12
    reported = track(probabilities)
    assert [transition.change for _, transition in reported] == [Change.STARTED, Change.ENDED]
    assert [transition.probability for _, transition in reported] == pytest.approx([0.8, 0.8])


# --- Settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "probabilities", "expected"),
    [
        # 200 ms is 6.25 windows: 6 voiced windows are not enough, 7 are.
        (SpeechSettings(min_speech_ms=200), [VOICE] * 6 + [QUIET] * 12, []),
        (
            SpeechSettings(min_speech_ms=200),
            [VOICE] * 7 + [QUIET] * 12,
            [(6, Change.STARTED, 0, 7), (16, Change.ENDED, 0, 7)],
        ),
        # 100 ms of silence is 3.125 windows: speech ends on the fourth.
        (
            SpeechSettings(min_silence_ms=100),
            [VOICE] * 3 + [QUIET] * 3 + [VOICE] + [QUIET] * 4,
            [(2, Change.STARTED, 0, 3), (10, Change.ENDED, 0, 7)],
        ),
        # A higher start threshold: 0.7 no longer starts, and only 0.8 windows count.
        (SpeechSettings(start_threshold=0.8), [0.7] * 10, []),
        (
            SpeechSettings(start_threshold=0.8),
            [0.8, 0.7, 0.8] + [QUIET] * 10,
            [(2, Change.STARTED, 0, 3), (12, Change.ENDED, 0, 3)],
        ),
        # A lower end threshold: 0.3 now holds speech open.
        (
            SpeechSettings(end_threshold=0.2),
            [VOICE] * 3 + [0.3] * 15 + [QUIET] * 10,
            [(2, Change.STARTED, 0, 3), (27, Change.ENDED, 0, 18)],
        ),
        # No minimum: the first voiced window starts speech.
        (SpeechSettings(min_speech_ms=0), [QUIET, VOICE], [(1, Change.STARTED, 1, 2)]),
    ],
    ids=[
        "min-speech-200-short",
        "min-speech-200",
        "min-silence-100",
        "start-0.8-quiet",
        "start-0.8",
        "end-0.2",
        "min-speech-0",
    ],
)
def test_settings_change_the_behaviour(
    settings: SpeechSettings,
    probabilities: list[float],
    expected: list[tuple[int, Change, int, int]],
) -> None:
    assert summary(track(probabilities, settings)) == expected


@pytest.mark.parametrize("rate", [8000, 16000])
def test_durations_are_in_milliseconds_at_either_rate(rate: int) -> None:
    # The same probabilities give the same decisions; the positions scale with the rate.
    window = rate * 32 // 1000
    reported = track([VOICE] * 5 + [QUIET] * 12, rate=rate)
    assert [(index, t.change, t.onset, t.end) for index, t in reported] == [
        (2, Change.STARTED, 0, 3 * window),
        (14, Change.ENDED, 0, 5 * window),
    ]


# --- Known bug ------------------------------------------------------------------------------


def test_a_dip_that_completes_the_start_count_is_voice() -> None:
    # The dips count towards the 96 ms that start speech, so they are voice: speech
    # runs to the end of window 2 and ends after 10 quiet windows.
    reported = track([VOICE, DIP, DIP] + [QUIET] * 15)
    assert summary(reported) == [(2, Change.STARTED, 0, 3), (12, Change.ENDED, 0, 3)]
