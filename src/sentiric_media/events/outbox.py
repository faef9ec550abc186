"""The outbox: broker messages on local disk until the broker confirmed them.

One small JSON file per message, named so that names sort in the order the
messages were put. A message is in the outbox from `put` until `remove` after
the broker's confirm, so neither a broker outage nor a restart loses it. The
outbox is bounded: `put` refuses beyond `max_messages` (the caller decides what
that means; nothing is dropped silently).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    name: str
    routing_key: str
    body: dict[str, Any]


class Outbox:
    def __init__(self, folder: Path, max_messages: int) -> None:
        self.folder = folder
        self.max_messages = max_messages
        self._counter = itertools.count()
        folder.mkdir(parents=True, exist_ok=True)
        self._count = len(self._names())

    def __len__(self) -> int:
        return self._count

    def put(self, routing_key: str, body: dict[str, Any]) -> bool:
        """Persist one message; False when the outbox is full."""
        if self._count >= self.max_messages:
            return False
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._counter):06d}.json"
        temporary = self.folder / f".{name}.tmp"
        temporary.write_text(json.dumps({"routing_key": routing_key, "body": body}))
        os.replace(temporary, self.folder / name)
        self._count += 1
        return True

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        messages = []
        for name in self._names()[:limit]:
            path = self.folder / name
            try:
                data = json.loads(path.read_text())
                messages.append(OutboxMessage(name, data["routing_key"], data["body"]))
            except (OSError, ValueError, KeyError) as exc:
                log.error("outbox file %s is unreadable (%s); moved aside", name, exc)
                path.rename(path.with_suffix(".bad"))
                self._count -= 1
        return messages

    def remove(self, message: OutboxMessage) -> None:
        try:
            (self.folder / message.name).unlink()
            self._count -= 1
        except FileNotFoundError:
            pass

    def _names(self) -> list[str]:
        return sorted(p.name for p in self.folder.glob("*.json"))
