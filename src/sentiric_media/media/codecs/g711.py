"""G.711 μ-law (PCMU, PT 0) and A-law (PCMA, PT 8): stateless, one shared coder each.

The lookup tables live in `g711_tables`; a 20 ms frame is one `take`, ~1.5 µs.
Loss is concealed by silence (G.711 has no PLC of its own).
"""

from __future__ import annotations

import numpy as np

from sentiric_media.media.codecs import g711_tables
from sentiric_media.media.codecs.base import Codec, MediaFormat, silence


class G711:
    """Encoder and decoder at once: no state, so every session shares one object."""

    __slots__ = ("_decode_table", "_encode_table")

    def __init__(self, encode_table: np.ndarray, decode_table: np.ndarray) -> None:
        self._encode_table = encode_table
        self._decode_table = decode_table

    def encode(self, pcm: np.ndarray) -> bytes:
        return g711_tables.encode(self._encode_table, pcm)

    @property
    def decode_table(self) -> np.ndarray:
        """int16 of each code byte (for consumers that decode many payloads at once)."""
        return self._decode_table

    def decode(self, payload: bytes) -> np.ndarray:
        return g711_tables.decode(self._decode_table, payload)

    def reset(self) -> None:
        """Stateless: nothing to forget."""

    def conceal(self, samples: int) -> np.ndarray:
        return silence(samples)

    def decode_fec(self, next_payload: bytes, samples: int) -> np.ndarray | None:
        return None


ULAW = G711(g711_tables.ULAW_ENCODE, g711_tables.ULAW_DECODE)
ALAW = G711(g711_tables.ALAW_ENCODE, g711_tables.ALAW_DECODE)


def _ulaw(_: MediaFormat) -> G711:
    return ULAW


def _alaw(_: MediaFormat) -> G711:
    return ALAW


PCMU = Codec("PCMU", 8000, 8000, _ulaw, _ulaw, static_payload_type=0, stateful=False)
PCMA = Codec("PCMA", 8000, 8000, _alaw, _alaw, static_payload_type=8, stateful=False)
