"""The media clock: one task that paces every session against absolute deadlines.

Time is cut into 20 ms frames, and each frame into `phases` slots (2 ms by
default). A session is pinned to one slot; at slot p of frame k, reached at
`epoch + k·20 ms + p·2 ms`, the clock calls `on_tick(k)` on every session of that
slot. Spreading sessions over slots keeps one burst of sends from delaying all
calls; deadlines are absolute, so pacing never drifts, and a slot never runs before
its deadline. After the last slot of a frame the clock runs its `after_frame`
hooks: work batched over all sessions (in-band DTMF detection). If the loop
stalls, the clock catches up slot by slot (no audio is skipped; the sockets are
read between slots) unless the stall exceeds `max_catch_up_ms`, in which case it
jumps ahead and counts the skipped frames.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

# Upper bounds (seconds) of the pacing-lateness histogram buckets.
LATENESS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, float("inf"))


class ClockMember(Protocol):
    def on_tick(self, frame: int) -> None: ...


class MediaClock:
    """Shared pacing for all sessions of the process."""

    def __init__(self, frame_ms: int = 20, phases: int = 10, max_catch_up_ms: int = 200) -> None:
        self.frame_seconds = frame_ms / 1000
        self.phases = phases
        self.slot_seconds = self.frame_seconds / phases
        self.max_catch_up = max_catch_up_ms / 1000
        self.epoch = time.monotonic()
        self._slots: list[list[ClockMember]] = [[] for _ in range(phases)]
        self.after_frame: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.lateness_counts = [0] * len(LATENESS_BUCKETS)
        self.lateness_sum = 0.0
        self.frames_skipped = 0
        self.member_errors = 0

    def attach(self, member: ClockMember) -> int:
        """Pin `member` to the least loaded slot and return the slot number."""
        phase = min(range(self.phases), key=lambda p: len(self._slots[p]))
        self._slots[phase].append(member)
        return phase

    def detach(self, member: ClockMember) -> None:
        for slot in self._slots:
            if member in slot:
                slot.remove(member)

    def seconds_to_samples(self, moment: float, rate: int) -> int:
        """The position of a `time.monotonic()` moment on the clock, in samples at `rate`."""
        return int((moment - self.epoch) * rate)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="media-clock")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        slot_index = int((time.monotonic() - self.epoch) / self.slot_seconds) + 1
        while True:
            deadline = self.epoch + slot_index * self.slot_seconds
            # The loop's timers have millisecond resolution and may fire early:
            # sleep again until the deadline has really passed.
            while (wait := deadline - time.monotonic()) > 0:  # noqa: ASYNC110 - to an absolute deadline
                await asyncio.sleep(wait)
            lateness = time.monotonic() - deadline
            if lateness > self.slot_seconds:
                # Catching up after a stall: let the loop read the sockets between
                # slots, so packets that arrived in time are not counted late.
                await asyncio.sleep(0)
                lateness = time.monotonic() - deadline
            if lateness > self.max_catch_up:
                skipped = int(lateness / self.slot_seconds)
                self.frames_skipped += skipped // self.phases
                slot_index += skipped
                log.warning("media clock stalled %.0f ms; skipped ahead", lateness * 1000)
                continue
            self._observe(lateness)
            frame, phase = divmod(slot_index, self.phases)
            for member in self._slots[phase]:
                try:
                    member.on_tick(frame)
                except Exception:
                    self.member_errors += 1
                    log.exception("session tick failed")
            if phase == self.phases - 1:
                for hook in self.after_frame:
                    try:
                        hook()
                    except Exception:
                        self.member_errors += 1
                        log.exception("frame hook failed")
            slot_index += 1

    def _observe(self, lateness: float) -> None:
        self.lateness_counts[bisect.bisect_left(LATENESS_BUCKETS, lateness)] += 1
        self.lateness_sum += lateness
