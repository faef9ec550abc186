"""G.722 (`G722/8000`, static PT 9): 16 kHz wideband ADPCM through PyAV's FFmpeg coder.

The RTP clock is 8000 although the audio is 16 kHz (RFC 3551 erratum): this
module works in 16 kHz samples only; `clock_rate` and `sample_rate` say which
is which. G.722 is a sub-band ADPCM: every byte is two samples and every byte
pattern is valid, so decoding cannot fail, but the coder is stateful, so each
session direction gets its own encoder or decoder.

FFmpeg's coder comes with the PyAV wheel (no system package): ~30 µs to encode
and ~15 µs to decode 20 ms. Two PyAV quirks shape the code:
- PyAV re-chunks encoder input into the context's `frame_size` and keeps the
  rest for the next call, so a frame size that does not divide the packet
  would delay audio. The frame size is 10 ms, which divides every ptime, and
  encode() takes whole 10 ms blocks only.
- An empty packet is FFmpeg's end-of-stream signal: after it the decoder
  raises EOFError for ever. Empty payloads never reach FFmpeg.

G.722 has no loss concealment of its own (ITU's appendices are not in FFmpeg):
a lost packet is silence, and the ADPCM state re-converges within a few ms.
"""

from __future__ import annotations

import av
import numpy as np

from sentiric_media.media.codecs.base import Codec, MediaFormat, silence

SAMPLE_RATE = 16000
CLOCK_RATE = 8000
# PyAV's re-chunking unit; 10 ms divides every ptime we negotiate.
BLOCK_SAMPLES = SAMPLE_RATE // 100


def _context(mode: str) -> av.AudioCodecContext:
    context = av.CodecContext.create("g722", mode)
    context.sample_rate = SAMPLE_RATE
    context.layout = "mono"
    if mode == "w":
        context.format = "s16"
        context.options = {"frame_size": str(BLOCK_SAMPLES)}
    context.open()
    return context


class G722Encoder:
    """16 kHz int16 → G.722 bytes (one byte per two samples)."""

    __slots__ = ("_context",)

    def __init__(self, _: MediaFormat | None = None) -> None:
        self._context = _context("w")

    def encode(self, pcm: np.ndarray) -> bytes:
        """Encode whole 10 ms blocks (a multiple of 160 samples); ValueError otherwise."""
        if len(pcm) == 0 or len(pcm) % BLOCK_SAMPLES:
            raise ValueError(f"G.722 encodes multiples of {BLOCK_SAMPLES} samples, not {len(pcm)}")
        samples = np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        return b"".join(bytes(packet) for packet in self._context.encode(frame))

    def reset(self) -> None:
        self._context = _context("w")


class G722Decoder:
    """G.722 bytes → 16 kHz int16; never raises."""

    __slots__ = ("_context", "_last_samples")

    def __init__(self, media_format: MediaFormat | None = None) -> None:
        self._context = _context("r")
        # An empty payload stands for a packet as long as the last one.
        self._last_samples = media_format.packet_samples if media_format else 2 * BLOCK_SAMPLES

    def decode(self, payload: bytes) -> np.ndarray:
        if not payload:
            return silence(self._last_samples)
        try:
            frames = self._context.decode(av.Packet(payload))
        except (av.FFmpegError, ValueError):
            # Not seen in practice (every byte is valid G.722); a fresh decoder
            # keeps the session alive if FFmpeg ever refuses a packet.
            self._context = _context("r")
            return silence(2 * len(payload))
        pcm = np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames] or [silence(0)])
        self._last_samples = len(pcm)
        return pcm.astype(np.int16, copy=False)

    def conceal(self, samples: int) -> np.ndarray:
        """Silence: G.722 has no PLC here (see the module docstring)."""
        return silence(samples)

    def decode_fec(self, next_payload: bytes, samples: int) -> np.ndarray | None:
        return None


def _available() -> str | None:
    if "g722" in av.codecs_available:
        return None
    return "this PyAV build has no FFmpeg g722 coder: pip install 'av>=18'"


UNAVAILABLE_REASON: str | None = _available()
CODEC: Codec | None = (
    Codec("G722", CLOCK_RATE, SAMPLE_RATE, G722Encoder, G722Decoder, static_payload_type=9)
    if UNAVAILABLE_REASON is None
    else None
)
