"""What the bot says, frame by frame: the session's outbound audio queue.

Items play strictly in order: prompts (a decoded buffer) and TTS streams
(`StreamAudioToCall`, audio arriving while it plays). The media clock pulls one
frame per tick with `next_frame`; `None` means silence, so nothing is sent.
Echo audio (the caller's own voice, for echo tests) is mixed on top. Starting,
finishing and cancelling an item are reported through `emit`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from sentiric_media.audio.pcm import mix, pad_to
from sentiric_media.audio.resample import ChunkResampler
from sentiric_media.media.encoded import EncodedPrompt

Emit = Callable[[str, dict[str, Any]], None]

# Sentinels returned by an item's `pull`: nothing now (stay current) / done.
WAITING = "waiting"
FINISHED = "finished"


class Prompt:
    """A decoded prompt played from its first to its last sample."""

    def __init__(
        self,
        uri: str,
        samples: np.ndarray,
        interruptible: bool,
        encoded: EncodedPrompt | None = None,
    ) -> None:
        self.uri = uri
        self.interruptible = interruptible
        self._samples = samples
        self._encoded = encoded
        self._cursor = 0
        self.frames_played = 0
        # Where the last whole frame came from, so its packet can be taken from
        # the prompt's shared encoding instead of being encoded per session.
        self.last_slice: tuple[EncodedPrompt, int] | None = None

    def pull(self, count: int) -> np.ndarray | str:
        if self._cursor >= len(self._samples):
            return FINISHED
        start = self._cursor
        frame = self._samples[start : start + count]
        self._cursor += count
        self.frames_played += 1
        if len(frame) < count:
            return pad_to(frame, count)
        if self._encoded is not None:
            self.last_slice = (self._encoded, start)
        return frame

    def cancel(self) -> None:
        """Nothing to release; present so every item can be cancelled alike."""


class TtsStream:
    """Audio chunks of a `StreamAudioToCall` stream, played gap-free as they arrive.

    Chunks are 16-bit mono at `in_rate`, resampled by one stateful resampler for
    the whole stream. `statuses` carries `(success, message)` pairs for the
    caller: `buffer_underrun` when playback ran dry mid-stream, and the end.
    """

    uri = "stream://tts"

    def __init__(
        self,
        in_rate: int,
        out_rate: int,
        max_buffer_seconds: float = 60.0,
        interruptible: bool = False,
    ) -> None:
        self.interruptible = interruptible
        self._resampler = ChunkResampler(in_rate, out_rate)
        self._pieces: deque[np.ndarray] = deque()
        self._buffered = 0
        self._odd_byte = b""
        self._max_buffered = int(max_buffer_seconds * out_rate)
        self._room = asyncio.Event()
        self._room.set()
        self.closed = False
        self.cancelled = False
        self.done = False
        self.playing = False
        self.underruns = 0
        self.frames_played = 0
        self.statuses: asyncio.Queue[tuple[bool, str]] = asyncio.Queue(maxsize=64)

    def push(self, chunk: bytes) -> None:
        data = self._odd_byte + chunk
        usable = len(data) - len(data) % 2
        self._odd_byte = data[usable:]
        if usable:
            self._append(self._resampler.process(np.frombuffer(data[:usable], dtype="<i2")))
        if self._buffered >= self._max_buffered:
            self._room.clear()

    def close(self) -> None:
        """The sender is done: the buffered rest still plays."""
        if not self.closed:
            self.closed = True
            self._append(self._resampler.process(np.zeros(0, dtype=np.int16), last=True))

    async def wait_for_room(self) -> None:
        """Back-pressure on a sender far ahead of playback."""
        await self._room.wait()

    def pull(self, count: int) -> np.ndarray | str:
        if self.cancelled:
            return FINISHED
        if self._buffered < count and not self.closed:
            if self.playing:
                self.playing = False
                self.underruns += 1
                self._report(False, "buffer_underrun")
            return WAITING
        if self._buffered == 0:
            return FINISHED
        self.playing = True
        self.frames_played += 1
        frame = self._take(min(count, self._buffered))
        if self._buffered < self._max_buffered:
            self._room.set()
        return pad_to(frame, count)

    def cancel(self) -> None:
        self.cancelled = True
        self._room.set()

    def finished(self, interrupted: bool) -> None:
        self.done = True
        self._report(not interrupted, "stopped" if interrupted else "")

    def _report(self, success: bool, message: str) -> None:
        if not self.statuses.full():
            self.statuses.put_nowait((success, message))

    def _append(self, samples: np.ndarray) -> None:
        if len(samples):
            self._pieces.append(samples)
            self._buffered += len(samples)

    def _take(self, count: int) -> np.ndarray:
        parts = []
        needed = count
        while needed:
            piece = self._pieces[0]
            if len(piece) <= needed:
                parts.append(self._pieces.popleft())
                needed -= len(piece)
            else:
                parts.append(piece[:needed])
                self._pieces[0] = piece[needed:]
                needed = 0
        self._buffered -= count
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


PlayoutItem = Prompt | TtsStream


class Playout:
    """The ordered queue of items, plus echo, for one session."""

    def __init__(self, frame_samples: int, frame_ms: int, emit: Emit, max_items: int = 256):
        self.frame_samples = frame_samples
        self.frame_ms = frame_ms
        self.max_items = max_items
        self._emit = emit
        self._items: deque[PlayoutItem] = deque()
        self._started = False
        self.echo: deque[np.ndarray] | None = None
        self.prompt_slice: tuple[EncodedPrompt, int] | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        return len(self._items) >= self.max_items

    def enqueue(self, item: PlayoutItem) -> None:
        self._items.append(item)

    def set_echo(self, enabled: bool) -> None:
        self.echo = deque(maxlen=5) if enabled else None

    def feed_echo(self, frame: np.ndarray) -> None:
        if self.echo is not None:
            self.echo.append(frame)

    def next_frame(self) -> np.ndarray | None:
        """The frame to send at this tick, or None for silence.

        Afterwards `prompt_slice` is (the prompt's shared encoding, offset) when
        the frame is an unaltered slice of an encoded prompt, else None.
        """
        self.prompt_slice = None
        frame = self._next_item_frame()
        if self.echo:
            echoed = self.echo.popleft()
            self.prompt_slice = None
            return echoed if frame is None else mix(frame, echoed)
        return frame

    @property
    def current(self) -> PlayoutItem | None:
        """The item playing (or next to play)."""
        return self._items[0] if self._items else None

    @property
    def started(self) -> bool:
        """The current item has sent audio."""
        return self._started

    @property
    def has_interruptible(self) -> bool:
        return any(item.interruptible for item in self._items)

    def stop_interruptible(self) -> int:
        """Barge-in: cancel the playing item and every queued interruptible one."""
        victims = [item for item in self._items if item.interruptible]
        for victim in victims:
            self.stop(victim)
        return len(victims)

    def stop(self, item: PlayoutItem | None = None) -> int:
        """Cancel `item`, or everything queued (the playing item included)."""
        victims = [item] if item is not None else list(self._items)
        victims = [victim for victim in victims if victim in self._items]
        for victim in victims:
            if victim is self._items[0]:
                self._started = False
            self._items.remove(victim)
            victim.cancel()
            self._finish(victim, interrupted=True)
        return len(victims)

    def _next_item_frame(self) -> np.ndarray | None:
        while self._items:
            item = self._items[0]
            frame = item.pull(self.frame_samples)
            if isinstance(frame, np.ndarray):
                if isinstance(item, Prompt):
                    self.prompt_slice, item.last_slice = item.last_slice, None
                if not self._started:
                    self._started = True
                    self._emit("playback_started", {"audio_uri": item.uri})
                return frame
            if frame == WAITING:
                return None
            self._items.popleft()
            self._started = False
            self._finish(item, interrupted=False)
        return None

    def _finish(self, item: PlayoutItem, interrupted: bool) -> None:
        if isinstance(item, TtsStream):
            item.finished(interrupted)
        self._emit(
            "playback_finished",
            {
                "audio_uri": item.uri,
                "interrupted": interrupted,
                "played_ms": item.frames_played * self.frame_ms,
            },
        )
