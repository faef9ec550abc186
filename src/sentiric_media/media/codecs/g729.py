"""G.729 annex A (`G729/8000`, static PT 18, `annexb=no`) through Debian's libbcg729 (ctypes).

PyAV can decode G.729 but not encode it, so both directions use bcg729
(Belledonne's G.729A/B coder, `apt-get install libbcg729-0`): ~25 µs to
encode and ~7 µs to decode each 10 ms frame. Without the library the codec is
unavailable and the module still imports.

A payload is N 10-byte frames of 10 ms (RFC 3551 §4.5.6), possibly followed by
one 2-byte annex B SID frame. Peers send SID frames (and then nothing during
silence) even when `annexb=no` was agreed, so a 2-byte tail is decoded by
bcg729 as comfort noise, never as speech. We encode without VAD/DTX: every
frame is 10 bytes. Lost frames use bcg729's frame erasure, which repeats the
last speech parameters with decaying gain, or continues the comfort noise
after a SID frame, as annex B prescribes.
"""

from __future__ import annotations

import ctypes
import weakref

import numpy as np

from sentiric_media.media.codecs import native
from sentiric_media.media.codecs.base import Codec, MediaFormat

SAMPLE_RATE = CLOCK_RATE = 8000
FRAME_SAMPLES = 80  # 10 ms
FRAME_BYTES = 10
SID_BYTES = 2

_c_uint8 = ctypes.c_uint8
_LIBRARY, UNAVAILABLE_REASON = native.load_library(
    "libbcg729.so.0",
    "bcg729",
    "libbcg729-0",
    {
        "initBcg729EncoderChannel": (ctypes.c_void_p, (_c_uint8,)),  # (enableVAD)
        "closeBcg729EncoderChannel": (None, (ctypes.c_void_p,)),
        # (ctx, const int16 in[80], uint8 out[10], uint8 *outLength)
        "bcg729Encoder": (
            None,
            (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(_c_uint8)),
        ),
        "initBcg729DecoderChannel": (ctypes.c_void_p, ()),
        "closeBcg729DecoderChannel": (None, (ctypes.c_void_p,)),
        # (ctx, bits, bitsLength, frameErasure, SIDFrame, rfc3389Payload, int16 out[80])
        "bcg729Decoder": (
            None,
            (
                ctypes.c_void_p,
                ctypes.c_char_p,
                _c_uint8,
                _c_uint8,
                _c_uint8,
                _c_uint8,
                ctypes.c_void_p,
            ),
        ),
    },
)


def _open(owner: object, init: str, close: str, *args: int) -> tuple[int, weakref.finalize]:
    """A new bcg729 channel context for `owner`, closed when `owner` goes (or on demand)."""
    assert _LIBRARY is not None, UNAVAILABLE_REASON
    context = getattr(_LIBRARY, init)(*args)
    if not context:
        raise MemoryError(f"{init} failed")
    return context, weakref.finalize(owner, getattr(_LIBRARY, close), context)


class G729Encoder:
    """8 kHz int16, a whole number of 10 ms frames → 10 bytes per frame (no VAD, no SID)."""

    __slots__ = ("__weakref__", "_close", "_context", "_length")

    def __init__(self, _: MediaFormat | None = None) -> None:
        self._length = _c_uint8(0)
        self.reset()

    def encode(self, pcm: np.ndarray) -> bytes:
        """Encode a multiple of 80 samples; ValueError otherwise."""
        frames, rest = divmod(len(pcm), FRAME_SAMPLES)
        if frames == 0 or rest:
            raise ValueError(f"G.729 encodes multiples of {FRAME_SAMPLES} samples, not {len(pcm)}")
        samples = np.ascontiguousarray(pcm, dtype=np.int16)
        bits = np.zeros(frames * FRAME_BYTES, dtype=np.uint8)
        source, target, length = samples.ctypes.data, bits.ctypes.data, ctypes.byref(self._length)
        for index in range(frames):
            _LIBRARY.bcg729Encoder(
                self._context,
                source + index * 2 * FRAME_SAMPLES,
                target + index * FRAME_BYTES,
                length,
            )
        return bits.tobytes()

    def reset(self) -> None:
        if hasattr(self, "_close"):
            self._close()
        self._context, self._close = _open(
            self,
            "initBcg729EncoderChannel",
            "closeBcg729EncoderChannel",
            0,  # enableVAD=0
        )


class G729Decoder:
    """G.729 payloads (10-byte frames, an optional 2-byte SID) → 8 kHz int16; never raises."""

    __slots__ = ("__weakref__", "_close", "_context", "_last_samples")

    def __init__(self, media_format: MediaFormat | None = None) -> None:
        self._context, self._close = _open(
            self, "initBcg729DecoderChannel", "closeBcg729DecoderChannel"
        )
        # An empty payload stands for a lost packet as long as the last one.
        self._last_samples = media_format.packet_samples if media_format else 2 * FRAME_SAMPLES

    def _frame(self, bits: bytes | None, out: int, erased: int = 0, sid: int = 0) -> None:
        _LIBRARY.bcg729Decoder(self._context, bits, len(bits or b""), erased, sid, 0, out)

    def decode(self, payload: bytes) -> np.ndarray:
        frames, tail = divmod(len(payload), FRAME_BYTES)
        count = frames + int(tail > 0)
        if count == 0:
            return self.conceal(self._last_samples)
        pcm = np.empty(count * FRAME_SAMPLES, dtype=np.int16)
        out = pcm.ctypes.data
        for index in range(frames):
            start = index * FRAME_BYTES
            self._frame(payload[start : start + FRAME_BYTES], out + 2 * FRAME_SAMPLES * index)
        if tail == SID_BYTES:
            self._frame(payload[-SID_BYTES:], out + 2 * FRAME_SAMPLES * frames, sid=1)
        elif tail:
            # Not a frame any annex defines (truncated or foreign): conceal it as a lost one.
            self._frame(None, out + 2 * FRAME_SAMPLES * frames, erased=1)
        self._last_samples = len(pcm)
        return pcm

    def conceal(self, samples: int) -> np.ndarray:
        """Frame erasure, one 10 ms frame at a time; exactly `samples` samples."""
        frames = max(0, -(-samples // FRAME_SAMPLES))
        pcm = np.empty(frames * FRAME_SAMPLES, dtype=np.int16)
        out = pcm.ctypes.data
        for index in range(frames):
            self._frame(None, out + 2 * FRAME_SAMPLES * index, erased=1)
        return pcm[: max(0, samples)]

    def decode_fec(self, next_payload: bytes, samples: int) -> np.ndarray | None:
        return None


CODEC: Codec | None = (
    Codec(
        "G729",
        CLOCK_RATE,
        SAMPLE_RATE,
        G729Encoder,
        G729Decoder,
        static_payload_type=18,
        fmtp={"annexb": "no"},
    )
    if UNAVAILABLE_REASON is None
    else None
)
