"""Reading a stored recording and finding each source in it by cross-correlation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soxr

from sentiric_media.analysis.segments import speech_segments
from tests.e2e_recording.scenario import BOT, CALLER, Run
from tests.e2e_recording.speech import RATE, Speech


def read_recording(path: Path) -> tuple[np.ndarray, int]:
    """Any recording PyAV decodes (WAV, FLAC, ...) as float (n, channels) in ±1, and its rate."""
    blocks: list[np.ndarray] = []
    rate = 0
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        channels = stream.channels
        for frame in container.decode(stream):
            data = frame.to_ndarray()
            data = data.T if frame.format.is_planar else data.reshape(-1, channels)
            scale = 32768.0 if data.dtype == np.int16 else 2147483648.0
            if data.dtype.kind == "f":
                scale = 1.0
            blocks.append(data.astype(np.float64) / scale)
    if not blocks:
        return np.zeros((0, 1)), rate
    return np.concatenate(blocks), rate


def at_rate(samples: np.ndarray, rate: int) -> np.ndarray:
    """An 8 kHz int16 source as float at `rate` (one-shot soxr: no added delay)."""
    audio = samples.astype(np.float64) / 32768
    if rate == RATE:
        return audio
    return soxr.resample(audio, RATE, rate, quality="VHQ")


@dataclass(frozen=True)
class Found:
    score: float  # the best normalised cross-correlation
    lag: int  # where: samples at the recording rate
    sidelobe: float  # the best correlation more than 50 ms away from that peak

    def seconds(self, rate: int) -> float:
        return self.lag / rate

    @property
    def distinct(self) -> float:
        """How clearly the peak stands out (peak / best elsewhere)."""
        return self.score / max(self.sidelobe, 1e-6)


def correlation(reference: np.ndarray, signal: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of `reference` at every start index in `signal`.

    What `tests.support.best_alignment` computes, as the whole curve.
    """
    ref, sig = reference.astype(np.float64), signal.astype(np.float64)
    if len(sig) < len(ref):
        sig = np.concatenate((sig, np.zeros(len(ref) - len(sig))))
    size = 1 << int(np.ceil(np.log2(len(sig) + len(ref))))
    spectrum = np.fft.rfft(sig, size) * np.conj(np.fft.rfft(ref, size))
    raw = np.fft.irfft(spectrum, size)[: len(sig) - len(ref) + 1]
    window = np.concatenate(([0.0], np.cumsum(sig**2)))
    energy = window[len(ref) :] - window[: len(sig) - len(ref) + 1]
    return raw / np.sqrt(np.maximum(energy, 1e-9) * np.sum(ref**2))


def locate(reference: np.ndarray, track: np.ndarray, rate: int) -> Found:
    """Best normalised cross-correlation of `reference` anywhere in `track`."""
    curve = correlation(reference, track)
    lag = int(np.argmax(curve))
    away = curve.copy()
    away[max(0, lag - rate // 20) : lag + rate // 20] = -1.0
    found = Found(float(curve[lag]), lag, float(away.max()) if len(away) else 0.0)
    return found


@dataclass
class Row:
    case: str
    source: str
    track: str
    expected_ms: float
    measured_ms: float
    score: float
    presence: float
    distinct: float
    rpc_expected_ms: float

    @property
    def error_ms(self) -> float:
        return self.measured_ms - self.expected_ms


HEADER = (
    f"{'case':<40} {'source':<9} {'track':<6} {'expected':>9} {'measured':>9} "
    f"{'error':>7} {'corr':>5} {'blocks':>6} {'pk/side':>7} {'exp(RPC)':>9}"
)


def format_rows(rows: list[Row]) -> str:
    lines = [HEADER, "-" * len(HEADER)]
    for row in rows:
        lines.append(
            f"{row.case:<40} {row.source:<9} {row.track:<6} {row.expected_ms:9.1f} "
            f"{row.measured_ms:9.1f} {row.error_ms:+7.1f} {row.score:5.2f} {row.presence:6.2f} "
            f"{row.distinct:7.1f} "
            f"{row.rpc_expected_ms:9.1f}"
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class FrameShift:
    at: float  # seconds into the source
    shift: float  # seconds: where the frame is in the track minus where it should be
    score: float


def frame_shifts(
    reference: np.ndarray,
    track: np.ndarray,
    start: int,
    rate: int,
    search: float = 0.100,
    frame_ms: int = 20,
) -> list[FrameShift]:
    """Where each 20 ms frame of `reference` (placed at sample `start`) really is in `track`.

    For every frame with speech energy, the best normalised correlation within
    ± `search` seconds of its true place. A frame that was lost, or that another
    source covers, scores low: callers look at `score` before trusting `shift`.
    """
    size = rate * frame_ms // 1000
    reach = int(search * rate)
    loud = np.sqrt(np.mean(reference**2))
    result = []
    for index in range(len(reference) // size):
        piece = reference[index * size : (index + 1) * size]
        norm = np.linalg.norm(piece)
        if norm / np.sqrt(size) < 0.1 * loud:
            continue
        base = start + index * size
        lo, hi = max(0, base - reach), min(len(track), base + reach + size)
        window = track[lo:hi]
        if len(window) < size:
            continue
        raw = np.correlate(window, piece, mode="valid")
        energy = np.concatenate(([0.0], np.cumsum(window**2)))
        energy = energy[size:] - energy[: len(energy) - size]
        score = raw / (norm * np.sqrt(np.maximum(energy, 1e-12)))
        best = int(np.argmax(score))
        result.append(
            FrameShift(index * size / rate, (lo + best - base) / rate, float(score[best]))
        )
    return result


def block_median(
    reference: np.ndarray,
    track: np.ndarray,
    start: int,
    rate: int,
    search: float,
    window: tuple[float, float] | None = None,
) -> float:
    """Median over 100 ms blocks of `reference` (at `start`) of their best correlation nearby.

    `window` (seconds into the reference) limits the blocks looked at.
    """
    blocks = frame_shifts(reference, track, start, rate, search=search, frame_ms=100)
    if window is not None:
        blocks = [b for b in blocks if window[0] <= b.at and b.at + 0.1 <= window[1]]
    return float(np.median([b.score for b in blocks])) if blocks else 0.0


@dataclass
class Gap:
    before: str
    after: str
    true: float
    found: float


@dataclass
class Result:
    """Everything measured in one case's recording (seconds from the recording's start)."""

    run: Run
    rate: int
    mix: np.ndarray
    tracks: dict[str, np.ndarray]
    lengths: dict[str, float]
    truth: dict[str, float]  # monotonic
    expected: dict[str, float]
    measured: dict[str, float]
    scores: dict[str, float]
    presence: dict[str, float]
    distinct: dict[str, float]
    zero_in_call: float  # the recording's zero minus the moment StartRecording was sent
    start_call_seconds: float
    overlap: tuple[float, float]
    overlap_scores: dict[str, float]
    gaps: list[Gap]
    file_seconds: float
    segments: list[tuple[float, float]]
    frames: dict[str, list[FrameShift]]
    onsets: dict[str, list[FrameShift]]  # the first 200 ms, 10 ms by 10 ms
    rows: list[Row]
    notes: list[str]

    @property
    def stereo(self) -> bool:
        return self.run.case.channels == 2

    def error(self, name: str) -> float:
        return self.measured[name] - self.expected[name]


OVERLAPPED = ("caller-B", "bot-P2")
PAUSES = (
    ("caller-A", "bot-P1"),
    ("bot-P1", "caller-B"),
    ("bot-P2", "caller-C"),
    ("caller-A", "caller-B"),
    ("caller-B", "caller-C"),
)


def track_name(name: str, stereo: bool) -> str:
    if not stereo:
        return "mix"
    return "L" if name in CALLER else "R"


def analyse(run: Run, speech: dict[str, Speech]) -> Result:
    audio, rate = read_recording(run.recording)
    assert rate == run.case.rate, f"recording at {rate} Hz, {run.case.rate} asked"
    assert audio.shape[1] == run.case.channels, f"{audio.shape[1]} channels"
    stereo = run.case.channels == 2
    mix = audio.sum(axis=1) if stereo else audio[:, 0]
    tracks = {"L": audio[:, 0], "R": audio[:, 1]} if stereo else {"mix": mix}

    truth = {**run.caller_starts, **run.bot_starts}
    names = sorted(truth, key=lambda n: truth[n])
    lengths = {name: len(speech[name].samples) / RATE for name in names}
    refs = {name: at_rate(speech[name].samples, rate) for name in names}
    found = {name: locate(refs[name], tracks[track_name(name, stereo)], rate) for name in names}
    measured = {name: found[name].seconds(rate) for name in names}

    # The recording's zero, pinned by the first prompt (see test_recording_timing).
    zero = run.bot_starts["bot-P1"] - measured["bot-P1"]
    started, answered = run.start_call
    expected = {name: truth[name] - zero for name in names}
    rpc_zero = (started + answered) / 2

    overlap = (
        max(expected[n] for n in OVERLAPPED),
        min(expected[n] + lengths[n] for n in OVERLAPPED),
    )
    tol = run.case.tolerance
    # Presence, robust to the few-ms steps of the caller's placement: the median of
    # the best correlation of each 100 ms block within ± tolerance of its place.
    presence = {
        name: block_median(refs[name], tracks[track_name(name, stereo)], found[name].lag, rate, tol)
        for name in names
    }
    overlap_scores = {
        name: block_median(
            refs[name],
            tracks[track_name(name, stereo)],
            round(expected[name] * rate),
            rate,
            tol,
            (overlap[0] - expected[name], overlap[1] - expected[name]),
        )
        for name in OVERLAPPED
    }

    gaps = [
        Gap(
            before,
            after,
            expected[after] - (expected[before] + lengths[before]),
            measured[after] - (measured[before] + lengths[before]),
        )
        for before, after in PAUSES
    ]
    segments = speech_segments(mix, rate, bridge_ms=150)
    frames = {
        name: frame_shifts(
            refs[name],
            tracks[track_name(name, stereo)],
            round(expected[name] * rate),
            rate,
        )
        for name in CALLER
    }
    onsets = {
        name: frame_shifts(
            refs[name][: rate // 5],
            tracks[track_name(name, stereo)],
            round(expected[name] * rate),
            rate,
            frame_ms=10,
        )
        for name in CALLER
    }
    rows = [
        Row(
            run.case.id,
            name,
            track_name(name, stereo),
            expected[name] * 1000,
            measured[name] * 1000,
            found[name].score,
            presence[name],
            found[name].distinct,
            (truth[name] - rpc_zero) * 1000,
        )
        for name in names
    ]
    result = Result(
        run=run,
        rate=rate,
        mix=mix,
        tracks=tracks,
        lengths=lengths,
        truth=truth,
        expected=expected,
        measured=measured,
        scores={name: found[name].score for name in names},
        presence=presence,
        distinct={name: found[name].distinct for name in names},
        zero_in_call=zero - started,
        start_call_seconds=answered - started,
        overlap=overlap,
        overlap_scores=overlap_scores,
        gaps=gaps,
        file_seconds=len(audio) / rate,
        segments=segments,
        frames=frames,
        onsets=onsets,
        rows=rows,
        notes=[],
    )
    result.notes = describe(result)
    return result


def judged_frames(result: Result, name: str) -> tuple[list[FrameShift], list[FrameShift]]:
    """Frames of a caller segment that can be judged, and those of them found (corr ≥ 0.9).

    In the mono mix a frame the bot speaks over cannot be matched on its own, so
    it is not judged. A judged frame that is not found was lost or damaged.
    """
    start = result.expected[name]
    covered = [
        (result.expected[b] - 0.05, result.expected[b] + result.lengths[b] + 0.05) for b in BOT
    ]
    judged = [
        frame
        for frame in result.frames[name]
        if result.stereo or not any(lo <= start + frame.at <= hi for lo, hi in covered)
    ]
    return judged, [frame for frame in judged if frame.score >= 0.9]


def network_floor(run: Run, name: str, seconds: float) -> float:
    """How late the network let the caller segment `name` be heard, at best (seconds).

    Over the segment's packets the relay passed on: the earliest (left the relay −
    its timestamp's offset in the segment), minus the segment's true start. A
    receiver that anchors on the smallest transit places the segment this late
    (plus its own receive latency); it cannot know better.
    """
    streams = run.relay.phone_streams()
    continuous = run.case.phone == "continuous"
    ssrc = run.ssrcs["phone" if continuous else name]
    first_ts = streams[ssrc][0].timestamp
    offset = run.continuous_offsets.get(name, 0.0) if continuous else 0.0
    best = None
    for forwarded in run.relay.stats.sent:
        origin = forwarded.origin
        if not origin.is_rtp or origin.ssrc != ssrc:
            continue
        at = ((origin.timestamp - first_ts) % (1 << 32)) / run.case.clock_rate - offset
        if 0 <= at < seconds:
            moment = forwarded.sent - at
            best = moment if best is None else min(best, moment)
    return (best if best is not None else float("nan")) - run.caller_starts[name]


def describe(result: Result) -> list[str]:
    run = result.run
    notes = [
        f"recording zero (from bot-P1) {result.zero_in_call * 1000:+.2f} ms after "
        f"StartRecording was sent (the call took {result.start_call_seconds * 1000:.1f} ms)",
        f"overlap {result.overlap[0]:.2f}–{result.overlap[1]:.2f} s, corr there "
        + ", ".join(f"{n} {s:.2f}" for n, s in result.overlap_scores.items()),
        "pauses true/found ms: "
        + ", ".join(
            f"{g.before}→{g.after} {g.true * 1000:.0f}/{g.found * 1000:.0f}" for g in result.gaps
        ),
        f"duration: file {result.file_seconds * 1000:.1f} ms, wall "
        f"{run.wall_seconds * 1000:.1f} ms, duration_ms {run.duration_ms}",
        "energy segments: " + ", ".join(f"{s:.2f}–{e:.2f}" for s, e in result.segments),
    ]
    for name in CALLER:
        judged, frames = judged_frames(result, name)
        late = [f for f in frames if abs(f.shift) > run.case.tolerance]
        shifts = [f.shift * 1000 for f in frames]
        worst = max(shifts, key=abs) if shifts else 0.0
        onset = " ".join(
            f"{f.shift * 1000:+.0f}" if f.score >= 0.8 else "?" for f in result.onsets[name]
        )
        notes.append(
            f"{name} frames: {len(frames)}/{len(judged)} found, first 200 ms by 10 ms "
            f"[{onset}] ms, "
            f"median shift {float(np.median(shifts)) if shifts else 0:+.1f} ms, "
            f"worst {worst:+.1f} ms, {len(late)} off by > {run.case.tolerance * 1000:.0f} ms"
            + (f" (last at {late[-1].at * 1000:.0f} ms into the segment)" if late else "")
        )
    notes.append(
        "network floor (the earliest each caller segment could be placed): "
        + ", ".join(
            f"{name} {network_floor(run, name, result.lengths[name]) * 1000:+.1f} ms"
            for name in CALLER
        )
    )
    if os.environ.get("E2E_RECORDING_FRAMES"):
        for name in CALLER:
            notes.append(
                f"{name} frame shifts (ms; ? = not matched): "
                + " ".join(
                    f"{f.shift * 1000:+.1f}" if f.score >= 0.9 else "?" for f in result.frames[name]
                )
            )
    relay = run.relay.stats
    lateness = relay.lateness_summary()
    notes.append(
        f"relay{' (SCHED_FIFO)' if run.relay.realtime else ''}: {relay.received} in, "
        f"{relay.dropped} dropped, {relay.reordered} held back; its delay error mean "
        f"{lateness['mean_ms']:.2f} / p99 {lateness['p99_ms']:.2f} / max "
        f"{lateness['max_ms']:.2f} ms"
    )
    notes.append(
        "caller first packet after the segment's start (ms): "
        + ", ".join(
            f"{(run.caller_first_packet[n] - run.caller_starts[n]) * 1000:.2f}" for n in CALLER
        )
    )
    notes.append(metric_deltas(run))
    return notes


def metric_deltas(run: Run) -> str:
    before, after = run.metrics_before, run.metrics_after
    parts = []
    for key in sorted(after):
        if not key.startswith(
            ("sentiric_media_caller_reanchors", "sentiric_media_rtp_packets_dropped")
        ) or key.endswith("_created"):
            continue
        delta = after[key] - before.get(key, 0.0)
        if delta:
            parts.append(f"{key.removeprefix('sentiric_media_')} +{delta:g}")
    return "service: " + (", ".join(parts) or "no re-anchors, no drops")
