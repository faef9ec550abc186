"""Barge-in: the echo path estimate (analysis/echo_path.py) and the decision (media/barge_in.py).

A session sends our prompt 20 ms at a time and hears the caller 20 ms at a time; the
line may return what we sent `delay` later and `gain` down. Here the line is simulated:
what was sent at position p comes back in `heard` at p + delay (plus low white noise,
and, for double talk, the caller's own voice), frame by frame and interleaved as in
`Session.on_tick`. The prompt is the first half of the bundled `speech8k.wav`; the
caller's voice is the second half (other words), scaled to the prompt's level.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr

from sentiric_media.analysis.echo_path import (
    EVERY_MS,
    FLOOR_DBFS,
    HOLD_MS,
    WINDOW_MS,
    EchoPath,
    _Ring,
)
from sentiric_media.media.barge_in import BargeIn, BargeInTap
from sentiric_media.media.placement import Anchor
from sentiric_media.media.playout import Playout, Prompt
from sentiric_media.media.taps import CallerFrame
from tests.support import read_wav

SPEECH_WAV = (
    Path(__file__).resolve().parents[2] / "src" / "sentiric_media" / "data" / "speech8k.wav"
)
RATE = 8000
FRAME_MS = 20
NOISE_DBFS = -70.0  # the line's own noise: low, but never digital silence
SPEAKING_DBFS = -40.0  # a frame of the caller's voice above this is "the caller talks"
ECHO_PATHS = [(20, -6.0), (150, -10.0), (300, -20.0)]  # (delay ms, gain dB)


# --- signals ---------------------------------------------------------------------------------


def frame_samples(rate: int) -> int:
    return rate * FRAME_MS // 1000


def amplitude(db: float) -> float:
    return 10 ** (db / 20)


def rms(signal: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(signal.astype(np.float64)))))


def dbfs(signal: np.ndarray) -> float:
    return 20 * np.log10(max(rms(signal), 1e-9) / 32768)


def to_pcm(signal: np.ndarray) -> np.ndarray:
    return np.clip(np.round(signal), -32768, 32767).astype(np.int16)


def frame_levels(signal: np.ndarray, rate: int) -> np.ndarray:
    """dBFS of each whole 20 ms frame of `signal`."""
    count = frame_samples(rate)
    frames = signal[: len(signal) // count * count].astype(np.float64).reshape(-1, count)
    return 20 * np.log10(np.maximum(np.sqrt(np.mean(frames**2, axis=1)), 1e-9) / 32768)


def noise(rng: np.random.Generator, count: int, level_dbfs: float = NOISE_DBFS) -> np.ndarray:
    return rng.normal(0.0, 32768 * amplitude(level_dbfs), count)


@functools.cache
def speech(rate: int) -> np.ndarray:
    """The bundled speech (9.3 s) as float samples at `rate`."""
    pcm, source_rate = read_wav(SPEECH_WAV)
    samples = pcm.astype(np.float64)
    return samples if source_rate == rate else soxr.resample(samples, source_rate, rate)


def prompt_voice(rate: int) -> np.ndarray:
    """What we send: the first half of the speech."""
    samples = speech(rate)
    return samples[: len(samples) // 2]


def caller_voice(rate: int) -> np.ndarray:
    """A second voice: the second half (other words), at the level of the prompt."""
    samples, prompt = speech(rate), prompt_voice(rate)
    other = samples[len(prompt) : 2 * len(prompt)]
    return other * rms(prompt) / rms(other)


def placed(signal: np.ndarray, start: int, length: int) -> np.ndarray:
    """`signal` starting at sample `start` of a `length`-sample zero line."""
    out = np.zeros(length)
    part = signal[: max(length - start, 0)]
    out[start : start + len(part)] = part
    return out


def line(
    rate: int,
    sent: np.ndarray,
    delay_ms: int,
    gain_db: float | None,
    caller: np.ndarray | None = None,
    caller_at_ms: int = 0,
    noise_dbfs: float | None = NOISE_DBFS,
    seed: int = 0,
) -> np.ndarray:
    """What we hear: `sent` back `delay_ms` later at `gain_db` (None: no echo), the caller
    from `caller_at_ms`, and white noise; whole frames, up to the end of the echo."""
    count = frame_samples(rate)
    delay = rate * delay_ms // 1000
    length = -(-(len(sent) + delay) // count) * count
    heard = np.zeros(length)
    if gain_db is not None:
        heard += placed(sent * amplitude(gain_db), delay, length)
    if caller is not None:
        heard += placed(caller, rate * caller_at_ms // 1000, length)
    if noise_dbfs is not None:
        heard += noise(np.random.default_rng(seed), length, noise_dbfs)
    return to_pcm(heard)


# --- the echo path, frame by frame -----------------------------------------------------------


@dataclass
class Heard:
    """One frame of caller audio as the estimator saw it, and what it said then."""

    position: int
    pcm: np.ndarray
    present: bool
    delay: int | None
    gain: float
    coherence: float
    assumed_worst: bool

    @property
    def end(self) -> int:
        return self.position + len(self.pcm)


def converse(path: EchoPath, sent: np.ndarray, heard: np.ndarray) -> list[Heard]:
    """Feed what we sent and what we heard in 20 ms frames, interleaved as a session does.

    Sending stops at the end of `sent`; hearing goes on to the end of `heard`.
    """
    count = frame_samples(path.rate)
    sent = to_pcm(sent)
    frames = []
    for position in range(0, len(heard) - count + 1, count):
        if position < len(sent):
            path.sent(position, sent[position : position + count])
        pcm = heard[position : position + count]
        path.heard(position, pcm)
        present = path.caller_present(position, pcm)
        frames.append(
            Heard(
                position,
                pcm,
                present,
                path.delay,
                path.gain,
                path.coherence,
                path.assumed_worst,
            )
        )
    return frames


def first_estimate(frames: Sequence[Heard]) -> int:
    """Index of the first frame after which an echo path was known."""
    return next(index for index, frame in enumerate(frames) if frame.delay is not None)


# --- 1. the ring -----------------------------------------------------------------------------


def values(*numbers: float) -> np.ndarray:
    return np.array(numbers, dtype=np.float32)


def test_ring_reads_what_was_written_by_position() -> None:
    ring = _Ring(8)
    ring.write(100, values(1, 2, 3, 4, 5))
    assert ring.end == 105
    np.testing.assert_array_equal(ring.read(100, 5), values(1, 2, 3, 4, 5))
    np.testing.assert_array_equal(ring.read(102, 2), values(3, 4))
    # Before and after what was written: zeros.
    np.testing.assert_array_equal(ring.read(98, 4), values(0, 0, 1, 2))
    np.testing.assert_array_equal(ring.read(104, 3), values(5, 0, 0))
    # Rewriting a written stretch replaces it (a late packet in place).
    ring.write(101, values(-2, -3))
    np.testing.assert_array_equal(ring.read(100, 5), values(1, -2, -3, 4, 5))


def test_ring_wraps_around() -> None:
    ring = _Ring(8)
    for start in range(0, 24, 3):  # positions 0..23 in writes of 3, across the end twice
        ring.write(start, np.arange(start, start + 3, dtype=np.float32))
    assert ring.end == 24
    np.testing.assert_array_equal(ring.read(16, 8), np.arange(16, 24, dtype=np.float32))
    np.testing.assert_array_equal(ring.read(19, 3), values(19, 20, 21))
    # A write longer than the ring keeps its newest samples.
    ring.write(24, np.arange(24, 44, dtype=np.float32))
    np.testing.assert_array_equal(ring.read(36, 8), np.arange(36, 44, dtype=np.float32))


def test_ring_gaps_read_as_zeros() -> None:
    ring = _Ring(8)
    ring.write(0, np.arange(1, 9, dtype=np.float32))  # every slot holds something
    ring.write(10, values(11, 12))  # positions 8 and 9 were never written
    np.testing.assert_array_equal(ring.read(6, 6), values(7, 8, 0, 0, 11, 12))
    ring.write(30, values(31))  # a jump beyond the ring: nothing old is left
    np.testing.assert_array_equal(ring.read(23, 8), values(0, 0, 0, 0, 0, 0, 0, 31))


def test_ring_reads_older_than_the_ring_are_zeros() -> None:
    ring = _Ring(8)
    ring.write(0, np.arange(1, 21, dtype=np.float32))  # holds positions 12..19
    np.testing.assert_array_equal(ring.read(0, 4), np.zeros(4, np.float32))
    np.testing.assert_array_equal(ring.read(10, 4), values(0, 0, 13, 14))
    np.testing.assert_array_equal(ring.read(-50, 3), np.zeros(3, np.float32))
    # A write wholly older than the ring changes nothing.
    ring.write(2, values(-1, -1, -1))
    np.testing.assert_array_equal(ring.read(12, 8), np.arange(13, 21, dtype=np.float32))


def test_ring_write_straddling_the_oldest_position_keeps_the_newest() -> None:
    ring = _Ring(10)
    ring.write(0, np.arange(20, dtype=np.float32))  # holds positions 10..19
    ring.write(5, np.full(10, -1, np.float32))  # positions 5..14: only 10..14 still fit
    expected = np.concatenate([np.full(5, -1, np.float32), np.arange(15, 20, dtype=np.float32)])
    np.testing.assert_array_equal(ring.read(10, 10), expected)


# --- 2. delay and gain -----------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize(("delay_ms", "gain_db"), ECHO_PATHS)
def test_echo_path_finds_delay_and_gain(rate: int, delay_ms: int, gain_db: float) -> None:
    sent = prompt_voice(rate)
    path = EchoPath(rate)
    frames = converse(path, sent, line(rate, sent, delay_ms, gain_db, noise_dbfs=-60.0))
    first = first_estimate(frames)
    # Found by the first estimate whose window lies wholly after our audio began.
    assert frames[first].end <= rate * (WINDOW_MS + EVERY_MS) // 1000
    for frame in frames[first:]:  # and then held, right, at every frame
        assert frame.delay is not None
        assert abs(frame.delay - rate * delay_ms // 1000) <= rate * 2 // 1000
        assert abs(20 * np.log10(frame.gain) - gain_db) <= 1.0
        assert frame.coherence >= 0.9
    described_ms, described_db = path.describe().split(" ms, ")
    assert int(described_ms) == delay_ms
    assert abs(float(described_db.split(" dB")[0]) - gain_db) <= 1.0


# --- 3. pure echo ----------------------------------------------------------------------------


@pytest.mark.parametrize("gain_db", [-10.0, -3.0])
def test_pure_echo_is_not_the_caller(gain_db: float) -> None:
    sent = prompt_voice(RATE)
    frames = converse(EchoPath(RATE), sent, line(RATE, sent, 150, gain_db))
    first = first_estimate(frames)
    after = [frame.position for frame in frames[first:] if frame.present]
    before = [frame.position for frame in frames[:first] if frame.present]
    assert after == []
    # Before the first estimate only the worst-case prior (the echo 6 dB below the loudest
    # of what we sent) stands between the echo and a false "caller present".
    assert len(before) <= 3, before
    assert all(frame.assumed_worst for frame in frames[:first])


@pytest.mark.parametrize("off_ms", [-9, -6, -3, 3, 6, 9])
def test_echo_a_few_ms_off_the_estimated_delay_is_not_the_caller(off_ms: int) -> None:
    """Placement settling or jitter moves the echo a little: energies within ±10 ms."""
    sent = prompt_voice(RATE)[: 3 * RATE]
    path = EchoPath(RATE)
    converse(path, sent, line(RATE, sent, 150, -10.0)[: len(sent)])
    assert path.delay == RATE * 150 // 1000
    count = frame_samples(RATE)
    for position in range(len(sent) - RATE * 800 // 1000, len(sent), count):
        source = position - RATE * (150 + off_ms) // 1000
        echo = to_pcm(sent[source : source + count] * amplitude(-10.0))
        assert not path.caller_present(position, echo), position


# --- 4. double talk --------------------------------------------------------------------------


@dataclass
class DoubleTalk:
    frames: list[Heard]
    echo: np.ndarray  # dBFS of the echo in each frame
    caller: np.ndarray  # ... and of the caller's voice


def double_talk(sent: np.ndarray, voice: np.ndarray, start_ms: int) -> DoubleTalk:
    """Our echo at -10 dB / 150 ms, and the caller's `voice` from `start_ms` on."""
    heard = line(RATE, sent, 150, -10.0, voice, caller_at_ms=start_ms)
    frames = converse(EchoPath(RATE), sent, heard)
    echo = placed(sent * amplitude(-10.0), RATE * 150 // 1000, len(heard))
    caller = placed(voice, RATE * start_ms // 1000, len(heard))
    return DoubleTalk(frames, frame_levels(echo, RATE), frame_levels(caller, RATE))


@pytest.mark.parametrize("roles", ["first half prompt", "second half prompt"])
def test_double_talk_caller_at_the_prompts_level_is_present(roles: str) -> None:
    """The caller talks over the echo at the prompt's own level, from the prompt's first
    word, and from 0.5 s to 2 s in (the path long known)."""
    sent, voice = prompt_voice(RATE), caller_voice(RATE)
    if roles == "second half prompt":
        sent, voice = voice, sent
    shares = {}
    hits = total = 0
    for start_ms in (0, 500, 1000, 1500, 2000):
        talk = double_talk(sent, voice, start_ms)
        present = [
            frame.present
            for frame, level in zip(talk.frames, talk.caller, strict=True)
            if level > SPEAKING_DBFS
        ]
        shares[start_ms] = sum(present) / len(present)
        hits, total = hits + sum(present), total + len(present)
    print(f"double talk ({roles}): caller present in {hits / total:.1%} of its frames, by start:")
    print("  " + ", ".join(f"{ms} ms: {share:.1%}" for ms, share in shares.items()))
    # A frame where the caller is not MARGIN_DB louder than the echo is not told from it
    # (energies, not waveforms): some of the caller's weaker frames under loud prompt audio.
    assert hits / total >= 0.80
    assert min(shares.values()) >= 0.75


@pytest.mark.parametrize("start_ms", [0, 1000])
def test_double_talk_caller_far_below_the_echo_is_not_present(start_ms: int) -> None:
    """A caller 20 dB below the echo is expected not to be told from it (a limit, by
    design): present at most where the echo happens to be quieter (the prompt's pauses)."""
    talk = double_talk(prompt_voice(RATE), caller_voice(RATE) * amplitude(-30.0), start_ms)
    frames = talk.frames
    first = first_estimate(frames)
    masked = [
        frame.present
        for frame, echo, caller in zip(frames, talk.echo, talk.caller, strict=True)
        if echo >= caller and frame.position >= frames[first].position
    ]
    assert len(masked) >= 0.6 * (len(frames) - first)  # the echo covers most frames
    assert not any(masked)
    assert sum(frame.present for frame in frames) <= 0.05 * len(frames)


# --- 5. no echo ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heard",
    [
        "quiet voice",
        "line noise",
        "digital silence",
    ],
)
def test_no_echo_assumes_nothing_after_two_estimates(heard: str) -> None:
    """We send; for 1 s the line returns no echo — a quiet other voice (20 dB below the
    prompt), noise, or nothing — then the quiet voice talks (over noise or silence)."""
    sent = prompt_voice(RATE)
    voice = caller_voice(RATE) * amplitude(-20.0)
    quiet = line(
        RATE, sent, 0, None, voice, noise_dbfs=None if heard == "digital silence" else NOISE_DBFS
    )
    if heard != "quiet voice":
        quiet[:RATE] = (
            0 if heard == "digital silence" else to_pcm(noise(np.random.default_rng(1), RATE))
        )
    path = EchoPath(RATE)
    frames = converse(path, sent, quiet)
    decided = RATE * (WINDOW_MS + 2 * EVERY_MS) // 1000  # the second estimate is done by then
    for frame in frames:
        assert frame.delay is None
        if frame.end >= decided:
            assert not frame.assumed_worst, frame.position
    assert path.describe() == "none found"
    speaking = [frame for frame in frames if frame.position >= RATE]
    floor = [dbfs(frame.pcm) >= FLOOR_DBFS for frame in speaking]
    assert [frame.present for frame in speaking] == floor
    assert sum(floor) >= 0.5 * len(speaking)


# --- 6. holding a path -----------------------------------------------------------------------


@pytest.mark.parametrize("echo_until_ms", [None, 1500])
def test_echo_path_is_forgotten_after_hold_ms_without_a_new_estimate(
    echo_until_ms: int | None,
) -> None:
    """The echo is there for the whole prompt (6 s), or goes away at 1.5 s (noise stays)."""
    sent = speech(RATE)[: 6 * RATE]
    heard = line(RATE, sent, 150, -10.0)
    if echo_until_ms is not None:
        cut = RATE * echo_until_ms // 1000
        heard[cut:] = to_pcm(noise(np.random.default_rng(2), len(heard) - cut))
    path = EchoPath(RATE)
    frames = converse(path, sent, heard)
    first = first_estimate(frames)
    found_at, forgotten = 0, None
    hold = RATE * HOLD_MS // 1000
    for before, frame in itertools.pairwise(frames[first - 1 :]):
        if frame.delay is not None and frame.coherence != before.coherence:  # a new estimate
            found_at = frame.end
        if frame.delay is None and forgotten is None:
            forgotten = frame.end
        if forgotten is None:
            assert frame.end - found_at <= hold + RATE * EVERY_MS // 1000
    if echo_until_ms is None:
        assert forgotten is None
        return
    assert forgotten is not None
    assert hold < forgotten - found_at <= hold + RATE * EVERY_MS // 1000
    assert RATE * (echo_until_ms + HOLD_MS) // 1000 <= forgotten
    assert path.delay is None
    assert path.gain == 0.0
    assert path.echo_energy(0, 160) == 0.0


# --- 7. the barge-in decision ----------------------------------------------------------------


class Events:
    def __init__(self) -> None:
        self.log: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, fields: dict[str, Any]) -> None:
        self.log.append((name, dict(fields)))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [fields for event, fields in self.log if event == name]


class Call:
    """A session's tick loop around one `BargeInTap`, over a simulated line.

    A tick at clock position `now` delivers the caller's frame [now - 20 ms, now) (the
    echo of what we sent `delay_ms` earlier, the caller's `voice`, line noise), checks
    for barge-in, then pulls and sends the bot's frame at `now` (as `Session.on_tick`).
    """

    def __init__(
        self,
        prompts: Sequence[Prompt],
        delay_ms: int = 150,
        gain_db: float | None = None,
        min_speech_ms: int = 160,
        seconds: int = 12,
    ) -> None:
        self.frame = frame_samples(RATE)
        self.events = Events()
        self.playout = Playout(self.frame, FRAME_MS, self.events)
        for prompt in prompts:
            self.playout.enqueue(prompt)
        self.tap = BargeInTap(RATE, min_speech_ms)
        self.echo = 0.0 if gain_db is None else amplitude(gain_db)
        self.delay = RATE * delay_ms // 1000
        self.sent = np.zeros(seconds * RATE)
        self.rng = np.random.default_rng(3)
        self.now = self.frame
        self.pulled = 0

    @property
    def caller_at(self) -> int:
        """Where the caller frame of the next tick begins."""
        return self.now - self.frame

    def tick(
        self, voice: np.ndarray | None = None, onset: int | None = None, play: bool = True
    ) -> BargeIn | None:
        start, count = self.caller_at, self.frame
        pcm = noise(self.rng, count)
        if start >= self.delay:
            pcm += self.echo * self.sent[start - self.delay : start - self.delay + count]
        if voice is not None:
            pcm = pcm + voice
        self.tap.on_caller(CallerFrame(start, start, Anchor(0), self.now, to_pcm(pcm)))
        decided = self.tap.check(self.playout, onset, self.now)
        outgoing = self.playout.next_frame() if play else None
        if outgoing is not None:
            self.pulled += 1
            self.tap.on_bot(self.now, outgoing)
            self.sent[self.now : self.now + count] = outgoing
        self.now += count
        return decided

    def run(self, ticks: int, **kwargs: Any) -> list[BargeIn]:
        return [decided for _ in range(ticks) if (decided := self.tick(**kwargs)) is not None]


def prompt(interruptible: bool = True, uri: str = "file://prompt.wav") -> Prompt:
    return Prompt(uri, to_pcm(speech(RATE)), interruptible)


def own_voice(rng: np.random.Generator, level_dbfs: float = -20.0) -> np.ndarray:
    """A frame of the caller's voice: loud and unlike anything we sent."""
    return noise(rng, frame_samples(RATE), level_dbfs)


def warmed(call: Call) -> Call:
    """One second of the prompt over a line without echo: the estimator has found none."""
    assert call.run(50, onset=None) == []
    assert call.tap.echo.delay is None
    if call.pulled:
        assert not call.tap.echo.assumed_worst
    return call


@pytest.mark.parametrize(
    "case", ["onset None", "nothing plays", "not interruptible", "not started"]
)
def test_check_returns_none(case: str) -> None:
    prompts = [] if case == "nothing plays" else [prompt(interruptible=case != "not interruptible")]
    call = Call(prompts)
    play = case != "not started"
    if play:
        warmed(call)
    rng = np.random.default_rng(4)
    onset = None if case == "onset None" else call.caller_at
    decisions = [call.tick(own_voice(rng), onset, play) for _ in range(25)]  # 500 ms of voice
    assert decisions == [None] * 25
    assert len(call.tap._present) == 25  # the caller's voice was heard as the caller's


@pytest.mark.parametrize("min_speech_ms", [160, 240])
def test_check_barges_in_after_min_speech_ms_of_own_voice(min_speech_ms: int) -> None:
    call = warmed(Call([prompt(uri="file://a.wav")], min_speech_ms=min_speech_ms))
    rng = np.random.default_rng(5)
    # A cough 400 ms before: heard as the caller, but not part of this speech.
    assert call.run(1, voice=own_voice(rng)) == []
    assert call.run(20, voice=None) == []
    onset = call.caller_at
    # The VAD's onset is two frames early: they are below the floor (not the caller's voice).
    assert call.run(2, voice=own_voice(rng, -70.0), onset=onset) == []
    began = call.caller_at
    needed = min_speech_ms // FRAME_MS
    for _ in range(needed - 1):
        assert call.tick(own_voice(rng), onset) is None
    pulled = call.pulled
    decided = call.tick(own_voice(rng), onset)
    assert decided == BargeIn(
        "file://a.wav", pulled * FRAME_MS, (call.now - call.frame - began) * 1000 // RATE
    )
    assert decided is not None
    assert decided.reaction_ms == min_speech_ms


def test_check_wants_the_speech_within_the_recent_window() -> None:
    """160 ms of own voice, but in two halves 200 ms apart: never 160 ms within 260 ms."""
    call = warmed(Call([prompt()]))
    rng = np.random.default_rng(6)
    onset = call.caller_at
    decisions = call.run(4, voice=own_voice(rng), onset=onset)
    decisions += call.run(10, onset=onset)
    decisions += call.run(4, voice=own_voice(rng), onset=onset)
    assert decisions == []
    assert len(call.tap._present) == 8


def test_sporadic_frames_over_a_long_speech_never_add_up() -> None:
    """One 20 ms frame of own voice every 200 ms, over 2 s of "speech" (echo, say)."""
    call = warmed(Call([prompt()]))
    rng = np.random.default_rng(7)
    onset = call.caller_at
    decisions = []
    for _ in range(10):
        decisions += call.run(1, voice=own_voice(rng), onset=onset)
        decisions += call.run(9, onset=onset)
    assert decisions == []
    assert len(call.tap._present) == 10  # 200 ms in all, more than min_speech_ms


@pytest.mark.parametrize(("delay_ms", "gain_db"), [*ECHO_PATHS, (150, -3.0)])
def test_our_echoed_prompt_does_not_barge_in(delay_ms: int, gain_db: float) -> None:
    """The whole prompt (9.3 s) comes back; the VAD calls it speech from the start."""
    call = Call([prompt()], delay_ms, gain_db)
    ticks = len(speech(RATE)) // call.frame
    assert call.run(ticks, onset=call.caller_at) == []
    assert call.tap.echo.delay == RATE * delay_ms // 1000


def test_our_echoed_prompt_of_inverted_polarity_does_not_barge_in() -> None:
    call = Call([prompt()], 150, -10.0)
    call.echo = -call.echo
    ticks = len(speech(RATE)) // call.frame
    assert call.run(ticks, onset=call.caller_at) == []


@pytest.mark.parametrize("start_ms", [0, 2000])
def test_caller_talking_over_the_echoed_prompt_barges_in(start_ms: int) -> None:
    """The echo at -10 dB / 150 ms, and the caller at the prompt's level from `start_ms`."""
    call = Call([prompt()], 150, -10.0)
    voice = caller_voice(RATE)
    count = call.frame
    ticks = start_ms // FRAME_MS
    assert call.run(ticks, onset=call.caller_at if start_ms == 0 else None) == []
    onset = call.caller_at
    decided = None
    for index in range(50):  # one second to decide
        decided = call.tick(voice[index * count : (index + 1) * count], onset)
        if decided is not None:
            break
    assert decided is not None
    print(f"caller from {start_ms} ms over the echo: {decided}")
    assert decided.played_ms == (ticks + index) * FRAME_MS
    assert decided.reaction_ms <= 400
    assert (call.now - call.frame - onset) * 1000 // RATE <= 500


# --- 8. the flush ----------------------------------------------------------------------------


def test_stop_interruptible_flushes_interruptible_prompts_only() -> None:
    events = Events()
    playout = Playout(160, FRAME_MS, events)
    for uri, interruptible in (("first", True), ("second", True), ("third", False)):
        playout.enqueue(Prompt(uri, np.full(800, 1000, np.int16), interruptible))
    assert playout.next_frame() is not None
    assert BargeInTap.armed(playout)
    assert playout.stop_interruptible() == 2
    assert events.named("playback_finished") == [
        {"audio_uri": "first", "interrupted": True, "played_ms": 20},
        {"audio_uri": "second", "interrupted": True, "played_ms": 0},
    ]
    assert playout.current is not None
    assert playout.current.uri == "third"
    assert not playout.has_interruptible
    assert not BargeInTap.armed(playout)
    assert not playout.started  # the third has not sent anything yet
    assert playout.next_frame() is not None
    assert events.log[-1] == ("playback_started", {"audio_uri": "third"})


# --- cost ------------------------------------------------------------------------------------


def test_echo_path_cpu_cost() -> None:
    """Print the CPU time of the estimator per second of a call (sent + heard), at 8 kHz."""
    sent, count = to_pcm(speech(RATE)), frame_samples(RATE)
    heard = line(RATE, sent, 150, -10.0)
    path = EchoPath(RATE)
    started = time.process_time()
    for position in range(0, len(heard) - count + 1, count):
        if position < len(sent):
            path.sent(position, sent[position : position + count])
        pcm = heard[position : position + count]
        path.heard(position, pcm)
        path.caller_present(position, pcm)
    cost = time.process_time() - started
    seconds = len(heard) / RATE
    print(f"EchoPath at 8 kHz: {1000 * cost / seconds:.2f} ms CPU per second of audio")


def test_a_caller_already_talking_reacts_from_the_prompts_start() -> None:
    """Found by the bench: speech that began before the prompt gave a negative or
    too long reaction; it counts from the prompt's first frame."""
    call = warmed(Call([]))
    rng = np.random.default_rng(7)
    onset = call.caller_at
    assert call.run(25, voice=own_voice(rng), onset=onset) == []  # talking, nothing plays
    call.playout.enqueue(prompt())
    started = call.now
    decided = None
    for _ in range(25):
        decided = call.tick(own_voice(rng), onset)
        if decided is not None:
            break
    assert decided is not None
    assert 0 <= decided.reaction_ms <= (call.now - started) * 1000 // RATE


def test_the_calls_echo_estimate_carries_over_to_the_next_prompt() -> None:
    first = warmed(Call([prompt()]))
    learned = first.tap.echo
    assert not learned.assumed_worst  # the first prompt showed there is no echo
    following = BargeInTap(RATE, 160, learned)
    assert following.echo is learned
    assert not following.echo.assumed_worst  # the next prompt starts knowing it
    assert BargeInTap(16000, 160, learned).echo is not learned  # another rate: afresh
