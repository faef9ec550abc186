"""Samples of the service and the generator taken by the orchestrator during a run.

`take` records a named sample (CPU seconds of the service and of each
generator process, the service's memory, per-CPU idle time, and `/metrics`).
`wait_until` sleeps to a moment; with a timeline enabled it scrapes once a
second on the way, so a run can show *when* drops or late ticks happened
(ramp, steady state, tear-down). One scrape a second costs the service little,
but it is off by default.
"""

from __future__ import annotations

import time
from typing import Any

from bench.report import PACING, PREFIX
from bench.service import (
    ServiceProcess,
    cpu_idle_seconds,
    process_cpu_seconds,
    process_memory_kb,
    runqueue_wait_seconds,
    tree_cpu_seconds,
)


class Sampler:
    def __init__(
        self,
        service: ServiceProcess,
        generator_pids: dict[str, int],
        origin: float,
        timeline: bool = False,
    ) -> None:
        self.service = service
        self.pids = generator_pids
        self.origin = origin  # timeline times are seconds since this moment (the ramp)
        self.samples: dict[str, dict[str, Any]] = {}
        self.timeline: list[dict[str, float]] | None = [] if timeline else None
        self._last: tuple[float, float] | None = None

    def take(self, name: str, metrics: bool = True) -> dict[str, Any]:
        sample: dict[str, Any] = {
            "t": time.monotonic(),
            "service_cpu": tree_cpu_seconds(self.service.pid),  # with its worker processes
            "memory": process_memory_kb(self.service.pid),
            "generator_cpu": {n: process_cpu_seconds(p) for n, p in self.pids.items()},
            "cpu_idle": cpu_idle_seconds(),
            "runqueue_wait": {
                "service": runqueue_wait_seconds(self.service.pid),
                **{n: runqueue_wait_seconds(p) for n, p in self.pids.items()},
            },
        }
        if metrics:
            sample["metrics"] = self.service.scrape()
        self.samples[name] = sample
        return sample

    def wait_until(self, moment: float) -> None:
        while (remaining := moment - time.monotonic()) > 0:
            time.sleep(min(remaining, 1.0) if self.timeline is not None else remaining)
            if self.timeline is not None:
                self.point()

    def point(self) -> None:
        """One timeline point: cumulative counters and the CPU share since the last point."""
        if self.timeline is None:
            return
        now, cpu = time.monotonic(), tree_cpu_seconds(self.service.pid)
        try:
            m = self.service.scrape()
        except OSError:
            return
        share = 0.0
        if self._last is not None and now > self._last[0]:
            share = (cpu - self._last[1]) / (now - self._last[0])
        self._last = (now, cpu)
        over_2ms = m.get(PACING + "_count", 0.0) - m.get(PACING + '_bucket{le="0.002"}', 0.0)
        self.timeline.append(
            {
                "t": round(now - self.origin, 2),
                "sessions": m.get(PREFIX + "sessions_active", 0.0),
                "cpu": round(share, 3),
                "received": m.get(PREFIX + "rtp_packets_received_total", 0.0),
                "sent": m.get(PREFIX + "rtp_packets_sent_total", 0.0),
                "dropped": sum(
                    v for k, v in m.items() if k.startswith(PREFIX + "rtp_packets_dropped_total")
                ),
                "ticks_over_2ms": over_2ms,
                "frames_skipped": m.get(PREFIX + "pacing_frames_skipped_total", 0.0),
                "rss_mb": round(process_memory_kb(self.service.pid).get("VmRSS", 0) / 1024, 1),
            }
        )


def render_timeline(points: list[dict[str, float]]) -> str:
    """The timeline as a small table (counters as increments since the previous point)."""
    lines = ["     t  sessions   cpu  recv/s  sent/s  dropped  ticks>2ms  skipped  RSS MB"]
    previous: dict[str, float] | None = None
    for p in points:
        if previous is not None:
            dt = max(p["t"] - previous["t"], 1e-9)
            lines.append(
                f"{p['t']:6.1f}  {p['sessions']:8.0f}  {p['cpu']:4.0%}  "
                f"{(p['received'] - previous['received']) / dt:6.0f}  "
                f"{(p['sent'] - previous['sent']) / dt:6.0f}  "
                f"{p['dropped'] - previous['dropped']:7.0f}  "
                f"{p['ticks_over_2ms'] - previous['ticks_over_2ms']:9.0f}  "
                f"{p['frames_skipped'] - previous['frames_skipped']:7.0f}  {p['rss_mb']:6.1f}"
            )
        previous = p
    return "\n".join(lines)
