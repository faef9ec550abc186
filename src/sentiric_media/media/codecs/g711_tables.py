"""G.711 μ-law and A-law lookup tables (the codec objects are in `g711`).

The tables are computed once at import from the ITU-T G.711 segment rules (the
same arithmetic as the reference `g711.c`), vectorised with numpy; encoding or
decoding a frame is then a single `take`, about 1.5 µs for 20 ms.
"""

from __future__ import annotations

import numpy as np

_ALL_PCM = np.arange(-32768, 32768, dtype=np.int32)
_ALL_CODES = np.arange(256, dtype=np.int32)
_SEGMENT_ENDS_ULAW = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_SEGMENT_ENDS_ALAW = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
_ULAW_BIAS = 0x21  # 0x84 in 16-bit terms
_ULAW_CLIP = 8159


def _ulaw_encode(pcm: np.ndarray) -> np.ndarray:
    # Works on 14-bit magnitudes like the reference code, so negative values round
    # the same way (arithmetic shift before taking the magnitude).
    value = pcm >> 2
    mask = np.where(value < 0, 0x7F, 0xFF)
    value = np.minimum(np.abs(value), _ULAW_CLIP) + _ULAW_BIAS
    segment = np.searchsorted(_SEGMENT_ENDS_ULAW, value, side="left")
    code = (np.minimum(segment, 7) << 4) | ((value >> (segment + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return code ^ mask


def _ulaw_decode(code: np.ndarray) -> np.ndarray:
    inverted = ~code & 0xFF
    exponent = (inverted >> 4) & 0x07
    mantissa = inverted & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(inverted & 0x80, -magnitude, magnitude)


def _alaw_encode(pcm: np.ndarray) -> np.ndarray:
    value = pcm >> 3
    mask = np.where(value >= 0, 0xD5, 0x55)
    value = np.where(value >= 0, value, -value - 1)
    segment = np.searchsorted(_SEGMENT_ENDS_ALAW, value, side="left")
    shift = np.where(segment < 2, 1, segment)
    code = (np.minimum(segment, 7) << 4) | ((value >> shift) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return code ^ mask


def _alaw_decode(code: np.ndarray) -> np.ndarray:
    value = code ^ 0x55
    level = (value & 0x0F) << 4
    segment = (value & 0x70) >> 4
    level = np.where(segment == 0, level + 8, level + 0x108)
    level = np.where(segment > 1, level << np.maximum(segment - 1, 0), level)
    return np.where(value & 0x80, level, -level)


# Encode tables are indexed by the sample's bit pattern as uint16 (so int16 frames
# index them through a zero-copy view); decode tables by the code byte.
ULAW_ENCODE = np.roll(_ulaw_encode(_ALL_PCM).astype(np.uint8), -32768)
ULAW_DECODE = _ulaw_decode(_ALL_CODES).astype(np.int16)
ALAW_ENCODE = np.roll(_alaw_encode(_ALL_PCM).astype(np.uint8), -32768)
ALAW_DECODE = _alaw_decode(_ALL_CODES).astype(np.int16)


def encode(table: np.ndarray, pcm: np.ndarray) -> bytes:
    """Encode int16 samples with `ULAW_ENCODE` or `ALAW_ENCODE`."""
    return table.take(pcm.view(np.uint16)).tobytes()


def decode(table: np.ndarray, payload: bytes) -> np.ndarray:
    """Decode G.711 bytes with `ULAW_DECODE` or `ALAW_DECODE` into int16 samples."""
    return table.take(np.frombuffer(payload, dtype=np.uint8))
