"""The audio codecs a session can speak, and how they map to RTP payload types.

A `Codec` turns int16 PCM at its `sample_rate` into RTP payload bytes and back.
G.711 codecs are stateless and shared; later codecs with state (G.722, Opus)
are created per session by `Codec.fresh()`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from sentiric_media.media import g711


@dataclass(frozen=True, slots=True)
class Codec:
    """A stateless table codec: one byte per sample, RTP clock = sample rate."""

    name: str
    payload_type: int
    sample_rate: int
    encode_table: np.ndarray
    decode_table: np.ndarray

    @property
    def clock_rate(self) -> int:
        return self.sample_rate

    def samples_per_frame(self, frame_ms: int = 20) -> int:
        return self.sample_rate * frame_ms // 1000

    def encode(self, pcm: np.ndarray) -> bytes:
        return g711.encode(self.encode_table, pcm)

    def decode(self, payload: bytes) -> np.ndarray:
        return g711.decode(self.decode_table, payload)

    def fresh(self) -> Codec:
        return self

    def encode_slice(self, samples: np.ndarray, start: int, count: int) -> bytes:
        """The encoding of samples[start:start+count], from a per-buffer cache.

        A prompt played to hundreds of calls is encoded once, not once per frame
        per call; the cache entry goes when the buffer does.
        """
        key = (id(samples), self.name)
        encoded = _ENCODED.get(key)
        if encoded is None:
            encoded = _ENCODED[key] = self.encode(samples)
            weakref.finalize(samples, _ENCODED.pop, key, None)
        return encoded[start : start + count]


_ENCODED: dict[tuple[int, str], bytes] = {}


PCMU = Codec("PCMU", 0, 8000, g711.ULAW_ENCODE, g711.ULAW_DECODE)
PCMA = Codec("PCMA", 8, 8000, g711.ALAW_ENCODE, g711.ALAW_DECODE)

STATIC_PAYLOAD_TYPES: dict[int, Codec] = {PCMU.payload_type: PCMU, PCMA.payload_type: PCMA}
COMFORT_NOISE_PAYLOAD_TYPE = 13
