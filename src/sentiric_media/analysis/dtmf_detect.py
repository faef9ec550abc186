"""In-band DTMF: key presses found in the caller's audio, with the ITU-T Q.24 limits.

The audio is cut into 10 ms blocks, and each block is taken to the eight
Q.23 frequencies at once (one matrix product: a Goertzel filter bank). Two
consecutive blocks make a 20 ms *window*, which holds a key when

- **level**: each of its two tones is at least `MIN_LEVEL_DBM0`;
- **twist**: the high-group tone is at most `HIGH_LOUDER_DB` above the low
  one, and at most `LOW_LOUDER_DB` below it;
- **purity**: each tone stands `GROUP_MARGIN_DB` above the others of its
  group, and the two hold `TONE_SHARE` of the window's energy (speech and
  music spread theirs over harmonics);
- **frequency**: each tone's phase advance from the first block to the second
  puts it within `FREQUENCY_TOLERANCE` of its nominal frequency;
- **steadiness**: both blocks carry the same energy (within `STEADY_DB`), so
  a window reaching past either end of a tone does not count.

A press is `CONFIRM_WINDOWS` consecutive windows of one key: every tone of
40 ms or more makes two, whatever its alignment to the blocks, and none of
26 ms or less does (Q.24: operate at 40 ms, reject at 23 ms). It ends after
`END_WINDOWS` windows without it, so a pause of 40 ms separates two presses
and an interruption of 10 ms or less is bridged. A press is reported when it
ends, with its duration (to the nearest block) and the position it began at.

Detection is batched: a `DtmfBank` takes the new blocks of every stream of
a clock slot through the filter bank and the window checks in one go, and
only the streams with a key in sight step their state in Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sentiric_media.audio.dtmf import COLUMN_HZ, KEYPAD, ROW_HZ, amplitude

BLOCK_MS = 10
MIN_LEVEL_DBM0 = -30.0  # Q.24 operates down to -25 dBm0 per tone
HIGH_LOUDER_DB = 8.0
LOW_LOUDER_DB = 4.0
GROUP_MARGIN_DB = 8.0
TONE_SHARE = 0.75
FREQUENCY_TOLERANCE = 0.025  # Q.24: operate within 1.5 %, reject beyond 3.5 %
STEADY_DB = 1.0
CONFIRM_WINDOWS = 2
END_WINDOWS = 4
MAX_JUMP_MS = 60  # a jump in positions this small does not restart the stream

_KEYS = "".join(KEYPAD)  # key index = row * 4 + column
_FREQUENCIES = np.array(ROW_HZ + COLUMN_HZ)
_MIN_AMPLITUDE = amplitude(MIN_LEVEL_DBM0)
NO_KEY = -1
_ROW = 17  # a block's filter-bank row: 8 real parts, 8 imaginary parts, energy


class InbandPress(NamedTuple):
    """A key press found in the audio."""

    key: str
    position: int  # where its tones began, in samples of the stream's positions
    duration_ms: int


@dataclass(slots=True)
class _Run:
    """Consecutive windows holding one key (positions of their first blocks)."""

    key: int
    first: int
    last: int


class DtmfDetector:
    """The state of one stream: samples short of a block, its last block, the key held.

    Presses go to `on_press` as they end.
    """

    def __init__(self, rate: int, slot: int, on_press: Callable[[InbandPress], None]) -> None:
        self.rate = rate
        self.block = rate * BLOCK_MS // 1000
        self.slot = slot  # its row in the bank's table of last blocks
        self.on_press = on_press
        self.restarted = True  # its last block is not the one before the next
        self._pending: np.ndarray | None = None  # samples short of a block
        self._pending_at = 0  # position of the first pending sample (or of the next)
        self.start = 0  # position of the first block waiting in the bank
        self.queued = 0  # the bank generation its waiting blocks belong to
        self.released = False
        self.index = 0  # their place in the bank's batch
        self._candidate: _Run | None = None
        self._press: _Run | None = None

    @property
    def active(self) -> bool:
        """A key is in sight: every window must step the state."""
        return self._candidate is not None or self._press is not None

    def cut(self, position: int, pcm: np.ndarray, queued: bool = False) -> np.ndarray | None:
        """The whole blocks (flat) of new audio at `position`; a jump restarts the stream.

        Positions place audio on the clock, so a stream's next packet may land a
        few samples off (its placement settling) or a packet further (a loss).
        """
        pending = self._pending
        if pending is None and position == self._pending_at and not len(pcm) % self.block:
            if not queued:
                self.start = position  # the usual case: whole packets, back to back
            self._pending_at += len(pcm)
            return pcm if len(pcm) else None
        jump = self.jump(position)
        if abs(jump) <= MAX_JUMP_MS * self.rate // 1000:
            # Placement moved a little, or a packet was lost: the audio goes on where it
            # was (a press is not cut in two); between presses positions follow placement.
            if jump and not self.active:
                self._pending_at += jump
        else:
            self.flush()
            pending = None
            self._pending_at = position
            self.restarted = True
        if pending is not None:
            pcm = np.concatenate([pending, pcm])
        count, rest = divmod(len(pcm), self.block)
        whole = len(pcm) - rest
        self._pending = pcm[whole:] if rest else None
        if not count:
            return None
        if not queued:
            self.start = self._pending_at
        self._pending_at += whole
        return pcm[:whole] if rest else pcm

    def jump(self, position: int) -> int:
        """How far `position` is from where the stream's next sample was expected."""
        return position - self._pending_at - (0 if self._pending is None else len(self._pending))

    def restarts(self, position: int) -> bool:
        """Audio at `position` would restart the stream."""
        return abs(self.jump(position)) > MAX_JUMP_MS * self.rate // 1000

    def step(self, keys: list[int]) -> None:
        """The window results of the blocks waiting: window j ends at block j."""
        block = self.block
        for j, key in enumerate(keys):
            position = self.start + (j - 1) * block  # the window's first block
            candidate = self._candidate
            if key == NO_KEY:
                self._candidate = candidate = None
            elif candidate and candidate.key == key and candidate.last == position - block:
                candidate.last = position
            else:
                self._candidate = candidate = _Run(key, position, position)
            press = self._press
            if press is not None:
                if key == press.key:
                    press.last = position
                elif position - press.last >= END_WINDOWS * block:
                    self._report(press)
                    self._press = press = None
            confirmed = (CONFIRM_WINDOWS - 1) * block
            if press is None and candidate and candidate.last - candidate.first >= confirmed:
                self._press = _Run(candidate.key, candidate.first, candidate.last)

    def flush(self) -> None:
        """End of the stream: the press in progress ends here."""
        press, self._press, self._candidate = self._press, None, None
        if press is not None:
            self._report(press)

    def _report(self, press: _Run) -> None:
        blocks = (press.last - press.first) // self.block + 2  # a window spans two blocks
        self.on_press(InbandPress(_KEYS[press.key], press.first, blocks * BLOCK_MS))


class _Batch:
    """The blocks waiting at one rate, as parallel lists (no per-stream work at run time)."""

    __slots__ = ("blocks", "counts", "detectors", "slots")

    def __init__(self) -> None:
        self.detectors: list[DtmfDetector] = []
        self.blocks: list[np.ndarray] = []  # flat samples, whole blocks
        self.counts: list[int] = []  # blocks of each
        self.slots: list[int] = []


class DtmfBank:
    """Runs the detection of many streams at once: `add` each one's audio, then `run`.

    Every block added goes through one filter-bank product and one vectorized
    window check; Python steps only the streams with a key in sight.
    """

    def __init__(self) -> None:
        self._batches: dict[int, _Batch] = {}
        self._filters: dict[int, _Filters] = {}
        self._last = np.zeros((16, _ROW), dtype=np.float32)  # each detector's last block, by slot
        self._free: list[int] = list(range(15, -1, -1))
        self._active: set[DtmfDetector] = set()
        self._released: list[int] = []
        self._generation = 1  # a detector with blocks in the current batch carries it

    def detector(self, rate: int, on_press: Callable[[InbandPress], None]) -> DtmfDetector:
        """A new stream's detector; `release` it when the stream ends."""
        if not self._free:
            grown = len(self._last)
            self._last = np.vstack([self._last, np.zeros((grown, _ROW), dtype=np.float32)])
            self._free = list(range(2 * grown - 1, grown - 1, -1))
        return DtmfDetector(rate, self._free.pop(), on_press)

    def release(self, detector: DtmfDetector) -> None:
        """The stream ended: its press in progress is reported, its slot freed."""
        if detector.queued == self._generation:
            self.run()
        detector.flush()
        detector.released = True
        self._active.discard(detector)
        self._released.append(detector.slot)  # free once no batch holds it

    def add(self, detector: DtmfDetector, position: int, pcm: np.ndarray) -> None:
        queued = detector.queued == self._generation
        if queued and detector.restarts(position):
            self.run()  # what waits of the stream is analysed before it restarts
            queued = False
        blocks = detector.cut(position, pcm, queued)
        if blocks is None:
            return
        if detector.restarted:
            self._last[detector.slot] = 0.0
            detector.restarted = False
        batch = self._batches.get(detector.rate)
        if batch is None:
            batch = self._batches[detector.rate] = _Batch()
        count = len(blocks) // detector.block
        if queued:
            # A second packet of the stream before the run: its blocks follow the first's.
            index = detector.index
            batch.blocks[index] = np.concatenate([batch.blocks[index], blocks])
            batch.counts[index] += count
        else:
            detector.index = len(batch.detectors)
            detector.queued = self._generation
            batch.detectors.append(detector)
            batch.blocks.append(blocks)
            batch.counts.append(count)
            batch.slots.append(detector.slot)

    def run(self) -> None:
        """Analyse everything added since the last run."""
        batches, self._batches = self._batches, {}
        self._generation += 1
        for rate, batch in batches.items():
            filters = self._filters.get(rate) or self._filters.setdefault(rate, _Filters(rate))
            self._run_batch(filters, batch)
        self._free += self._released
        self._released.clear()

    def _run_batch(self, filters: _Filters, batch: _Batch) -> None:
        blocks = batch.blocks
        samples = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        rows = filters.analyse(samples.reshape(-1, filters.n))
        ends = np.cumsum(batch.counts)
        starts = ends - batch.counts
        slots = np.array(batch.slots)
        previous = np.empty_like(rows)
        previous[1:] = rows[:-1]
        previous[starts] = self._last[slots]
        self._last[slots] = rows[ends - 1]
        keys = filters.keys(previous, rows)
        hits = np.flatnonzero(keys != NO_KEY)
        stepped = set(np.searchsorted(ends, hits, side="right").tolist()) if len(hits) else set()
        detectors = batch.detectors
        # Streams with a key in sight step every window (to see it end), hit or not.
        count = len(detectors)
        stepped.update(d.index for d in self._active if d.index < count and detectors[d.index] is d)
        if not stepped:
            return
        keys_list, bounds = keys.tolist(), starts.tolist()
        for index in sorted(stepped):
            detector = detectors[index]
            if detector.released:
                continue
            start = bounds[index]
            detector.step(keys_list[start : start + batch.counts[index]])
            if detector.active:
                self._active.add(detector)
            else:
                self._active.discard(detector)


def detect(rate: int, pcm: np.ndarray, chunk: int | None = None) -> list[InbandPress]:
    """The presses in one whole recording (fed `chunk` samples at a time, 20 ms by default)."""
    found: list[InbandPress] = []
    bank = DtmfBank()
    detector = bank.detector(rate, found.append)
    step = chunk or rate // 50
    for start in range(0, len(pcm), step):
        bank.add(detector, start, pcm[start : start + step])
        bank.run()
    detector.flush()
    return found


class _Filters:
    """The filter bank and the window checks at one sample rate, vectorized over windows."""

    def __init__(self, rate: int) -> None:
        n = rate * BLOCK_MS // 1000
        self.n = n
        omega = 2 * np.pi * _FREQUENCIES / rate
        phase = np.outer(np.arange(n), omega)
        # [cos | -sin]: one product gives each block's DFT at the eight frequencies.
        self._bank = np.hstack([np.cos(phase), -np.sin(phase)]).astype(np.float32)
        shift = np.exp(-1j * omega * n)  # a block's phase origin moved back one block
        self._shift_re = shift.real.astype(np.float32)
        self._shift_im = shift.imag.astype(np.float32)
        self._tolerance = FREQUENCY_TOLERANCE * omega

    def analyse(self, blocks: np.ndarray) -> np.ndarray:
        """One row per block: 8 real parts, 8 imaginary parts, energy."""
        samples = blocks.astype(np.float32)
        rows = np.empty((len(blocks), _ROW), dtype=np.float32)
        np.matmul(samples, self._bank, out=rows[:, :16])
        rows[:, 16] = np.einsum("ij,ij->i", samples, samples)
        return rows

    def keys(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The key index each window (`first` block, `second` block) holds, or NO_KEY.

        The cheap checks run on every window, the rest only on the windows left.
        """
        n = self.n
        result = np.full(len(first), NO_KEY)
        e1, e2 = first[:, 16], second[:, 16]
        steady = 10 ** (STEADY_DB / 10)
        # At least one tone at the minimum level, and the same energy in both blocks.
        ok = (e1 + e2 >= _MIN_AMPLITUDE**2 * n) & (e1 <= steady * e2) & (e2 <= steady * e1)
        index = np.flatnonzero(ok)
        if not len(index):
            return result
        first, second = first[index], second[index]
        # The window's DFT: the first block's plus the second's, moved to the same origin.
        ar, ai = first[:, :8], first[:, 8:16]
        br = second[:, :8] * self._shift_re - second[:, 8:16] * self._shift_im
        bi = second[:, :8] * self._shift_im + second[:, 8:16] * self._shift_re
        power = (ar + br) ** 2 + (ai + bi) ** 2
        row = np.argmax(power[:, :4], axis=1)
        column = 4 + np.argmax(power[:, 4:], axis=1)
        k = np.arange(len(index))
        peak_row, peak_column = power[k, row], power[k, column]
        power[k, row] = power[k, column] = 0.0
        margin = 10 ** (GROUP_MARGIN_DB / 10)
        ok = (peak_row >= margin * power[:, :4].max(axis=1)) & (
            peak_column >= margin * power[:, 4:].max(axis=1)
        )
        # Loose first: a tone 2.5 % off its bin keeps well over a fifth of its energy.
        energy = e1[index] + e2[index]
        ok &= (peak_row + peak_column) / n >= 0.2 * energy
        keep = np.flatnonzero(ok)
        if not len(keep):
            return result
        a = ar[keep] + 1j * ai[keep]
        b = br[keep] + 1j * bi[keep]
        energy = energy[keep]
        row, column, k = row[keep], column[keep], k[: len(keep)]
        peaks = peak_row[keep], peak_column[keep]
        levels = []
        for tone, peak in zip((row, column), peaks, strict=True):
            # The phase advance over one block gives the tone's offset from nominal ...
            offset = np.angle(b[k, tone] * np.conj(a[k, tone])) / n  # radians per sample
            ok = np.abs(offset) <= self._tolerance[tone]
            # ... and the window's response at that offset its true amplitude.
            levels.append(np.where(ok, np.sqrt(peak) / (n * _dirichlet(offset, 2 * n)), 0.0))
        low, high = levels
        ok = (low >= _MIN_AMPLITUDE) & (high >= _MIN_AMPLITUDE)
        twist = 20 * np.log10((high + 1e-9) / (low + 1e-9))
        ok &= (twist <= HIGH_LOUDER_DB) & (-twist <= LOW_LOUDER_DB)
        ok &= (low**2 + high**2) * n >= TONE_SHARE * energy  # a tone's energy: a²/2 · 2n
        found = index[keep[ok]]
        result[found] = (row * 4 + column - 4)[ok]
        return result


def _dirichlet(offset: np.ndarray, length: int) -> np.ndarray:
    """|DFT response| of a `length`-sample rectangular window `offset` rad/sample off its bin."""
    half = offset / 2
    safe = np.where(np.abs(half) < 1e-9, 1e-9, half)
    return np.abs(np.sin(safe * length) / (length * np.sin(safe)))
