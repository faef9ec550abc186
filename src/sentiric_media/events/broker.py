"""Events on the message broker: the JSON messages and the RabbitMQ publisher.

Messages go to the durable topic exchange `sentiric_events` as persistent JSON.
`RabbitPublisher` puts each message into the outbox first and deletes it only
after the broker confirmed it (publisher confirms), so a broker outage or a
restart delays messages but never loses them. Without `RABBITMQ_URL`,
`LogPublisher` writes them to the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any, Protocol

import aio_pika

from sentiric_media.events.bus import MediaEvent
from sentiric_media.events.outbox import Outbox

log = logging.getLogger(__name__)

RECORDING_AVAILABLE = "call.recording.available"
PLAYBACK_FINISHED = "call.media.playback.finished"
DTMF_RECEIVED = "call.media.dtmf.received"


def rfc3339(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def recording_available(
    *, trace_id: str, call_id: str, recording_uri: str, extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "eventType": RECORDING_AVAILABLE,
        "traceId": trace_id,
        "callId": call_id,
        "recordingUri": recording_uri,
        "timestamp": rfc3339(),
        **extra,
    }


def playback_finished(event: MediaEvent) -> dict[str, Any]:
    return {
        "eventType": PLAYBACK_FINISHED,
        "traceId": event.trace_id,
        "callId": event.call_id,
        "uri": event.data["audio_uri"],
        "interrupted": event.data["interrupted"],
        "playedMs": event.data["played_ms"],
        "timestamp": rfc3339(),
    }


def dtmf_received(event: MediaEvent) -> dict[str, Any]:
    return {
        "eventType": DTMF_RECEIVED,
        "traceId": event.trace_id,
        "callId": event.call_id,
        "digit": event.data["digit"],
        "durationMs": event.data["duration_ms"],
        "source": event.data["source"],
        "timestamp": rfc3339(),
    }


class Publisher(Protocol):
    waiting: int

    def publish(self, routing_key: str, body: dict[str, Any]) -> bool: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class LogPublisher:
    """The embedded default: broker messages go to the log."""

    waiting = 0

    def publish(self, routing_key: str, body: dict[str, Any]) -> bool:
        log.info(
            "broker message %s %s",
            routing_key,
            json.dumps(body, ensure_ascii=False),
            extra={"trace_id": body.get("traceId", ""), "call_id": body.get("callId", "")},
        )
        return True

    async def start(self) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to close."""


class RabbitPublisher:
    """Outbox-backed publishing with confirms; one background task drains the outbox."""

    def __init__(self, url: str, exchange: str, outbox: Outbox, max_backoff: float = 10.0):
        self.url = url
        self.exchange_name = exchange
        self.outbox = outbox
        self.max_backoff = max_backoff
        self.connected = False
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return len(self.outbox)

    def publish(self, routing_key: str, body: dict[str, Any]) -> bool:
        if not self.outbox.put(routing_key, body):
            log.error("event outbox full (%d messages); %s refused", len(self.outbox), routing_key)
            return False
        self._wakeup.set()
        return True

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rabbitmq")

    async def stop(self, drain_seconds: float = 2.0) -> None:
        """Give a connected publisher a moment to send what waits, then stop.

        Whatever is still unsent stays in the outbox for the next start.
        """
        deadline = asyncio.get_running_loop().time() + drain_seconds
        while self.connected and len(self.outbox) and asyncio.get_running_loop().time() < deadline:
            self._wakeup.set()
            await asyncio.sleep(0.05)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            connection = None
            try:
                connection = await aio_pika.connect_robust(self.url, timeout=5)
                channel = await connection.channel(publisher_confirms=True)
                exchange = await channel.declare_exchange(
                    self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
                self.connected = True
                log.info("connected to RabbitMQ; %d messages waiting", len(self.outbox))
                backoff = 0.5
                await self._drain_forever(exchange)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                log.warning(
                    "RabbitMQ unavailable (%s); %d messages wait in the outbox",
                    exc or type(exc).__name__,
                    len(self.outbox),
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()

    async def _drain_forever(self, exchange: aio_pika.abc.AbstractExchange) -> None:
        while True:
            self._wakeup.clear()
            for message in self.outbox.pending():
                await exchange.publish(
                    aio_pika.Message(
                        json.dumps(message.body).encode(),
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        message_id=message.name,
                    ),
                    routing_key=message.routing_key,
                    mandatory=False,
                    timeout=10,
                )
                self.outbox.remove(message)
            if not len(self.outbox):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout=5)
