"""The RTP port pool: even ports, handed out least-recently-used, with quarantine.

A released port waits exactly `quarantine_seconds` (its own deadline, not a
periodic sweep) before it can be handed out again, so late packets of the old
call never reach a new one. The clock is injectable for tests.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Iterable

from sentiric_media.errors import ResourceExhausted


class PortPool:
    """Free ports in FIFO order plus a heap of (release deadline, port)."""

    def __init__(
        self,
        ports: Iterable[int],
        quarantine_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._free: deque[int] = deque(ports)
        self._quarantine: list[tuple[float, int]] = []
        self._in_use: set[int] = set()
        self.quarantine_seconds = quarantine_seconds
        self._clock = clock
        self.size = len(self._free)

    def acquire(self) -> int:
        """The least recently used free port; raises ResourceExhausted when none is left."""
        self._expire()
        if not self._free:
            raise ResourceExhausted(
                f"no free RTP port: {len(self._in_use)} in use, "
                f"{len(self._quarantine)} in quarantine, pool of {self.size}"
            )
        port = self._free.popleft()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        """Put a port handed out by `acquire` (in use, or failed to bind) into quarantine.

        Releasing a port that is not out (twice, or never acquired) does nothing, so
        a port can never be in the pool twice.
        """
        if port not in self._in_use:
            return
        self._in_use.discard(port)
        heapq.heappush(self._quarantine, (self._clock() + self.quarantine_seconds, port))

    def _expire(self) -> None:
        now = self._clock()
        while self._quarantine and self._quarantine[0][0] <= now:
            self._free.append(heapq.heappop(self._quarantine)[1])

    @property
    def free_count(self) -> int:
        self._expire()
        return len(self._free)

    @property
    def quarantined_count(self) -> int:
        self._expire()
        return len(self._quarantine)

    @property
    def in_use_count(self) -> int:
        return len(self._in_use)
