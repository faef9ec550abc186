"""The in-process event bus: media events from sessions to whoever listens.

Events are plain dataclasses named after the `MediaEvent` oneof fields of the
contract (`playback_started`, `playback_finished`, `rtp_timeout`, ...). Sessions
publish from the media loop, so a subscriber must not block: it copies the
event into its own bounded queue or outbox and returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MediaEvent:
    """One event of one call. `data` holds the fields of the contract's event message."""

    kind: str
    call_id: str
    port: int
    trace_id: str
    media_time_ms: int
    data: dict[str, Any] = field(default_factory=dict)
    timestamp_ms: int = field(default_factory=lambda: int(time.time() * 1000))


Subscriber = Callable[[MediaEvent], None]


class EventBus:
    """Fan-out of events to subscribers; a failing subscriber never stops the others."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: MediaEvent) -> None:
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber failed on %s", event.kind)


def log_event(event: MediaEvent) -> None:
    """The embedded default sink: every event as one log line."""
    log.info(
        "event %s %s",
        event.kind,
        event.data,
        extra={"call_id": event.call_id, "port": event.port, "trace_id": event.trace_id},
    )
