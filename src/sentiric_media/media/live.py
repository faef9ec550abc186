"""The caller's live audio for one `RecordAudio` reader, and the tap that feeds it.

`LiveTap` keeps the caller's decoded audio in a jitter buffer and, a fixed
delay behind the clock, reads one whole message of it when it is due (silence
included, so the stream's clock is the call's clock). Every `frame_ms` of
audio is resampled in one go by a stateful resampler and becomes one message
of exactly rate·frame_ms/1000 samples. A reader that falls behind gets the
waiting messages merged into one; beyond `max_backlog` messages the oldest are
dropped and counted. Pushing never waits, so a slow reader can never stall the
call.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque

import numpy as np

from sentiric_media.audio.resample import FrameResampler
from sentiric_media.media.taps import DelayedTap

# Without continuous silence, caller audio missing this long after the last heard is a pause.
HANGOVER_MS = 200


class LiveAudioStream:
    """A bounded, merging queue of L16 messages for one reader."""

    def __init__(self, source_rate: int, rate: int, frame_ms: int, max_backlog: int) -> None:
        self.rate = rate
        self.frame_ms = frame_ms
        self.media_type = f"audio/L16;rate={rate}"
        self.max_backlog = max_backlog
        self._ticks_per_message = frame_ms // 20
        self._resampler = FrameResampler(source_rate, rate)
        self._ready: deque[bytes] = deque()
        self._wakeup = asyncio.Event()
        self.closed = False
        self.messages = 0
        self.dropped_messages = 0
        self.bytes_sent = 0

    @property
    def ticks_per_message(self) -> int:
        return self._ticks_per_message

    def push_block(self, block: np.ndarray) -> None:
        """A whole message's worth of audio (`ticks_per_message` frames) at once."""
        self._ready.append(self._resampler.process(block).astype("<i2", copy=False).tobytes())
        if len(self._ready) > self.max_backlog:
            self._ready.popleft()
            self.dropped_messages += 1
        self._wakeup.set()

    def close(self) -> None:
        self.closed = True
        self._wakeup.set()

    async def next_audio(self) -> bytes | None:
        """Everything waiting, as one message; None once the stream is closed."""
        while not self._ready:
            if self.closed:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        if len(self._ready) == 1:
            audio = self._ready.popleft()
        else:
            audio = b"".join(self._ready)
            self._ready.clear()
        self.messages += 1
        self.bytes_sent += len(audio)
        return audio


class LiveTap(DelayedTap):
    """Feeds one `LiveAudioStream` from the session's tick, a jitter delay behind the clock."""

    def __init__(
        self,
        stream: LiveAudioStream,
        rate: int,
        frame_samples: int,
        delay: int,
        drops: Counter[str],
        send_silence: bool = True,
    ) -> None:
        super().__init__(rate, frame_samples, delay, drops)
        self.stream = stream
        # With `send_silence` False (LIVE_AUDIO_SEND_SILENCE=false, the Rust service's
        # behaviour) a message goes out only while the caller talks: when it holds
        # caller audio, or within `HANGOVER_MS` of some, so lost packets inside a
        # talkspurt are still filled and the audio sent keeps its timing.
        self.send_silence = send_silence
        self._heard_until: int | None = None

    def on_tick(self, position: int) -> None:
        jitter = self.buffer(position)
        # Read a whole message at once when it is due: one read and one
        # resampling per message instead of per tick.
        end = position - self.delay + self.frame
        block = self.stream.ticks_per_message * self.frame
        if end - jitter.cursor < block:
            return
        if end - jitter.cursor > block:
            jitter.skip_to(end - block)
        audio, heard = jitter.read(block)
        if heard:
            self._heard_until = jitter.cursor
        elif not self.send_silence and (
            self._heard_until is None
            or jitter.cursor - self._heard_until > self.rate * HANGOVER_MS // 1000
        ):
            return
        self.stream.push_block(audio)

    def close(self) -> None:
        self.stream.close()
