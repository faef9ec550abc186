"""Prompts encoded once per format, shared by every call that plays them.

Encoding is the costly half of sending (Opus ~200 µs a frame, G.722 ~65 µs),
and a prompt is typically played to many calls. `PromptEncodings` encodes a
prompt buffer once per `MediaFormat.encoder_key` with a fresh encoder, packet
by packet from its first sample, and keeps the packets while the buffer
lives. A fresh encoder at the prompt's first frame gives the bits a per-call
encoder reset at that frame would give, so the caller cannot tell the
difference. Stateful codecs are encoded in an executor (a long prompt is
hundreds of milliseconds of CPU), short G.711 prompts inline.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass

import numpy as np

from sentiric_media.media.codecs import MediaFormat

# A stateless (G.711) prompt up to this long is encoded on the loop (~1 ms per minute).
_INLINE_SAMPLES = 8000 * 60


@dataclass(frozen=True, slots=True)
class EncodedPrompt:
    """One prompt's packets in one format: packet k holds samples [k·n, (k+1)·n)."""

    key: tuple[object, ...]
    packet_samples: int
    packets: tuple[bytes, ...]

    def packet_for(self, key: tuple[object, ...], start: int) -> bytes | None:
        """The packet beginning at sample `start`, if this encoding is of format `key`."""
        return self.packet_at(start) if key == self.key else None

    def packet_at(self, start: int) -> bytes | None:
        """The packet that begins at sample `start`, if one does."""
        index, rest = divmod(start, self.packet_samples)
        if rest or index >= len(self.packets):
            return None
        return self.packets[index]


def encode_prompt(samples: np.ndarray, fmt: MediaFormat) -> EncodedPrompt:
    """Blocking: encode `samples` (at `fmt.sample_rate`) packet by packet, zero-padded."""
    size = fmt.packet_samples
    count = -(-len(samples) // size)
    padded = np.zeros(count * size, dtype=np.int16)
    padded[: len(samples)] = samples
    encoder = fmt.new_encoder()
    encoder.reset()
    if not fmt.codec.stateful:
        # One byte per sample and no state: encode the whole buffer in one go.
        data = encoder.encode(padded)
        step = len(data) // count if count else 0
        packets = tuple(data[k * step : (k + 1) * step] for k in range(count))
    else:
        packets = tuple(encoder.encode(padded[k * size : (k + 1) * size]) for k in range(count))
    return EncodedPrompt(fmt.encoder_key, size, packets)


class PromptEncodings:
    """Encoded prompts by (buffer, format); an entry goes when its buffer does."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, tuple[object, ...]], EncodedPrompt] = {}
        self._loading: dict[tuple[int, tuple[object, ...]], asyncio.Future[EncodedPrompt]] = {}

    def __len__(self) -> int:
        return len(self._cache)

    async def prepare(self, samples: np.ndarray, fmt: MediaFormat) -> EncodedPrompt:
        key = (id(samples), fmt.encoder_key)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        if fmt.codec.stateful or len(samples) > _INLINE_SAMPLES:
            future = asyncio.get_running_loop().run_in_executor(None, encode_prompt, samples, fmt)
            self._loading[key] = future
            try:
                encoded = await asyncio.shield(future)
            finally:
                self._loading.pop(key, None)
        else:
            encoded = encode_prompt(samples, fmt)
        if key not in self._cache:
            self._cache[key] = encoded
            weakref.finalize(samples, self._cache.pop, key, None)
        return encoded
