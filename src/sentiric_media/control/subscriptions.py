"""`StreamEvents` subscribers: each one a bounded queue of one session's events.

The event bus hands every `MediaEvent` of the process to `EventStreams.deliver`
(on the media loop, so it only copies); a subscription keeps the events of its
port, and a slow subscriber loses its oldest events (counted) — never the
call's audio, never the media clock. Releasing the session ends its
subscriptions: their streams finish with OK once they are drained.
"""

from __future__ import annotations

import asyncio
from collections import deque

from sentiric_media.events.bus import MediaEvent

# Events a subscriber may fall behind before the oldest are dropped.
MAX_QUEUED_EVENTS = 256


class Subscription:
    """One subscriber's events of one port, in order."""

    def __init__(self, port: int, keywords: tuple[str, ...], limit: int) -> None:
        self.port = port
        self.keywords = keywords  # normalised: only hits of these words reach this subscriber
        self._queue: deque[MediaEvent] = deque()
        self._limit = limit
        self._wakeup = asyncio.Event()
        self.closed = False
        self.dropped = 0

    def put(self, event: MediaEvent) -> None:
        self._queue.append(event)
        if len(self._queue) > self._limit:
            self._queue.popleft()
            self.dropped += 1
        self._wakeup.set()

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()

    async def next_event(self) -> MediaEvent | None:
        """The next event; None once the session ended and everything was taken."""
        while not self._queue:
            if self.closed:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._queue.popleft()


class EventStreams:
    """Every subscription of the process, by port."""

    def __init__(self, limit: int = MAX_QUEUED_EVENTS) -> None:
        self._limit = limit
        self._by_port: dict[int, list[Subscription]] = {}
        self.dropped_closed = 0  # events dropped by subscriptions that have ended

    def open(self, port: int, keywords: tuple[str, ...]) -> Subscription:
        subscription = Subscription(port, keywords, self._limit)
        self._by_port.setdefault(port, []).append(subscription)
        return subscription

    def close(self, subscription: Subscription) -> None:
        """The subscriber's RPC ended (each subscription comes here once)."""
        subscription.close()
        self.dropped_closed += subscription.dropped
        subscribers = self._by_port.get(subscription.port)
        if subscribers is not None and subscription in subscribers:
            subscribers.remove(subscription)
            if not subscribers:
                del self._by_port[subscription.port]

    def end_port(self, port: int) -> None:
        """The session on `port` ended: its streams finish once drained."""
        for subscription in self._by_port.get(port, ()):
            subscription.close()

    def deliver(self, event: MediaEvent) -> None:
        """An event bus subscriber: copy the event to the subscriptions of its port."""
        keyword = event.data.get("keyword") if event.kind == "keyword" else None
        for subscription in self._by_port.get(event.port, ()):
            if subscription.closed or (
                keyword is not None and keyword not in subscription.keywords
            ):
                continue
            subscription.put(event)

    @property
    def dropped(self) -> int:
        live = sum(s.dropped for subs in self._by_port.values() for s in subs)
        return self.dropped_closed + live
