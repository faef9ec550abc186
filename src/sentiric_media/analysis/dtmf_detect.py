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
from typing import Any, NamedTuple

import numpy as np

from sentiric_media.analysis.dtmf_filters import (
    BLOCK_MS,
    FREQUENCY_TOLERANCE,
    GROUP_MARGIN_DB,
    HIGH_LOUDER_DB,
    KEYS,
    LOW_LOUDER_DB,
    MIN_LEVEL_DBM0,
    NO_KEY,
    ROW,
    STEADY_DB,
    TONE_SHARE,
    Filters,
)

CONFIRM_WINDOWS = 2
END_WINDOWS = 4
MAX_JUMP_MS = 60  # a jump in positions this small does not restart the stream

__all__ = [
    "BLOCK_MS",
    "CONFIRM_WINDOWS",
    "END_WINDOWS",
    "FREQUENCY_TOLERANCE",
    "GROUP_MARGIN_DB",
    "HIGH_LOUDER_DB",
    "LOW_LOUDER_DB",
    "MIN_LEVEL_DBM0",
    "STEADY_DB",
    "TONE_SHARE",
    "DtmfBank",
    "DtmfDetector",
    "InbandPress",
    "detect",
]


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

    __slots__ = (
        "_candidate",
        "_pending",
        "_pending_at",
        "_press",
        "batch",
        "block",
        "index",
        "on_press",
        "queued",
        "rate",
        "released",
        "restarted",
        "slot",
        "start",
    )

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
        self.batch = (0, 0)  # ... and their batch
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

    def takes_whole(self, position: int, count: int) -> bool:
        """`count` samples at `position` continue the stream in whole blocks, none pending."""
        return self._pending is None and position == self._pending_at and not count % self.block

    def cut_whole(self, position: int, count: int, queued: bool) -> None:
        """`cut` for audio that `takes_whole` (its samples stay where they are)."""
        if not queued:
            self.start = position
        self._pending_at += count

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
        self.on_press(InbandPress(KEYS[press.key], press.first, blocks * BLOCK_MS))


class _Batch:
    """The blocks waiting at one rate, as parallel lists (no per-stream work at run time).

    A batch holds int16 samples, or G.711 code bytes (`table` decodes them, for
    all streams of the batch in one lookup).
    """

    __slots__ = ("blocks", "counts", "detectors", "slots", "table")

    def __init__(self, table: np.ndarray | None) -> None:
        self.table = table
        self.detectors: list[DtmfDetector] = []
        self.blocks: list[Any] = []  # flat samples (or code bytes), whole blocks
        self.counts: list[int] = []  # blocks of each
        self.slots: list[int] = []


class DtmfBank:
    """Runs the detection of many streams at once: `add` each one's audio, then `run`.

    Every block added goes through one filter-bank product and one vectorized
    window check; Python steps only the streams with a key in sight.
    """

    def __init__(self) -> None:
        self._batches: dict[tuple[int, int], _Batch] = {}  # by (rate, id of the G.711 table)
        self._filters: dict[int, Filters] = {}
        self._last = np.zeros((16, ROW), dtype=np.float32)  # each detector's last block, by slot
        self._free: list[int] = list(range(15, -1, -1))
        self._active: set[DtmfDetector] = set()
        self._released: list[int] = []
        self._generation = 1  # a detector with blocks in the current batch carries it

    def detector(self, rate: int, on_press: Callable[[InbandPress], None]) -> DtmfDetector:
        """A new stream's detector; `release` it when the stream ends."""
        if not self._free:
            grown = len(self._last)
            self._last = np.vstack([self._last, np.zeros((grown, ROW), dtype=np.float32)])
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
        """The stream's next audio (int16 at the detector's rate) at `position`."""
        queued = self._queued(detector, position, 0)
        blocks = detector.cut(position, pcm, queued)
        if blocks is not None:
            self._queue(detector, blocks, len(blocks) // detector.block, queued, None)

    def add_g711(
        self, detector: DtmfDetector, position: int, payload: bytes, table: np.ndarray
    ) -> None:
        """G.711 code bytes (8 kHz), decoded by `table` together with the batch's others."""
        if not detector.takes_whole(position, len(payload)):
            self.add(detector, position, table.take(np.frombuffer(payload, dtype=np.uint8)))
            return
        queued = self._queued(detector, position, id(table))
        detector.cut_whole(position, len(payload), queued)
        self._queue(detector, payload, len(payload) // detector.block, queued, table)

    def _queued(self, detector: DtmfDetector, position: int, table_id: int) -> bool:
        """The stream has blocks waiting in the batch `table_id` (run what would not fit)."""
        if detector.queued != self._generation:
            return False
        if detector.batch != (detector.rate, table_id) or detector.restarts(position):
            self.run()  # what waits of the stream is analysed before it restarts
            return False
        return True

    def _queue(
        self,
        detector: DtmfDetector,
        blocks: Any,
        count: int,
        queued: bool,
        table: np.ndarray | None,
    ) -> None:
        if detector.restarted:
            self._last[detector.slot] = 0.0
            detector.restarted = False
        key = (detector.rate, 0 if table is None else id(table))
        batch = self._batches.get(key)
        if batch is None:
            batch = self._batches[key] = _Batch(table)
        if queued:
            # A second packet of the stream before the run: its blocks follow the first's.
            index = detector.index
            if table is None:
                batch.blocks[index] = np.concatenate([batch.blocks[index], blocks])
            else:
                batch.blocks[index] += blocks
            batch.counts[index] += count
        else:
            detector.index = len(batch.detectors)
            detector.queued = self._generation
            detector.batch = key
            batch.detectors.append(detector)
            batch.blocks.append(blocks)
            batch.counts.append(count)
            batch.slots.append(detector.slot)

    def run(self) -> None:
        """Analyse everything added since the last run."""
        batches, self._batches = self._batches, {}
        self._generation += 1
        for (rate, _), batch in batches.items():
            filters = self._filters.get(rate) or self._filters.setdefault(rate, Filters(rate))
            self._run_batch(filters, batch)
        self._free += self._released
        self._released.clear()

    def _run_batch(self, filters: Filters, batch: _Batch) -> None:
        blocks = batch.blocks
        if batch.table is not None:
            samples = batch.table.take(np.frombuffer(b"".join(blocks), dtype=np.uint8))
        else:
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
