"""A worker process of the media process, and the socket pair to it.

The media loop must never wait for analysis, so CPU-heavy models run in child
processes (spawned, never forked: the media process has threads). Each
`ProcessLink` owns one: it spawns it on first use, sends it one framed batch
per call of `send` through an asyncio transport (non-blocking; `backlog`
tells how far the worker is behind), hands every framed reply to its owner,
and starts the worker again, no sooner than `RESTART_AFTER_S`, if it dies.

A frame is a 4-byte length, then a pickle: both ends are this program, and
nothing else can write to the socket pair.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import pickle
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

RESTART_AFTER_S = 1.0
# A worker shares a core with the media loop when an operator pins the service; the
# loop must win, so workers run at a lower priority.
NICENESS = 10
_LENGTH = struct.Struct("!I")


def frame(payload: object) -> bytes:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def unframe(buffer: bytearray) -> list[Any]:
    """Take every complete frame out of `buffer`."""
    out = []
    while len(buffer) >= _LENGTH.size:
        (size,) = _LENGTH.unpack_from(buffer)
        if len(buffer) < _LENGTH.size + size:
            break
        out.append(pickle.loads(bytes(buffer[_LENGTH.size : _LENGTH.size + size])))
        del buffer[: _LENGTH.size + size]
    return out


class _Link(asyncio.Protocol):
    def __init__(self, owner: ProcessLink) -> None:
        self._owner = owner
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        for replies in unframe(self._buffer):
            self._owner.on_replies(replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner.lost()


class ProcessLink:
    """One worker process: `target(sock, *args)` runs in it."""

    def __init__(
        self,
        name: str,
        target: Callable[..., None],
        args: tuple[Any, ...],
        on_replies: Callable[[Any], None],
        on_restart: Callable[[], None] = lambda: None,
        on_lost: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self._target = target
        self._args = args
        self.on_replies = on_replies
        self._on_restart = on_restart
        self._on_lost = on_lost
        self._process: multiprocessing.process.BaseProcess | None = None
        self._transport: asyncio.Transport | None = None
        self._starting: asyncio.Task[None] | None = None
        self._died_at = 0.0
        self.restarts = 0
        self._stopped = False

    @property
    def running(self) -> bool:
        return self._transport is not None

    @property
    def backlog(self) -> int:
        """Bytes written but not yet taken by the worker."""
        return self._transport.get_write_buffer_size() if self._transport else 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start_soon(self) -> None:
        """Start the worker (in the background) unless it runs, starts or just died."""
        if self._transport is not None or self._starting is not None or self._stopped:
            return
        if self._died_at and time.monotonic() - self._died_at < RESTART_AFTER_S:
            return
        self._starting = asyncio.get_running_loop().create_task(self._start())

    def send(self, batch: object) -> bool:
        """One framed write; False while the worker is not running."""
        if self._transport is None:
            self.start_soon()
            return False
        self._transport.write(frame(batch))
        return True

    async def _start(self) -> None:
        try:
            ours, theirs = socket.socketpair()
            context = multiprocessing.get_context("spawn")
            process = context.Process(
                target=self._target, args=(theirs, *self._args), name=self.name, daemon=True
            )
            process.start()
            theirs.close()
            loop = asyncio.get_running_loop()
            transport, _ = await loop.connect_accepted_socket(lambda: _Link(self), ours)
        except OSError:
            log.exception("%s could not start", self.name)
            self._died_at = time.monotonic()
            return
        finally:
            self._starting = None
        self._transport, self._process = transport, process
        if self._died_at:
            self.restarts += 1
            self._on_restart()
        log.info("%s started (pid %s)", self.name, process.pid)

    def lost(self) -> None:
        if self._transport is None:
            return
        self._transport = None
        self._died_at = time.monotonic()
        process, self._process = self._process, None
        if process is not None:
            process.join(timeout=0)  # it has ended or is ending: never wait on the loop
            log.error("%s ended (exit code %s); it starts again", self.name, process.exitcode)
        self._on_lost()
        with contextlib.suppress(RuntimeError):  # no loop: the process is shutting down
            asyncio.get_running_loop().call_later(RESTART_AFTER_S, self.start_soon)

    def stop(self) -> None:
        """End the worker (the media process is shutting down)."""
        self._stopped = True
        if self._starting is not None:
            self._starting.cancel()
        transport, process = self._transport, self._process
        self._transport = self._process = None
        if transport is not None:
            transport.abort()
        if process is not None:
            # The worker keeps nothing: end it now rather than wait for it to see the
            # socket close (which happens only on a later loop iteration).
            process.terminate()
            process.join(timeout=1.0)
            if process.is_alive():
                process.kill()
                process.join(timeout=1.0)
